"""`OutboxWriter`: routed batches to the outbox in order, many batches per transaction.

Why: a transaction costs a fixed handful of statements and thread hops whatever its size, and
an informer hands over at most one watch chunk (100 events) at a time. Writing each chunk on
its own while the informer waited made that fixed cost the bottleneck of a busy cluster
(measured: events/s doubled when chunks of 500 were written at once). So the engine routes a
chunk and queues it here; the writer commits everything queued in one transaction (a group
commit) while the informers decode the next chunks.

Nothing is lost by not waiting: each queued batch carries its ledger changes, written in the
same transaction as its deliveries, and after a crash the informers compare what they list
with the ledger, so a change whose batch had not been written yet is reported again. What the
queue may hold is bounded (`max_queued` events): past it, `wait_for_room` makes the informer
wait, as it did for every write before; a store that fails keeps the writer retrying and so,
soon, the informers waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mic.events import Event
from mic.store import LedgerChange, NewDelivery

log = logging.getLogger(__name__)

MAX_QUEUED = 2_000
"""Events queued and not yet written past which routing waits for the writer."""

MAX_GROUP = 5_000
"""Events in one transaction at most (a longer queue takes several)."""


class LedgerItem(Protocol):
    """A ledger change as routing queues it: made (`change`) only for the last item of each
    `key` in a transaction, as only that one is written (the ledger keeps the last state)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """(cluster, scope, uid)"""
        ...

    def change(self) -> LedgerChange: ...


@dataclass(frozen=True, slots=True)
class ReadyLedgerChange:
    """A `LedgerItem` that is already a `LedgerChange`."""

    ready: LedgerChange

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.ready.cluster, self.ready.scope, self.ready.uid)

    def change(self) -> LedgerChange:
        return self.ready


@dataclass
class RoutedBatch:
    """One routed batch: its ledger items, the events at least one subscription wants, one
    delivery per (subscription, event) with `event_index` into `events`, and for each delivery
    what the engine needs once its id is known (`owners`, same order)."""

    ledger: Sequence[LedgerItem]
    events: Sequence[Event]
    deliveries: Sequence[NewDelivery]
    owners: Sequence[Any]
    written: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def size(self) -> int:
        return max(len(self.events), len(self.ledger), 1)


Written = tuple[int, int] | None
"""A delivery as stored: (its id, its event's seq), or None when it was dropped (its
subscription deleted meanwhile)."""

WriteFunction = Callable[
    [Sequence[LedgerChange], Sequence[Event], Sequence[NewDelivery]], Awaitable[list[Written]]
]
"""Writes one transaction (retrying until it is stored); returns each delivery as `Written`."""

DoneFunction = Callable[[RoutedBatch, list[Written]], None]
"""Called for each batch, in order, once its transaction committed, with its deliveries."""


class OutboxWriter:
    """A FIFO of routed batches and the task that commits them, several at a time."""

    def __init__(
        self,
        write: WriteFunction,
        done: DoneFunction,
        *,
        max_queued: int = MAX_QUEUED,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._write = write
        self._done = done
        self._max_queued = max_queued
        self._max_group = max_group
        self._queue: deque[RoutedBatch] = deque()
        self._queued = 0  # events in `_queue` and in the transaction under way
        self._changed = asyncio.Condition()
        self._last: RoutedBatch | None = None

    @property
    def queued(self) -> int:
        """Events routed and not yet committed."""
        return self._queued

    async def submit(self, batch: RoutedBatch) -> None:
        """Queue a batch (it is written after every batch queued before it)."""
        async with self._changed:
            self._queue.append(batch)
            self._queued += batch.size
            self._last = batch
            self._changed.notify_all()

    async def wait_for_room(self) -> None:
        """Wait while the queue holds `max_queued` events or more."""
        if self._queued < self._max_queued:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self._queued < self._max_queued)

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or being written."""
        if self._queued == 0:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self._queued == 0)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        last = self._last
        if last is not None and not last.written.done():
            await asyncio.wait([last.written])  # done, failed or cancelled: all the same here

    async def run(self) -> None:
        """Commit queued batches until cancelled (what is queued then stays unwritten; the
        ledger makes the next start report it again). A transaction the database has already
        begun may still commit after the cancellation (SQLite runs it in its own thread): then
        its rows are simply there at the next start."""
        group: list[RoutedBatch] = []
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(lambda: bool(self._queue))
                    group = self._take_group()
                try:
                    await self._commit(group)
                except Exception as error:
                    # Not a store outage (the write function retries those): a defect. The
                    # informers must go on; the ledger was not updated, so a restart reports
                    # these changes again.
                    log.exception("cannot write %d routed batch(es) to the outbox", len(group))
                    for batch in group:
                        if not batch.written.done():
                            batch.written.set_exception(error)
                async with self._changed:
                    self._queued -= sum(batch.size for batch in group)
                    group = []
                    self._changed.notify_all()
        finally:
            for batch in [*group, *self._queue]:
                batch.written.cancel()

    async def _commit(self, group: list[RoutedBatch]) -> None:
        # The last item of each object wins (`Store.record_changes` would keep only that one
        # anyway): a busy object changes many times per transaction, and making a change
        # hashes the object's content.
        latest: dict[tuple[str, str, str], LedgerItem] = {}
        events: list[Event] = []
        deliveries: list[NewDelivery] = []
        for batch in group:
            offset = len(events)
            for item in batch.ledger:
                latest[item.key] = item
            events.extend(batch.events)
            deliveries.extend(
                NewDelivery(d.subscription, d.event_index + offset, d.object_key) for d in batch.deliveries
            )
        ledger = [item.change() for item in latest.values()]
        written = await self._write(ledger, events, deliveries)
        start = 0
        for batch in group:
            end = start + len(batch.deliveries)
            self._done(batch, written[start:end])
            start = end
            if not batch.written.done():
                batch.written.set_result(None)

    def _take_group(self) -> list[RoutedBatch]:
        group = [self._queue.popleft()]
        size = group[0].size
        while self._queue and size + self._queue[0].size <= self._max_group:
            batch = self._queue.popleft()
            size += batch.size
            group.append(batch)
        return group


__all__ = [
    "MAX_GROUP",
    "MAX_QUEUED",
    "LedgerItem",
    "OutboxWriter",
    "ReadyLedgerChange",
    "RoutedBatch",
    "Written",
]
