"""The ledger and the outbox: one-transaction writes, queue order, retries, dead letters, replay,
coalescing, counts, purging, and persistence across a reopen."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

import mic.store.store as store_module
from mic.events import Event, EventType
from mic.events.encodings import cloudevent_json
from mic.store import (
    ClusterRecord,
    Fence,
    FencedOutError,
    LedgerChange,
    LedgerEntry,
    NewDelivery,
    NotFoundError,
    RecordedDeliveries,
    Replayed,
    Store,
    SubscriptionRecord,
    dialects,
)

SCOPE = "networking.k8s.io/ingresses|*|"


def _event(
    name: str,
    rv: int,
    type_: EventType = EventType.MODIFIED,
    *,
    cluster: str = "c1",
    namespace: str | None = "default",
    old: dict[str, object] | None = None,
) -> Event:
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": str(rv)},
        "spec": {"rules": [{"host": f"{name}.example", "ünïcode": "✓"}]},
    }
    return Event(
        type=type_,
        cluster=cluster,
        group="networking.k8s.io",
        version="v1",
        kind="Ingress",
        resource="ingresses",
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        resource_version=str(rv),
        object=obj,
        old_object=old,
        observed_at=1_700_000_000.25 + rv,
    )


def _entry(name: str, rv: int) -> LedgerEntry:
    return LedgerEntry("default", name, str(rv), f"hash-{name}-{rv}")


@pytest.fixture
async def ready(store: Store) -> Store:
    """A store with clusters c1, c2 and subscriptions a, b."""
    for cluster in ("c1", "c2"):
        await store.create_cluster(ClusterRecord(cluster, {"server": f"https://{cluster}"}))
    for sub in ("a", "b"):
        await store.create_subscription(SubscriptionRecord(sub, {"sink": {"url": f"http://{sub}"}}))
    return store


async def _queue(store: Store, subscription: str, events: Sequence[Event]) -> RecordedDeliveries:
    """Queue each event for `subscription`, keyed by object name, with matching ledger entries."""
    return await store.record_changes(
        [LedgerChange(e.cluster, SCOPE, e.uid, _entry(e.name, int(e.resource_version))) for e in events],
        events,
        [NewDelivery(subscription, i, e.name) for i, e in enumerate(events)],
    )


async def _rows(store: Store, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


# -- ledger --------------------------------------------------------------------------------------


async def test_ledger_upsert_load_and_forget(ready: Store) -> None:
    store = ready
    assert await store.load_ledger("c1", SCOPE) == {}
    await store.record_changes(
        [
            LedgerChange("c1", SCOPE, "u1", _entry("x", 1)),
            LedgerChange("c1", SCOPE, "u2", LedgerEntry("", "cluster-scoped", "5", "h")),
            LedgerChange("c1", "other|*|", "u1", _entry("x", 1)),
            LedgerChange("c2", SCOPE, "u1", _entry("y", 9)),
        ],
        [],
        [],
    )
    assert await store.load_ledger("c1", SCOPE) == {
        "u1": _entry("x", 1),
        "u2": LedgerEntry("", "cluster-scoped", "5", "h"),
    }

    # Upsert replaces, None forgets; other scopes and clusters are untouched.
    await store.record_changes(
        [LedgerChange("c1", SCOPE, "u1", _entry("x", 2)), LedgerChange("c1", SCOPE, "u2", None)], [], []
    )
    assert await store.load_ledger("c1", SCOPE) == {"u1": _entry("x", 2)}
    assert await store.load_ledger("c1", "other|*|") == {"u1": _entry("x", 1)}
    assert await store.load_ledger("c2", SCOPE) == {"u1": _entry("y", 9)}


async def test_ledger_last_change_of_a_uid_wins(ready: Store) -> None:
    store = ready
    await store.record_changes(
        [
            LedgerChange("c1", SCOPE, "u1", _entry("x", 1)),
            LedgerChange("c1", SCOPE, "u1", None),
            LedgerChange("c1", SCOPE, "u2", None),
            LedgerChange("c1", SCOPE, "u2", _entry("y", 3)),
            LedgerChange("c1", SCOPE, "u2", _entry("y", 4)),
        ],
        [],
        [],
    )
    assert await store.load_ledger("c1", SCOPE) == {"u2": _entry("y", 4)}


async def test_ledger_goes_with_its_cluster(ready: Store) -> None:
    store = ready
    await store.record_changes([LedgerChange("c1", SCOPE, "u1", _entry("x", 1))], [], [])
    await store.record_changes([LedgerChange("c2", SCOPE, "u1", _entry("x", 1))], [], [])
    await store.delete_cluster("c1")
    assert await store.load_ledger("c1", SCOPE) == {}
    assert await store.load_ledger("c2", SCOPE) == {"u1": _entry("x", 1)}


async def test_ledger_for_an_unknown_cluster_is_not_found(ready: Store) -> None:
    with pytest.raises(NotFoundError, match="cluster 'gone' not found"):
        await ready.record_changes([LedgerChange("gone", SCOPE, "u1", _entry("x", 1))], [], [])


# -- record_changes ------------------------------------------------------------------------------


async def test_record_changes_stores_events_once_and_returns_ids_in_order(ready: Store) -> None:
    store = ready
    old = {"metadata": {"name": "web", "resourceVersion": "1"}}
    events = [_event("web", 2, old=old), _event("api", 3, EventType.ADDED, namespace=None)]
    ids = await store.record_changes(
        [],
        events,
        [NewDelivery("a", 0, "web"), NewDelivery("b", 0, "web"), NewDelivery("a", 1, "api")],
    )
    assert len(ids) == 3
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert await _rows(store, "events") == 2  # "web" once, for both subscriptions

    rows = await store.pending_deliveries("a")
    assert [r.id for r in rows] == [ids[0], ids[2]]
    # Each delivery's event seq, as stored: routing order, shared by the deliveries of one event.
    assert ids.event_seqs[0] == ids.event_seqs[1] < ids.event_seqs[2]
    assert [r.event.seq for r in rows] == [ids.event_seqs[0], ids.event_seqs[2]]
    first = rows[0]
    assert (first.subscription, first.object_key, first.state, first.attempts, first.last_error) == (
        "a",
        "web",
        "pending",
        0,
        None,
    )
    assert first.created_at.tzinfo is not None
    assert first.next_attempt_at == first.created_at
    stored = first.event
    assert stored.event_id == events[0].id
    assert stored.type is EventType.MODIFIED
    assert stored.object == events[0].object
    assert stored.old_object == old
    assert stored.observed_at == events[0].observed_at
    assert stored.to_event() == events[0]  # round-trips exactly, same id
    assert rows[1].event.namespace is None
    assert rows[1].event.old_object is None
    assert rows[1].event.to_event() == events[1]
    (b,) = await store.pending_deliveries("b")
    assert b.event.seq == first.event.seq


async def test_events_no_delivery_refers_to_are_not_stored(ready: Store) -> None:
    ids = await ready.record_changes([], [_event("x", 1), _event("y", 2)], [NewDelivery("a", 1, "y")])
    assert len(ids) == 1
    assert await _rows(ready, "events") == 1
    assert await ready.record_changes([], [_event("z", 1)], []) == []
    assert await _rows(ready, "events") == 1


async def test_ids_keep_growing_and_are_never_reused(ready: Store) -> None:
    store = ready
    first = await _queue(store, "a", [_event("x", 1), _event("y", 2)])
    await store.delivered("a", first)
    assert await store.purge_delivered_events() == 2
    second = await _queue(store, "a", [_event("x", 3)])
    assert second[0] > max(first)  # a reader paging by after_id never misses new rows


async def test_record_changes_is_all_or_nothing(ready: Store) -> None:
    """A delivery for an unknown subscription fails after the ledger and events were written;
    the whole transaction rolls back and the error names the subscription."""
    store = ready
    events = [_event("x", 1), _event("y", 2)]
    with pytest.raises(NotFoundError, match="subscription 'ghost' not found"):
        await store.record_changes(
            [LedgerChange("c1", SCOPE, "uid-x", _entry("x", 1)), LedgerChange("c1", SCOPE, "uid-y", None)],
            events,
            [NewDelivery("a", 0, "x"), NewDelivery("ghost", 1, "y"), NewDelivery("b", 1, "y")],
        )
    assert await store.load_ledger("c1", SCOPE) == {}
    for table in ("events", "deliveries"):
        assert await _rows(store, table) == 0
    assert await store.backlog("a") == 0
    # Nothing was half-allocated either: the next write works and starts where it would have.
    ids = await _queue(store, "a", events)
    rows = await store.pending_deliveries("a")
    assert [r.id for r in rows] == ids
    assert [r.event.seq for r in rows] == [1, 2]  # the failed call's id allocation rolled back too


async def test_a_write_larger_than_one_statement_keeps_every_row_in_order(ready: Store) -> None:
    """2,500 events for two subscriptions and 2,500 acknowledgements in one call: more rows and
    ids than one statement takes (SQLite writes many rows per statement, in chunks)."""
    store = ready
    events = [_event(f"obj-{i}", i + 1) for i in range(2_500)]
    first = await _queue(store, "a", events)
    assert await store.backlog("a") == 2_500
    ids = await store.record_changes(
        [LedgerChange("c1", SCOPE, e.uid, _entry(e.name, int(e.resource_version))) for e in events],
        events,
        [NewDelivery(sub, i, e.name) for i, e in enumerate(events) for sub in ("a", "b")],
        acknowledged={"a": first},
    )
    assert len(ids) == 5_000
    assert ids == sorted(ids)
    assert ids[0] > max(first)
    assert await store.backlog("a") == 2_500
    assert await store.backlog("b") == 2_500
    assert (await store.counts("a")).delivered_total == 2_500
    rows = await store.pending_deliveries("b", limit=3_000)
    assert [r.event.name for r in rows] == [e.name for e in events]
    assert [r.id for r in rows] == ids[1::2]
    assert len(await store.load_ledger("c1", SCOPE)) == 2_500


async def test_record_changes_rejects_a_bad_event_index_before_writing(ready: Store) -> None:
    with pytest.raises(ValueError, match="refers to event 3, but 1 events were given"):
        await ready.record_changes(
            [LedgerChange("c1", SCOPE, "u1", _entry("x", 1))], [_event("x", 1)], [NewDelivery("a", 3, "x")]
        )
    assert await ready.load_ledger("c1", SCOPE) == {}


# -- reading the queue ---------------------------------------------------------------------------


async def test_pending_deliveries_in_id_order_with_cursor_and_limit(ready: Store) -> None:
    store = ready
    ids: list[int] = []
    for batch in range(5):
        ids += await _queue(store, "a", [_event(f"o{batch}-{i}", batch * 10 + i) for i in range(4)])
        await _queue(store, "b", [_event("noise", batch)])
    rows = await store.pending_deliveries("a", limit=1000)
    assert [r.id for r in rows] == ids
    assert [r.event.name for r in rows] == [f"o{b}-{i}" for b in range(5) for i in range(4)]

    page = await store.pending_deliveries("a", after_id=ids[5], limit=3)
    assert [r.id for r in page] == ids[6:9]
    assert await store.pending_deliveries("a", after_id=ids[-1]) == []
    assert all(r.subscription == "b" for r in await store.pending_deliveries("b"))


async def test_events_read_back_stay_json_until_read_and_encode_without_decoding(
    ready: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane reading back a backlog holds thousands of events: decoded, 10 lanes draining
    300,000 rows grew from 172 to 428 MB. Their bytes go into the delivery body as they are."""
    store = ready
    old = {"metadata": {"name": "web", "resourceVersion": "1"}}
    await _queue(store, "a", [_event("web", 2, old=old)])

    def no_decoding(data: object) -> object:
        raise AssertionError("decoded")

    monkeypatch.setattr(orjson, "loads", no_decoding)  # the one module every layer calls
    (row,) = await store.pending_deliveries("a")
    event = row.event.to_event()
    body = cloudevent_json(event, redact=True)
    monkeypatch.undo()
    data = orjson.loads(body)["data"]
    assert data["object"] == row.event.object == event.object
    assert data["oldObject"] == old == event.old_object


