"""`events.occasion` (migration 0005): an event MIC sends again on its own initiative keeps its
occasion, and so its id, through the outbox and a restart; an observed change reads back None.
Events queued before the migration keep the ids they had."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from mic.events import Event, EventType, cloudevent, stable_event_id
from mic.store import NewDelivery, Store, SubscriptionRecord
from mic.store.dialects import create_engine, normalize_url, prepare_location, writer
from mic.store.migrate import alembic_config
from mic.store.schema import deliveries, events, subscriptions

OCCASION = "0123456789ab"


def _event(name: str, rv: int, occasion: str | None = None) -> Event:
    obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": str(rv)}}
    return Event(
        type=EventType.ADDED,
        cluster="c1",
        group="",
        version="v1",
        kind="ConfigMap",
        resource="configmaps",
        namespace="ns",
        name=name,
        uid=f"uid-{name}",
        resource_version=str(rv),
        object=obj,
        observed_at=1_700_000_000.5 + rv,
        occasion=occasion,
    )


async def _record(store: Store, batch: list[Event]) -> None:
    await store.record_changes([], batch, [NewDelivery("s", i, e.name) for i, e in enumerate(batch)])


async def test_the_occasion_is_stored_and_read_back(store: Store) -> None:
    await store.create_subscription(SubscriptionRecord("s", {"sink": {"url": "http://x"}}))
    longest = "f" * 32  # what the column holds
    written = [_event("observed", 1), _event("snapshot", 2, OCCASION), _event("long", 3, longest)]
    await _record(store, written)

    rows = await store.pending_deliveries("s")
    assert [row.event.occasion for row in rows] == [None, OCCASION, longest]
    for row, event in zip(rows, written, strict=True):
        back = row.event.to_event()
        assert back.occasion == event.occasion
        assert back == event
        assert cloudevent(back, redact=True)["id"] == cloudevent(event, redact=True)["id"]
    assert cloudevent(rows[1].event.to_event(), redact=True)["id"] == stable_event_id(
        "c1", "uid-snapshot", "2", "ADDED", OCCASION
    )

    # Dead letters and their replay are read through the same columns.
    await store.dead_letter("s", [rows[1].id], "gone")
    (dead,) = await store.dead_letters("s")
    assert dead.event.occasion == OCCASION
    assert len((await store.replay("s", None)).ids) == 1
    assert [row.event.occasion for row in await store.pending_deliveries("s")] == [None, longest, OCCASION]


async def test_the_occasion_survives_a_restart(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await store.create_subscription(SubscriptionRecord("s", {"sink": {"url": "http://x"}}))
        await _record(store, [_event("snapshot", 2, OCCASION)])
    finally:
        await store.close()
    store = await Store.open(db_url)
    try:
        (row,) = await store.pending_deliveries("s")
        assert row.event.occasion == OCCASION
    finally:
        await store.close()


async def _at_0004_with_one_queued_event(url: str) -> None:
    """A database as MIC 0004 left it, with one event queued for subscription "s"."""
    parsed = normalize_url(url)
    prepare_location(parsed)
    engine = create_engine(parsed)
    now = datetime.now(UTC)
    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0004"))
            await conn.execute(
                sa.insert(subscriptions).values(
                    name="s", spec={"sink": {"url": "http://x"}}, created_at=now, updated_at=now, generation=1
                )
            )
            columns = set(events.c.keys()) - {"occasion"}  # what 0004 has
            await conn.execute(
                sa.insert(events).values(
                    {
                        name: value
                        for name, value in {
                            "seq": 1,
                            "event_id": "01J0000000000000000000000A",
                            "type": "ADDED",
                            "cluster": "c1",
                            "group": "",
                            "version": "v1",
                            "kind": "ConfigMap",
                            "resource": "configmaps",
                            "namespace": "ns",
                            "name": "old",
                            "uid": "uid-old",
                            "resource_version": "1",
                            "observed_at": 1_700_000_000.5,
                            "object": '{"metadata":{"name":"old"}}',
                            "old_object": None,
                        }.items()
                        if name in columns
                    }
                )
            )
            await conn.execute(
                sa.insert(deliveries).values(
                    id=2,
                    subscription="s",
                    event_seq=1,
                    object_key="old",
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            await conn.execute(sa.text("UPDATE sequences SET value = 2 WHERE name = 'outbox'"))
    finally:
        await engine.dispose()


async def test_upgrade_to_0005_keeps_queued_events_and_their_ids(db_url: str) -> None:
    await _at_0004_with_one_queued_event(db_url)
    store = await Store.open(db_url)  # migrates to 0005
    try:
        (row,) = await store.pending_deliveries("s")
        assert row.event.occasion is None
        # The id it was queued with before the migration: unchanged.
        assert cloudevent(row.event.to_event(), redact=True)["id"] == stable_event_id(
            "c1", "uid-old", "1", "ADDED"
        )
        await _record(store, [_event("snapshot", 2, OCCASION)])
        assert [r.event.occasion for r in await store.pending_deliveries("s")] == [None, OCCASION]
    finally:
        await store.close()


@pytest.mark.parametrize("queued", [False, True])
async def test_downgrade_to_0004_and_upgrade_again(db_url: str, queued: bool) -> None:
    store = await Store.open(db_url)
    try:
        if queued:  # deliveries refer to the events (a foreign key SQLite's table copy must keep)
            await store.create_subscription(SubscriptionRecord("s", {"sink": {"url": "http://x"}}))
            await _record(store, [_event("observed", 1), _event("snapshot", 2, OCCASION)])
        async with writer(store.engine).begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
            columns = await conn.run_sync(lambda c: sa.inspect(c).get_columns("events"))
        names = [column["name"] for column in columns]
        assert "occasion" not in names
    finally:
        await store.close()
    store = await Store.open(db_url)
    try:
        rows = await store.pending_deliveries("s") if queued else []
        assert [row.event.occasion for row in rows] == ([None, None] if queued else [])
    finally:
        await store.close()
