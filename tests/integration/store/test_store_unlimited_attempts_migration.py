"""Migration 0007: subscriptions stored with the old default `maxAttempts: 12` retry until
`maxAgeSeconds`, as new ones do; other values stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from mic.routing.spec import SubscriptionSpec
from mic.store import Store
from mic.store.dialects import create_engine, normalize_url, prepare_location, writer
from mic.store.migrate import alembic_config
from mic.store.schema import subscriptions


def _spec(max_attempts: int | None) -> dict[str, Any]:
    return {
        "sink": {"url": "http://x"},
        "filter": {"resources": ["ingresses"]},
        "delivery": {"maxAttempts": max_attempts, "maxAgeSeconds": 3600},
    }


async def test_upgrade_to_0007_lifts_the_old_default_limit_only(db_url: str) -> None:
    parsed = normalize_url(db_url)
    prepare_location(parsed)
    engine = create_engine(parsed)
    now = datetime.now(UTC)
    stored = {"old-default": _spec(12), "chosen": _spec(3), "none": {"sink": {"url": "http://x"}}}
    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0006"))
            for generation, (name, spec) in enumerate(stored.items(), start=1):
                await conn.execute(
                    sa.insert(subscriptions).values(
                        name=name, spec=spec, created_at=now, updated_at=now, generation=generation
                    )
                )
    finally:
        await engine.dispose()
    store = await Store.open(db_url)  # migrates to the head
    try:
        specs = {record.name: record.spec for record in await store.list_subscriptions()}
    finally:
        await store.close()
    assert specs["old-default"]["delivery"] == {"maxAttempts": None, "maxAgeSeconds": 3600}
    assert (
        SubscriptionSpec.from_json({"name": "old-default", **specs["old-default"]}).delivery.max_attempts
        is None
    )
    assert specs["chosen"]["delivery"]["maxAttempts"] == 3
    assert specs["none"] == {"sink": {"url": "http://x"}}
