"""Clusters: CRUD, errors, generations, persistence, concurrent writers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from mic.store import (
    AlreadyExistsError,
    ClusterRecord,
    ConflictError,
    NotFoundError,
    Store,
)

CONNECTION = {"server": "https://10.0.0.1:6443", "token": "very-secret-token", "ca": "PEM"}


def _cluster(name: str = "c1", **changes: object) -> ClusterRecord:
    values: dict[str, object] = {
        "name": name,
        "connection": CONNECTION,
        "labels": {"env": "prod"},
        "resources": ("pods", "services"),
    }
    values.update(changes)
    return ClusterRecord(**values)  # type: ignore[arg-type]


async def test_create_get_list(store: Store) -> None:
    created = await store.create_cluster(_cluster("c2"))
    await store.create_cluster(_cluster("c1"))

    assert created.name == "c2"
    assert created.connection == CONNECTION
    assert created.labels == {"env": "prod"}
    assert created.resources == ("pods", "services")
    assert created.generation >= 1
    assert created.created_at is not None
    assert created.created_at.tzinfo is not None
    assert created.created_at.utcoffset() == UTC.utcoffset(None)
    assert created.updated_at == created.created_at
    assert await store.get_cluster("c2") == created
    assert [c.name for c in await store.list_clusters()] == ["c1", "c2"]


async def test_create_ignores_caller_bookkeeping(store: Store) -> None:
    created = await store.create_cluster(_cluster(generation=42))
    assert created.generation != 42


async def test_duplicate_create_names_the_cluster(store: Store) -> None:
    await store.create_cluster(_cluster())
    with pytest.raises(AlreadyExistsError, match="cluster 'c1' already exists"):
        await store.create_cluster(_cluster())


async def test_unknown_cluster_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="cluster 'nope' not found"):
        await store.get_cluster("nope")
    with pytest.raises(NotFoundError, match="cluster 'nope' not found"):
        await store.replace_cluster(_cluster("nope"))
    with pytest.raises(NotFoundError, match="cluster 'nope' not found"):
        await store.delete_cluster("nope")


async def test_replace_bumps_generation_and_updated_at(store: Store) -> None:
    created = await store.create_cluster(_cluster())
    replaced = await store.replace_cluster(_cluster(labels={"env": "dev"}, resources=("pods",)))

    assert replaced.generation > created.generation
    assert replaced.created_at == created.created_at
    assert replaced.updated_at is not None
    assert created.updated_at is not None
    assert replaced.updated_at > created.updated_at
    assert replaced.labels == {"env": "dev"}
    assert replaced.resources == ("pods",)
    assert await store.get_cluster("c1") == replaced


async def test_replace_with_identical_content_changes_nothing(store: Store) -> None:
    created = await store.create_cluster(_cluster())
    revision = await store.clusters_revision()
    assert await store.replace_cluster(_cluster()) == created
    assert await store.clusters_revision() == revision


async def test_replace_with_expected_generation(store: Store) -> None:
    created = await store.create_cluster(_cluster())
    first = await store.replace_cluster(_cluster(labels={"a": "1"}), expected_generation=created.generation)
    with pytest.raises(ConflictError, match="cluster 'c1' was changed concurrently"):
        await store.replace_cluster(_cluster(labels={"a": "2"}), expected_generation=created.generation)
    assert (await store.get_cluster("c1")).labels == first.labels


async def test_generation_is_never_reused_after_delete_and_recreate(store: Store) -> None:
    """The supervisor compares generations: a re-created cluster must not look unchanged."""
    first = await store.create_cluster(_cluster())
    await store.delete_cluster("c1")
    with pytest.raises(NotFoundError):
        await store.get_cluster("c1")
    second = await store.create_cluster(_cluster(connection={"server": "https://elsewhere"}))
    assert second.generation > first.generation


async def test_clusters_revision_grows_with_every_change(store: Store) -> None:
    revisions = [await store.clusters_revision()]
    await store.create_cluster(_cluster())
    revisions.append(await store.clusters_revision())
    await store.replace_cluster(_cluster(labels={}))
    revisions.append(await store.clusters_revision())
    await store.delete_cluster("c1")
    revisions.append(await store.clusters_revision())
    assert revisions == sorted(set(revisions))


async def test_repr_does_not_show_the_connection() -> None:
    assert "very-secret-token" not in repr(_cluster())


async def test_reopen_keeps_everything(db_url: str) -> None:
    store = await Store.open(db_url)
    created = await store.create_cluster(_cluster())
    await store.add_token("admin", "admin", "tok-1")
    await store.set_setting("first_start_token_generated", "yes")
    await store.close()

    store = await Store.open(db_url)
    try:
        assert await store.list_clusters() == [created]
        assert [t.name for t in await store.list_tokens()] == ["admin"]
        assert await store.find_token("tok-1") is not None
        assert await store.get_setting("first_start_token_generated") == "yes"
    finally:
        await store.close()


async def test_two_stores_on_one_file_see_each_others_commits(db_url: str) -> None:
    a, b = await Store.open(db_url), await Store.open(db_url)
    try:
        await a.create_cluster(_cluster())
        assert (await b.get_cluster("c1")).labels == {"env": "prod"}
    finally:
        await a.close()
        await b.close()


async def test_concurrent_writers_from_two_stores(db_url: str) -> None:
    a, b = await Store.open(db_url), await Store.open(db_url)
    try:

        async def write(store: Store, prefix: str) -> list[int]:
            generations = []
            for i in range(20):
                created = await store.create_cluster(_cluster(f"{prefix}-{i}"))
                replaced = await store.replace_cluster(_cluster(f"{prefix}-{i}", labels={"i": str(i)}))
                generations += [created.generation, replaced.generation]
            return generations

        writers = [write(s, f"{label}{n}") for s, label in ((a, "a"), (b, "b")) for n in range(4)]
        results = await asyncio.gather(*writers)
        generations = [g for result in results for g in result]
        assert len(set(generations)) == len(generations)  # one sequence, no duplicate under contention
        assert len(await a.list_clusters()) == 8 * 20
    finally:
        await a.close()
        await b.close()


WRITER_SCRIPT = """
import asyncio, sys
from mic.store import ClusterRecord, Store

async def main(url, prefix, count):
    store = await Store.open(url)
    try:
        for i in range(count):
            await store.create_cluster(ClusterRecord(f"{prefix}-{i}", {"server": "https://x"}))
            await store.replace_cluster(ClusterRecord(f"{prefix}-{i}", {"server": "https://y"}))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_concurrent_writers_from_two_processes(sqlite_url: str, tmp_path: Path) -> None:
    db_url = sqlite_url  # two processes on one SQLite file: its locking, not PostgreSQL's
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    count = 30
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), db_url, "child", str(count), env=dict(os.environ)
    )
    store = await Store.open(db_url)
    try:
        for i in range(count):
            await store.create_cluster(_cluster(f"parent-{i}"))
            await store.replace_cluster(_cluster(f"parent-{i}", labels={}))
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
        names = [c.name for c in await store.list_clusters()]
        assert len(names) == 2 * count
        assert await store.clusters_revision() == 4 * count
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await store.close()
    # The file is still a sound database.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; print(sqlite3.connect({str(tmp_path / 'data' / 'mic.db')!r})"
            ".execute('PRAGMA integrity_check').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "ok"
