"""Opening the store: migrations, pragmas, file permissions, schema drift, future schemas."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from mic.store import ClusterRecord, SchemaError, Store, StoreUnavailableError, default_database_url
from mic.store.dialects import create_engine, normalize_url, prepare_location, writer
from mic.store.migrate import alembic_config, head_revision
from mic.store.schema import metadata


async def _revision(store: Store) -> tuple[str, ...]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())


async def test_open_creates_directory_and_file_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    store = await Store.open(default_database_url(data_dir))
    await store.close()
    db_file = data_dir / "mic.db"
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600  # it holds credentials
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


async def test_migrations_apply_on_empty_file_and_are_idempotent(db_url: str) -> None:
    store = await Store.open(db_url)
    assert await _revision(store) == (head_revision(),)
    await store.create_cluster(ClusterRecord("c1", {"server": "https://k"}))
    await store.close()

    store = await Store.open(db_url)  # a restart: nothing to migrate, nothing lost
    try:
        assert await _revision(store) == (head_revision(),)
        assert [c.name for c in await store.list_clusters()] == ["c1"]
    finally:
        await store.close()


async def test_migrated_schema_matches_metadata(store: Store) -> None:
    """A change to mic.store.schema without a migration (or the reverse) fails here."""

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_sqlite_pragmas(sqlite_store: Store) -> None:
    store = sqlite_store
    async with store.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 1000
        assert (
            await conn.exec_driver_sql("PRAGMA synchronous")
        ).scalar() == 2  # FULL: Store.open is durable by default


async def test_concurrent_first_opens_of_one_file(db_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(db_url) for _ in range(3)))
    try:
        for store in stores:
            assert await _revision(store) == (head_revision(),)
    finally:
        for store in stores:
            await store.close()


async def test_database_newer_than_code_is_refused(db_url: str) -> None:
    store = await Store.open(db_url)
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    await store.close()

    with pytest.raises(SchemaError, match="revision 9999, newer than this MIC knows"):
        await Store.open(db_url)


async def test_ping(store: Store) -> None:
    assert await store.ping() is True


async def test_unreachable_database_is_unavailable_and_hides_password() -> None:
    # Nothing listens on port 1 of loopback: connection refused, no PostgreSQL server needed.
    with pytest.raises(StoreUnavailableError) as caught:
        await Store.open("postgresql://mic:hunter2@127.0.0.1:1/mic")
    assert "hunter2" not in str(caught.value)


async def test_open_rejects_unsupported_url() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        await Store.open("mysql://localhost/mic")


async def test_a_failed_migration_leaves_no_partial_schema(tmp_path: Path) -> None:
    """DDL runs inside the store's own BEGIN, so SQLite rolls a failed upgrade back entirely."""
    url = normalize_url(default_database_url(tmp_path))
    prepare_location(url)
    engine = create_engine(url)

    class Interrupted(Exception):
        pass

    async def upgrade_then_fail() -> None:
        async with writer(engine).begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
            raise Interrupted

    try:
        with pytest.raises(Interrupted):
            await upgrade_then_fail()
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT name FROM sqlite_master")).all() == []
    finally:
        await engine.dispose()


async def test_ping_is_false_when_the_database_is_unreachable() -> None:
    store = Store(create_engine(normalize_url("postgresql://mic:pw@127.0.0.1:1/mic")))
    try:
        assert await store.ping() is False
    finally:
        await store.close()