async def test_reschedule_records_an_attempt(ready: Store) -> None:
    store = ready
    (delivery_id,) = await _queue(store, "a", [_event("x", 1)])
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert await store.reschedule(delivery_id, 1, later, "HTTP 503") is True
    (row,) = await store.pending_deliveries("a")
    assert (row.attempts, row.last_error) == (1, "HTTP 503")
    assert row.next_attempt_at == later
    counts = await store.counts("a")
    assert (counts.pending, counts.retrying) == (1, 1)
    assert await store.reschedule(delivery_id + 1000, 1, later, "gone") is False


async def test_delivered_removes_rows_and_counts(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event(f"o{i}", i) for i in range(5)])
    await store.delivered("a", [ids[0], ids[2], ids[2]])
    assert [r.id for r in await store.pending_deliveries("a")] == [ids[1], ids[3], ids[4]]
    counts = await store.counts("a")
    assert (counts.pending, counts.delivered_total) == (3, 2)
    await store.delivered("a", [])
    assert (await store.counts("a")).delivered_total == 2


async def test_delivered_only_touches_its_subscription(ready: Store) -> None:
    store = ready
    (b_id,) = await _queue(store, "b", [_event("x", 1)])
    await store.delivered("a", [b_id])
    assert await store.backlog("b") == 1


