"""Statements on the outbox find their rows without reading a subscription's whole queue.

SQLite, without statistics, preferred the (subscription, state, id) index's equality to an
`IN` list of ids, and so read the subscription's whole queue on every acknowledgement, dead
letter and coalescing: each cost grew with the backlog (`schema.not_for_lookup`). Marking an
object's dead letters superseded read every dead letter of the subscription (migration 0009).
These tests ask SQLite for its plan of every such statement the store runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from mic.events import Event, EventType
from mic.store import (
    ClusterRecord,
    LedgerChange,
    LedgerEntry,
    NewDelivery,
    Store,
    SubscriptionRecord,
    dialects,
)
from mic.store.outbox_write import _SQLITE_SUPERSEDE_DEAD, _sqlite_remove_delivered

SCOPE = "/configmaps|*|"


def _event(name: str, rv: int) -> Event:
    obj = {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}"}}
    return Event(
        type=EventType.MODIFIED,
        cluster="c1",
        group="",
        version="v1",
        kind="ConfigMap",
        resource="configmaps",
        namespace="default",
        name=name,
        uid=f"u-{name}",
        resource_version=str(rv),
        object=obj,
        observed_at=1_700_000_000.0 + rv,
    )


async def _queue(store: Store, subscription: str, count: int) -> list[int]:
    events = [_event(f"o{i}", i) for i in range(count)]
    recorded = await store.record_changes(
        [
            LedgerChange("c1", SCOPE, e.uid, LedgerEntry("default", e.name, e.resource_version, "h"))
            for e in events
        ],
        events,
        [NewDelivery(subscription, i, f"default/o{i}") for i in range(count)],
    )
    return list(recorded)


@pytest.fixture
async def queued(sqlite_store: Store) -> tuple[Store, list[int]]:
    store = sqlite_store
    await store.create_cluster(ClusterRecord("c1", {"server": "https://c1"}))
    for name in ("a", "b"):
        await store.create_subscription(SubscriptionRecord(name, {"sink": {"url": f"http://{name}"}}))
    await _queue(store, "b", 50)  # another subscription's queue, which no lookup of `a` may read
    return store, await _queue(store, "a", 50)


@contextmanager
def _statements(store: Store, wanted: str) -> Iterator[list[tuple[str, Sequence[Any]]]]:
    """The statements run through SQLAlchemy whose text holds `wanted`."""
    seen: list[tuple[str, Sequence[Any]]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if wanted in statement:
            seen.extend((statement, tuple(p)) for p in (parameters if many else [parameters]))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", record)


def _statements_by_id(store: Store) -> AbstractContextManager[list[tuple[str, Sequence[Any]]]]:
    """The statements run through SQLAlchemy that pick deliveries by a list of ids."""
    return _statements(store, "deliveries.id IN (")


@pytest.fixture
def statement_by_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outbox writes the way PostgreSQL runs them (and SQLite without the driver's thread)."""

    async def unavailable(*args: object) -> int:
        raise dialects.DriverThreadUnavailable("cannot run a function in the thread of Connection")

    monkeypatch.setattr(dialects, "run_sqlite_transaction", unavailable)


def _plan(store: Store, statement: str, parameters: Sequence[Any]) -> list[str]:
    database = store.engine.url.database
    assert database is not None
    with sqlite3.connect(database) as db:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]


def _assert_by_primary_key(plan: list[str], statement: str) -> None:
    on_deliveries = [step for step in plan if "deliveries" in step]
    assert on_deliveries, (statement, plan)
    assert all("INTEGER PRIMARY KEY" in step for step in on_deliveries), (statement, plan)


async def test_an_acknowledgement_finds_its_rows_by_id(queued: tuple[Store, list[int]]) -> None:
    store, ids = queued
    statement = _sqlite_remove_delivered(3)
    _assert_by_primary_key(_plan(store, statement, ("a", *ids[:3])), statement)


async def test_dead_letters_coalescing_and_replay_find_their_rows_by_id(
    queued: tuple[Store, list[int]],
) -> None:
    store, ids = queued
    with _statements_by_id(store) as seen:
        assert await store.dead_letter("a", ids[:3], "HTTP 400") == 3
        assert await store.drop_superseded("a", ids[10:12]) == 2
        assert len((await store.replay("a", ids[:2])).ids) == 2
    assert len(seen) == 3  # one of each, all checked
    for statement, parameters in seen:
        _assert_by_primary_key(_plan(store, statement, parameters), statement)


@pytest.mark.usefixtures("statement_by_statement")
async def test_acknowledgements_statement_by_statement_find_their_rows_by_id(
    queued: tuple[Store, list[int]],
) -> None:
    """The way PostgreSQL writes (and SQLite without the driver's thread) too."""
    store, ids = queued
    with _statements_by_id(store) as seen:
        await store.delivered("a", ids[20:23])
    assert len(seen) == 1
    statement, parameters = seen[0]
    _assert_by_primary_key(_plan(store, statement, parameters), statement)
    assert (await store.counts("a")).delivered_total == 3
    assert (await store.counts("b")).pending == 50


def _assert_by_unmarked_dead_letters(plan: list[str], statement: str) -> None:
    on_deliveries = [step for step in plan if "deliveries" in step]
    assert on_deliveries, (statement, plan)
    assert all("ix_deliveries_dead_unmarked" in step for step in on_deliveries), (statement, plan)


async def test_marking_dead_letters_superseded_reads_only_the_objects_unmarked_ones(
    queued: tuple[Store, list[int]],
) -> None:
    store, ids = queued
    await store.dead_letter("a", ids, "HTTP 400")
    statement = _SQLITE_SUPERSEDE_DEAD
    plan = _plan(store, statement, ("2026-12-03 00:00:00", "a", "default/o1", 10**6, "u-o1"))
    _assert_by_unmarked_dead_letters(plan, statement)


@pytest.mark.usefixtures("statement_by_statement")
async def test_marking_dead_letters_statement_by_statement_reads_only_the_objects_unmarked_ones(
    queued: tuple[Store, list[int]],
) -> None:
    """The way PostgreSQL writes (and SQLite without the driver's thread) too."""
    store, ids = queued
    await store.dead_letter("a", ids[:5], "HTTP 400")
    newest = 10**6
    with _statements(store, "SET superseded_at") as seen:
        await store.delivered_many({"a": ids[5:6]}, superseding={"a": {("default/o1", "u-o1"): newest}})
    assert len(seen) == 1
    statement, parameters = seen[0]
    _assert_by_unmarked_dead_letters(_plan(store, statement, parameters), statement)
    marked = [r.superseded_at is not None for r in await store.dead_letters("a")]
    assert marked == [False, True, False, False, False]  # only o1's
