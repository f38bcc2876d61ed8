"""`OutboxWriter`: queued routed batches are committed in order, several per transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

from mic.delivery.writer import OutboxWriter, ReadyLedgerChange, RoutedBatch, Written
from mic.events import Event, EventType
from mic.store import LedgerChange, LedgerEntry, NewDelivery


def event(name: str) -> Event:
    obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "1"}}
    return Event(
        EventType.ADDED, "c1", "", "v1", "ConfigMap", "configmaps", "ns", name, f"u-{name}", "1", obj
    )


def batch(*names: str, subscriptions: Sequence[str] = ("s1",)) -> RoutedBatch:
    events = [event(name) for name in names]
    deliveries = [NewDelivery(s, i, f"key-{e.name}") for i, e in enumerate(events) for s in subscriptions]
    owners = [(d.subscription, events[d.event_index].name) for d in deliveries]
    return RoutedBatch([], events, deliveries, owners)


class Store:
    """Records each transaction; `gate` holds a write until the test opens it."""

    def __init__(self) -> None:
        self.transactions: list[tuple[list[str], list[tuple[str, int, str]]]] = []
        self.ledgers: list[list[LedgerChange]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.next_id = 1
        self.fail_next = False
        self.called = asyncio.Event()  # set when a write starts

    async def writing(self) -> None:
        """Until a write has started (the writer took what was queued)."""
        await asyncio.wait_for(self.called.wait(), 5)

    async def write(
        self, ledger: Sequence[LedgerChange], events: Sequence[Event], deliveries: Sequence[NewDelivery]
    ) -> list[Written]:
        self.called.set()
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ValueError("a defect")
        self.ledgers.append(list(ledger))
        self.transactions.append(
            ([e.name for e in events], [(d.subscription, d.event_index, d.object_key) for d in deliveries])
        )
        # (delivery id, event seq): the event seq stands in as the id's negative.
        written: list[Written] = [(n, -n) for n in range(self.next_id, self.next_id + len(deliveries))]
        self.next_id += len(deliveries)
        return written


@contextlib.asynccontextmanager
async def running(writer: OutboxWriter) -> AsyncIterator[OutboxWriter]:
    """The writer with its task running, stopped on the way out."""
    task = asyncio.create_task(writer.run())
    try:
        yield writer
    finally:
        task.cancel()


@pytest.fixture
async def store() -> Store:
    return Store()


async def test_batches_queued_while_a_write_runs_go_in_one_transaction_in_order(store: Store) -> None:
    done: list[tuple[list[object], list[int | None]]] = []
    async with running(
        OutboxWriter(store.write, lambda b, ids: done.append((list(b.owners), ids)))
    ) as writer:
        store.gate.clear()
        first = batch("a")
        await writer.submit(first)
        await store.writing()  # the writer took `first` and waits at the gate
        second, third = batch("b", "c", subscriptions=("s1", "s2")), batch("d")
        await writer.submit(second)
        await writer.submit(third)
        assert writer.queued == 4
        store.gate.set()
        await writer.flush()
        assert writer.queued == 0
        assert store.transactions == [
            (["a"], [("s1", 0, "key-a")]),
            (
                ["b", "c", "d"],
                [
                    ("s1", 0, "key-b"),
                    ("s2", 0, "key-b"),
                    ("s1", 1, "key-c"),
                    ("s2", 1, "key-c"),
                    ("s1", 2, "key-d"),
                ],
            ),
        ]
        # Each batch learns its own deliveries (id, event seq), in commit order.
        assert [written for _, written in done] == [
            [(1, -1)],
            [(2, -2), (3, -3), (4, -4), (5, -5)],
            [(6, -6)],
        ]
        assert done[1][0] == [("s1", "b"), ("s2", "b"), ("s1", "c"), ("s2", "c")]
        assert all(b.written.done() for b in (first, second, third))


class CountedLedgerItem:
    """A ledger item that counts how often its change is made."""

    made: list[str] = []

    def __init__(self, uid: str, version: str) -> None:
        self.uid, self.version = uid, version

    @property
    def key(self) -> tuple[str, str, str]:
        return ("c1", "configmaps", self.uid)

    def change(self) -> LedgerChange:
        CountedLedgerItem.made.append(f"{self.uid}@{self.version}")
        return LedgerChange("c1", "configmaps", self.uid, LedgerEntry("ns", self.uid, self.version, "h"))


async def test_only_the_last_ledger_item_of_an_object_in_a_transaction_is_made_and_written(
    store: Store,
) -> None:
    CountedLedgerItem.made = []
    async with running(OutboxWriter(store.write, lambda b, ids: None)) as writer:
        store.gate.clear()
        await writer.submit(RoutedBatch([CountedLedgerItem("x", "1")], [], [], []))
        await store.writing()
        forget_y = ReadyLedgerChange(LedgerChange("c1", "configmaps", "y", None))
        items = [CountedLedgerItem("a", "2"), CountedLedgerItem("b", "2"), CountedLedgerItem("a", "3")]
        await writer.submit(RoutedBatch(items, [], [], []))
        await writer.submit(RoutedBatch([CountedLedgerItem("a", "4"), forget_y], [], [], []))
        store.gate.set()
        await writer.flush()
    assert CountedLedgerItem.made == ["x@1", "a@4", "b@2"]
    assert [[(c.uid, c.entry and c.entry.resource_version) for c in ledger] for ledger in store.ledgers] == [
        [("x", "1")],
        [("a", "4"), ("b", "2"), ("y", None)],
    ]


async def test_routing_waits_for_room_only_when_the_queue_is_full(store: Store) -> None:
    async with running(OutboxWriter(store.write, lambda b, ids: None, max_queued=3)) as writer:
        store.gate.clear()
        await writer.submit(batch("a", "b"))
        await store.writing()  # the writer took it and waits at the gate
        await writer.wait_for_room()  # 2 < 3: no wait
        await writer.submit(batch("c", "d"))
        waiter = asyncio.create_task(writer.wait_for_room())
        await asyncio.sleep(0.02)
        assert not waiter.done()
        store.gate.set()
        await asyncio.wait_for(waiter, 5)
        await writer.flush()
        assert [names for names, _ in store.transactions] == [["a", "b"], ["c", "d"]]


async def test_a_group_is_bounded_and_the_rest_waits_for_the_next_transaction(store: Store) -> None:
    async with running(OutboxWriter(store.write, lambda b, ids: None, max_group=3)) as writer:
        store.gate.clear()
        await writer.submit(batch("a"))
        await store.writing()
        for name in ("b", "c", "d", "e"):
            await writer.submit(batch(name))
        store.gate.set()
        await writer.flush()
        assert [names for names, _ in store.transactions] == [["a"], ["b", "c", "d"], ["e"]]


async def test_a_failing_write_fails_its_batches_and_the_writer_goes_on(store: Store) -> None:
    async with running(OutboxWriter(store.write, lambda b, ids: None)) as writer:
        store.fail_next = True
        failed = batch("a")
        await writer.submit(failed)
        with pytest.raises(ValueError, match="a defect"):
            await failed.written
        later = batch("b")
        await writer.submit(later)
        await later.written
        assert [names for names, _ in store.transactions] == [["b"]]
        assert writer.queued == 0


async def test_stopping_the_writer_cancels_what_it_did_not_write(store: Store) -> None:
    writer = OutboxWriter(store.write, lambda b, ids: None)
    task = asyncio.create_task(writer.run())
    store.gate.clear()
    taken, queued = batch("a"), batch("b")
    await writer.submit(taken)
    await store.writing()
    await writer.submit(queued)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert taken.written.cancelled()
    assert queued.written.cancelled()
    assert store.transactions == []


async def test_flush_returns_after_a_failed_write_too(store: Store) -> None:
    async with running(OutboxWriter(store.write, lambda b, ids: None)) as writer:
        store.fail_next = True
        failed = batch("a")
        await writer.submit(failed)
        await asyncio.wait_for(writer.flush(), 5)  # does not raise the write's error
        assert isinstance(failed.written.exception(), ValueError)