async def test_dead_letter_and_replay(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event(f"o{i}", i) for i in range(4)])
    await store.reschedule(ids[1], 12, datetime.now(UTC), "HTTP 500")

    assert await store.dead_letter("a", [ids[1], ids[2]], "HTTP 400: bad request") == 2
    assert await store.dead_letter("a", [ids[1]], "again") == 0  # already dead: not counted twice
    assert [r.id for r in await store.pending_deliveries("a")] == [ids[0], ids[3]]
    dead = await store.dead_letters("a")
    assert [(r.id, r.state, r.last_error) for r in dead] == [
        (ids[1], "dead", "HTTP 400: bad request"),
        (ids[2], "dead", "HTTP 400: bad request"),
    ]
    assert dead[0].event.name == "o1"
    assert [r.id for r in await store.dead_letters("a", after_id=ids[1], limit=5)] == [ids[2]]
    counts = await store.counts("a")
    assert (counts.pending, counts.dead, counts.dead_total) == (2, 2, 2)
    assert await store.backlog("a") == 2

    before = datetime.now(UTC)
    assert len((await store.replay("a", [ids[2], ids[0]])).ids) == 1  # ids[0] is pending, not dead
    # A replayed row joins the end of the queue under a new id: a lane paging with `after_id`
    # finds it without reading the queue again from the start.
    pending = await store.pending_deliveries("a")
    assert [r.event.name for r in pending] == ["o0", "o3", "o2"]
    replayed = pending[-1]
    assert replayed.id > ids[3]
    assert replayed.event.seq == ids.event_seqs[2]  # the same event row: its place is kept
    assert [r.id for r in await store.pending_deliveries("a", after_id=ids[3])] == [replayed.id]
    assert replayed.attempts == 0
    assert replayed.next_attempt_at >= before
    assert len((await store.replay("a", None)).ids) == 1
    assert await store.dead_letters("a") == []
    pending = await store.pending_deliveries("a")
    assert [r.event.name for r in pending] == ["o0", "o3", "o2", "o1"]
    assert pending[-1].attempts == 0  # o1 had 12 attempts
    counts = await store.counts("a")
    assert (counts.pending, counts.dead, counts.dead_total) == (4, 0, 2)  # the total is history


