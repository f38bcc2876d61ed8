"""Migration 0002 (delivery tables) on existing databases, and the durability pragmas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from mic.store import ClusterRecord, Store, SubscriptionRecord, default_database_url
from mic.store.dialects import create_engine, normalize_url, prepare_location, writer
from mic.store.migrate import alembic_config, head_revision
from mic.store.schema import clusters, metadata

DELIVERY_TABLES = {"subscriptions", "ledger", "events", "deliveries", "subscription_stats"}


async def _make_0001_database(url: str) -> None:
    """A database as MIC 0001 left it: its schema only, with one cluster and a token sequence bump."""
    parsed = normalize_url(url)
    prepare_location(parsed)
    engine = create_engine(parsed)
    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
            now = datetime.now(UTC)
            await conn.execute(
                sa.insert(clusters).values(
                    name="old",
                    labels={"env": "prod"},
                    connection={"server": "https://k", "token": "t"},
                    resources=["pods"],
                    created_at=now,
                    updated_at=now,
                    generation=7,
                )
            )
            await conn.execute(sa.text("UPDATE sequences SET value = 7 WHERE name = 'clusters'"))
    finally:
        await engine.dispose()


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_0001_keeps_data_and_adds_delivery_tables(tmp_path: Path) -> None:
    url = default_database_url(tmp_path)
    await _make_0001_database(url)

    store = await Store.open(url)
    try:
        async with store.engine.connect() as conn:
            heads = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
        assert heads == (head_revision(),)
        assert await _tables(store) >= DELIVERY_TABLES
        old = await store.get_cluster("old")
        assert old.connection == {"server": "https://k", "token": "t"}
        assert old.generation == 7
        assert await store.clusters_revision() == 7
        # The new sequences exist and start from zero.
        created = await store.create_subscription(SubscriptionRecord("s1", {"sink": {"url": "http://x"}}))
        assert created.generation == 1
        cluster = await store.create_cluster(ClusterRecord("new", {"server": "https://n"}))
        assert cluster.generation == 8
    finally:
        await store.close()


async def test_schema_at_head_matches_metadata_including_delivery_tables(store: Store) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await _tables(store) >= DELIVERY_TABLES


async def test_outbox_indexes_and_foreign_keys(sqlite_store: Store) -> None:
    store = sqlite_store

    def describe(conn: Connection) -> tuple[dict[str, list[str]], list[tuple[str, str, str | None]]]:
        inspector = sa.inspect(conn)
        indexes = {ix["name"]: list(ix["column_names"]) for ix in inspector.get_indexes("deliveries")}
        fks = [
            (table, fk["referred_table"], fk.get("options", {}).get("ondelete"))
            for table in ("ledger", "deliveries", "subscription_stats")
            for fk in inspector.get_foreign_keys(table)
        ]
        return indexes, fks  # type: ignore[return-value]

    async with store.engine.connect() as conn:
        indexes, fks = await conn.run_sync(describe)
        plan = (
            await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM deliveries"
                " WHERE subscription = 's' AND state = 'pending' AND id > 5 ORDER BY id LIMIT 10"
            )
        ).all()
    assert indexes["ix_deliveries_subscription_state_id"] == ["subscription", "state", "id"]
    assert indexes["ix_deliveries_event_seq"] == ["event_seq"]
    assert sorted(fks) == [
        ("deliveries", "events", None),
        ("deliveries", "subscriptions", "CASCADE"),
        ("ledger", "clusters", "CASCADE"),
        ("subscription_stats", "subscriptions", "CASCADE"),
    ]
    # The lane's read is an index range scan, with no sort step.
    detail = " ".join(str(row[-1]) for row in plan)
    assert "ix_deliveries_subscription_state_id" in detail
    assert "TEMP B-TREE" not in detail


@pytest.mark.parametrize(("durable", "expected"), [(True, 2), (False, 1)])  # FULL, NORMAL
async def test_durable_store_fsyncs_every_commit(sqlite_url: str, durable: bool, expected: int) -> None:
    db_url = sqlite_url
    store = await Store.open(db_url, durable=durable)
    try:
        async with store.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == expected
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await store.close()


async def test_durable_is_the_default(sqlite_store: Store) -> None:
    store = sqlite_store
    async with store.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