async def test_a_delivery_marks_older_dead_letters_of_its_object_and_replay_drops_them(ready: Store) -> None:
    """The mark goes with the acknowledgement (both write paths): only older dead letters of
    that object and subscription; a replay drops marked ones and those behind a queued newer
    event, and queues the rest."""
    store = ready
    old = await _queue(store, "a", [_event("web", 1), _event("api", 1), _event("db", 1)])
    other = await _queue(store, "b", [_event("web", 1)])
    await store.dead_letter("a", old, "HTTP 400")
    await store.dead_letter("b", other, "HTTP 400")
    newer = await _queue(store, "a", [_event("web", 2), _event("api", 2)])
    await store.delivered_many(
        {"a": [newer[0]]}, superseding={"a": {("web", "uid-web"): newer.event_seqs[0]}}
    )
    marked = {r.event.name: r.superseded_at for r in await store.dead_letters("a")}
    assert marked["web"] is not None
    assert marked["api"] is None
    assert marked["db"] is None
    assert (await store.dead_letters("b"))[0].superseded_at is None  # another subscription's

    async def acknowledge_with_an_outbox_write(db_seq: int) -> None:
        """As a busy engine acknowledges: along with the next events it records."""
        event = _event("x", db_seq)
        await store.record_changes(
            [LedgerChange(event.cluster, SCOPE, event.uid, _entry("x", db_seq))],
            [event],
            [NewDelivery("b", 0, "x")],
            acknowledged={"b": [10**9]},
            superseding={"a": {("db", "uid-db"): db_seq}},
        )

    await acknowledge_with_an_outbox_write(old.event_seqs[2])  # db's own event: not older
    assert [r.superseded_at for r in await store.dead_letters("a") if r.event.name == "db"] == [None]
    await acknowledge_with_an_outbox_write(old.event_seqs[2] + 1)
    assert [r.superseded_at is None for r in await store.dead_letters("a") if r.event.name == "db"] == [False]

    replayed = await store.replay("a", None)
    assert replayed == Replayed([], 3)  # web and db delivered since, api's v2 still queued
    assert [r.event.name for r in await store.pending_deliveries("a")] == ["api"]
    assert await store.dead_letters("a") == []
    assert len(await store.dead_letters("b")) == 1


async def test_replay_of_another_subscription_does_nothing(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event("x", 1)])
    await store.dead_letter("a", ids, "boom")
    assert await store.replay("b", None) == Replayed([], 0)
    assert await store.replay("b", ids) == Replayed([], 0, ids)  # not dead letters of b
    assert len(await store.dead_letters("a")) == 1


async def test_drop_superseded_coalesces_one_object(ready: Store) -> None:
    store = ready
    events = [_event("x", 1), _event("y", 2), _event("x", 3), _event("x", 4), _event("x", 5)]
    ids = await _queue(store, "a", events)
    await _queue(store, "b", events)
    await store.dead_letter("a", [ids[0]], "kept as a record")

    # ids[0] is dead: kept as the record it is
    assert await store.drop_superseded("a", [ids[0], ids[2]]) == 1
    assert [r.id for r in await store.pending_deliveries("a")] == [ids[1], ids[3], ids[4]]
    assert await store.drop_superseded("a", [ids[3]]) == 1
    assert await store.drop_superseded("a", []) == 0
    assert [r.id for r in await store.pending_deliveries("a")] == [ids[1], ids[4]]
    assert await store.backlog("b") == 5  # other subscriptions keep their own queue
    counts = await store.counts("a")
    assert (counts.delivered_total, counts.dead_total, counts.dead) == (0, 1, 1)


async def test_drop_superseded_writes_the_backoff_its_successors_inherited(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event("x", 1), _event("x", 2), _event("y", 3)])
    await store.reschedule(ids[2], 5, datetime(2030, 1, 1, tzinfo=UTC), "HTTP 503")
    due = datetime(2031, 1, 1, tzinfo=UTC)

    # x2 takes x1's place and its 3 attempts; y keeps its own 5 (a row never loses attempts)
    assert await store.drop_superseded("a", [ids[0]], backoff=[(ids[1], 3, due), (ids[2], 3, due)]) == 1
    rows = {r.id: r for r in await store.pending_deliveries("a")}
    assert (rows[ids[1]].attempts, rows[ids[1]].next_attempt_at) == (3, due)
    assert (rows[ids[2]].attempts, rows[ids[2]].next_attempt_at) == (5, datetime(2030, 1, 1, tzinfo=UTC))
    assert await store.drop_superseded("a", [], backoff=[(ids[1], 4, due)]) == 0
    assert [r.attempts for r in await store.pending_deliveries("a")] == [4, 5]


async def test_counts_tell_when_a_delivery_was_last_acknowledged(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event("x", 1), _event("y", 2)])
    assert (await store.counts("a")).last_delivered_at is None
    before = datetime.now(UTC)
    await store.delivered("a", [ids[0]])
    first = (await store.counts("a")).last_delivered_at
    assert first is not None
    assert before - timedelta(seconds=1) <= first <= datetime.now(UTC)
    await _queue(store, "b", [_event("z", 3)])  # with an acknowledgement riding along
    await store.record_changes([], [_event("w", 4)], [NewDelivery("a", 0, "w")], acknowledged={"a": [ids[1]]})
    second = (await store.counts("a")).last_delivered_at
    assert second is not None
    assert second >= first
    assert (await store.counts("b")).last_delivered_at is None


async def test_counts_report_oldest_pending(ready: Store) -> None:
    store = ready
    before = datetime.now(UTC)
    ids = await _queue(store, "a", [_event("x", 1)])
    await _queue(store, "a", [_event("y", 2)])
    counts = await store.counts("a")
    assert counts.oldest_pending_at is not None
    assert before <= counts.oldest_pending_at <= datetime.now(UTC)
    assert counts.oldest_pending_at.tzinfo is not None
    (first,) = [r for r in await store.pending_deliveries("a") if r.id == ids[0]]
    assert counts.oldest_pending_at == first.created_at


async def test_purge_keeps_events_still_referenced(ready: Store) -> None:
    store = ready
    events = [_event("x", 1), _event("y", 2), _event("z", 3)]
    ids = await store.record_changes(
        [],
        events,
        [
            NewDelivery("a", 0, "x"),
            NewDelivery("b", 0, "x"),
            NewDelivery("a", 1, "y"),
            NewDelivery("a", 2, "z"),
        ],
    )
    await store.delivered("a", [ids[0], ids[2]])  # x still waits for b
    await store.dead_letter("a", [ids[3]], "dead letters keep their event")
    assert await store.purge_delivered_events() == 1  # y
    assert await _rows(store, "events") == 2
    assert (await store.pending_deliveries("b"))[0].event.name == "x"
    assert (await store.dead_letters("a"))[0].event.name == "z"
    assert await store.purge_delivered_events() == 0


async def test_purge_deletes_in_short_transactions_a_writer_can_come_between(
    ready: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction for every delivered event held SQLite's write lock for seconds."""
    store = ready
    monkeypatch.setattr(store_module, "PURGE_CHUNK", 3)
    monkeypatch.setattr(store_module, "PURGE_PAUSE", 0.0)
    events = [_event(f"o{i}", i) for i in range(10)]
    ids = await _queue(store, "a", events)
    kept = {1, 5, 9}  # still pending, between and after the purged ones
    await store.delivered("a", [id_ for i, id_ in enumerate(ids) if i not in kept])
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    sa.event.listen(store.engine.sync_engine, "commit", committed)
    try:
        assert await store.purge_delivered_events() == 7
    finally:
        sa.event.remove(store.engine.sync_engine, "commit", committed)
    assert len(commits) >= 3  # 3 + 3 + 1 events
    assert sorted(r.event.name for r in await store.pending_deliveries("a")) == ["o1", "o5", "o9"]
    assert await _rows(store, "events") == 3
    assert await store.purge_delivered_events() == 0


async def test_purge_finds_events_to_delete_without_taking_the_write_lock(ready: Store) -> None:
    """Finding them looks up every queued event too: under the write lock, a large backlog
    made every outbox write wait for it once a minute."""
    store = ready
    ids = await _queue(store, "a", [_event(f"o{i}", i) for i in range(6)])
    await store.delivered("a", ids[:3])
    finds: list[bool] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM events" in statement:
            finds.append(bool(conn.get_execution_options().get(dialects.WRITE_OPTION)))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await store.purge_delivered_events() == 3
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    assert finds == [False]
    assert await _rows(store, "events") == 3


async def test_deleting_a_subscription_drops_its_queue(ready: Store) -> None:
    store = ready
    ids = await _queue(store, "a", [_event("x", 1), _event("y", 2)])
    await _queue(store, "b", [_event("z", 3)])
    await store.dead_letter("a", ids[:1], "boom")
    await store.delete_subscription("a")
    assert await _rows(store, "deliveries") == 1
    assert await _rows(store, "subscription_stats") == 1
    assert await store.purge_delivered_events() == 2
    assert await store.backlog("b") == 1


async def test_reopen_keeps_ledger_queue_dead_letters_and_totals(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await store.create_cluster(ClusterRecord("c1", {"server": "https://c1"}))
        await store.create_subscription(SubscriptionRecord("a", {"sink": {"url": "http://a"}}))
        ids = await _queue(store, "a", [_event(f"o{i}", i) for i in range(4)])
        await store.delivered("a", ids[:1])
        await store.dead_letter("a", ids[1:2], "HTTP 410")
        later = datetime.now(UTC) + timedelta(minutes=1)
        await store.reschedule(ids[2], 3, later, "timeout")
        before = (
            await store.load_ledger("c1", SCOPE),
            await store.pending_deliveries("a"),
            await store.dead_letters("a"),
            await store.counts("a"),
        )
    finally:
        await store.close()

    store = await Store.open(db_url)
    try:
        after = (
            await store.load_ledger("c1", SCOPE),
            await store.pending_deliveries("a"),
            await store.dead_letters("a"),
            await store.counts("a"),
        )
        assert after == before
        assert len(after[0]) == 4
        assert [r.id for r in after[1]] == ids[2:]
        assert after[1][0].next_attempt_at == later
        assert (after[3].delivered_total, after[3].dead_total) == (1, 1)
        assert (await _queue(store, "a", [_event("new", 9)]))[0] > ids[-1]
    finally:
        await store.close()


async def test_a_thousand_pending_rows_in_one_query(ready: Store) -> None:
    store = ready
    ids: list[int] = []
    for start in range(0, 1000, 100):
        ids += await _queue(store, "a", [_event(f"o{i}", i) for i in range(start, start + 100)])

    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        rows = await store.pending_deliveries("a", limit=1000)
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert [r.id for r in rows] == ids
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert await store.backlog("a") == 1000


async def test_outbox_writes_go_statement_by_statement_without_the_driver_thread(
    ready: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should an aiosqlite release drop the way into its thread, SQLite writes still work
    (slower); other databases never take that way."""
    calls: list[object] = []

    async def unavailable(*args: object) -> int:
        calls.append(args)
        raise dialects.DriverThreadUnavailable("cannot run a function in the thread of Connection")

    monkeypatch.setattr(dialects, "run_sqlite_transaction", unavailable)
    first = await _queue(ready, "a", [_event("x", 1), _event("y", 2)])
    await ready.delivered("a", first[:1])
    assert [r.event.name for r in await ready.pending_deliveries("a")] == ["y"]
    assert (await ready.counts("a")).delivered_total == 1
    if ready.engine.dialect.name == "sqlite":
        assert len(calls) == 1  # tried once, then never again
        assert "outbox writes go statement by statement" in caplog.text
    else:
        assert calls == []


async def test_a_locked_sqlite_file_makes_the_write_unavailable_and_leaves_nothing_half_done(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock past the busy timeout: the outbox write (run in the
    driver's thread) reports the store unavailable, writes nothing, and the next try works."""
    import sqlite3

    from mic.store import StoreUnavailableError

    monkeypatch.setattr(dialects, "SQLITE_BUSY_TIMEOUT_MS", 200)
    store = await Store.open(sqlite_url)
    try:
        await store.create_cluster(ClusterRecord("c1", {"server": "https://c1"}))
        await store.create_subscription(SubscriptionRecord("a", {"sink": {"url": "http://a"}}))
        first = await _queue(store, "a", [_event("x", 1)])
        path = dialects.sqlite_file(dialects.normalize_url(sqlite_url))
        assert path is not None
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a writer elsewhere that does not let go
        try:
            with pytest.raises(StoreUnavailableError, match="locked"):
                await _queue(store, "a", [_event("y", 2)])
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.delivered("a", first)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert [r.event.name for r in await store.pending_deliveries("a")] == ["x"]
        assert await store.load_ledger("c1", SCOPE) == {"uid-x": _entry("x", 1)}
        second = await _queue(store, "a", [_event("y", 2)])
        assert second[0] > first[0]
        assert [r.event.name for r in await store.pending_deliveries("a")] == ["x", "y"]
    finally:
        await store.close()


async def test_acknowledgements_in_opposite_orders_never_deadlock(ready: Store, db_url: str) -> None:
    """Two MICs on one PostgreSQL database acknowledge the same two subscriptions, each naming
    them in its own order: row locks are taken in one sorted order, so neither waits on the other
    in a cycle (PostgreSQL would abort one transaction with a deadlock error)."""
    other = await Store.open(db_url)
    try:
        events = [_event(f"obj-{i}", i + 1) for i in range(200)]
        ids_a = await _queue(ready, "a", events)
        ids_b = await _queue(ready, "b", events)

        async def acknowledge(store: Store, order: tuple[str, str], offset: int) -> None:
            for i in range(offset, len(events), 2):
                ids = {"a": [ids_a[i]], "b": [ids_b[i]]}
                await store.delivered_many({name: ids[name] for name in order})

        await asyncio.gather(acknowledge(ready, ("a", "b"), 0), acknowledge(other, ("b", "a"), 1))
        assert await ready.backlog("a") == 0
        assert await ready.backlog("b") == 0
    finally:
        await other.close()


# -- write fencing (Store.fence) -----------------------------------------------------------------


async def _fenced_holder(store: Store, holder: str = "old") -> Fence:
    """Take the delivery lease for `holder` and fence `store` with it, as `StoreLease` does."""
    claimed = await store.claim_lease("delivery", holder, replacing=None)
    assert claimed is not None
    store.fence = Fence("delivery", holder, claimed.epoch)
    return store.fence


async def _take_over(store: Store, holder: str = "new") -> None:
    seen = await store.get_lease("delivery")
    assert await store.claim_lease("delivery", holder, replacing=seen) is not None


async def test_a_fenced_store_writes_delivery_state_while_its_lease_is_its_own(ready: Store) -> None:
    await _fenced_holder(ready)
    ids = await _queue(ready, "a", [_event("x", 1), _event("y", 2)])
    await ready.reschedule(ids[0], 1, datetime.now(UTC), "HTTP 500")
    await ready.dead_letter("a", [ids[0]], "gave up")
    await ready.delivered("a", [ids[1]])
    assert (await ready.counts("a")).dead == 1
    assert len((await ready.replay("a", None)).ids) == 1


async def test_a_store_fenced_by_a_lease_taken_over_writes_no_delivery_state(ready: Store) -> None:
    """A holder frozen past a takeover wakes to refused writes: no outbox row (the new holder's
    list reports the change under its own id), no acknowledgement, retry, dead letter or replay
    of rows the new holder now sends. Registrations are not fenced."""
    await _fenced_holder(ready)
    queued = await _queue(ready, "a", [_event("x", 1), _event("y", 2)])
    await ready.dead_letter("a", [queued[1]], "gave up")
    await _take_over(ready)

    with pytest.raises(FencedOutError, match=r"no longer holds .*\(held by new since epoch 2\)"):
        await _queue(ready, "a", [_event("z", 3)])
    with pytest.raises(FencedOutError):
        await ready.delivered("a", [queued[0]])
    with pytest.raises(FencedOutError):
        await ready.reschedule(queued[0], 1, datetime.now(UTC), "HTTP 500")
    with pytest.raises(FencedOutError):
        await ready.dead_letter("a", [queued[0]], "gave up")
    with pytest.raises(FencedOutError):
        await ready.replay("a", None)
    with pytest.raises(FencedOutError):
        await ready.drop_superseded("a", [queued[0]])

    assert [(r.id, r.attempts) for r in await ready.pending_deliveries("a")] == [(queued[0], 0)]
    assert [r.id for r in await ready.dead_letters("a")] == [queued[1]]
    assert "uid-z" not in await ready.load_ledger("c1", SCOPE)
    assert await _rows(ready, "events") == 2
    await ready.create_subscription(SubscriptionRecord("c", {"sink": {"url": "http://c"}}))

    ready.fence = None  # the new holder's store (unfenced here) writes as usual
    assert len(await _queue(ready, "a", [_event("z", 3)])) == 1


async def test_a_released_lease_fences_its_old_holder_out(ready: Store) -> None:
    fence = await _fenced_holder(ready)
    await ready.release_lease("delivery", fence.holder, fence.epoch)
    with pytest.raises(FencedOutError, match="released, and nobody holds it now"):
        await _queue(ready, "a", [_event("x", 1)])
    assert await _rows(ready, "deliveries") == 0


async def test_a_takeover_waits_for_a_fenced_write_that_began_before_it(ready: Store, db_url: str) -> None:
    """The check and the write are one transaction that the takeover cannot cut in two: an
    outbox write of the old holder either commits before the takeover (the new holder, reading
    after it, sees it) or is refused. Four writers keep writing while another store takes over."""
    await _fenced_holder(ready)
    other = await Store.open(db_url)
    try:
        written: list[int] = []

        async def keep_writing(writer: int) -> bool:
            for i in range(300):
                try:
                    written.extend(await _queue(ready, "a", [_event(f"obj-{writer}-{i}", i + 1)]))
                except FencedOutError:
                    return True
            return False

        writers = [asyncio.create_task(keep_writing(w)) for w in range(4)]
        while len(written) < 8:
            await asyncio.sleep(0.001)
        await _take_over(other)
        listed = {r.id for r in await other.pending_deliveries("a")}  # the new holder reads
        refused = await asyncio.gather(*writers)
        assert all(refused), "a writer was never refused: the takeover did not fence it out"
        assert set(written) <= listed, "a write committed after the new holder read the store"
    finally:
        await other.close()
