"""`EventStream`: one consumer's ordered, bounded view of the hub's events."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from mic.events import Event, EventType
from mic.hub.spec import WatchSpec
from mic.kube.selectors import LabelSelector

SLOW_CONSUMER_SECONDS = 30.0
"""How long an informer waits for room in a full stream before closing it (`max_wait`)."""


class StreamOverflowError(Exception):
    """The consumer fell so far behind that its stream was closed (see `EventStream`): what it
    read was in order and complete up to here; open a new stream, which starts with the
    current objects, to go on."""


class EventStream:
    """Events for one `WatchSpec`, consumed with `async for`.

    Batches from informers are queued as they come; the queue holds at most `max_batches`
    batches, and when it is full the informer that feeds it waits: back-pressure, which never
    drops an event. The informer feeds the cache and every other consumer of that (cluster,
    resource) too, the delivery engine included, so it waits at most `max_wait` seconds: then
    the stream is closed, and once its consumer has read what was queued, the iteration raises
    `StreamOverflowError` (as kube-apiserver ends the watch of a client that does not keep up).
    `max_wait` None waits for as long as it takes. `close()` (or leaving `async with`) ends
    the iteration.

    `cluster_selector` (over cluster labels) narrows the stream to the clusters it selects;
    the hub asks `selects` with a cluster's labels of the moment, and calls `change_view` when
    a cluster enters or leaves the selection (see `Hub.events`).
    """

    def __init__(
        self,
        spec: WatchSpec,
        *,
        types: Iterable[EventType] | None = None,
        cluster_selector: LabelSelector | None = None,
        max_batches: int = 1024,
        max_wait: float | None = SLOW_CONSUMER_SECONDS,
        on_close: Callable[[EventStream], None] | None = None,
    ) -> None:
        self.spec = spec
        self.types = frozenset(types) if types is not None else None
        self.cluster_selector = (
            cluster_selector if cluster_selector is not None and not cluster_selector.is_empty else None
        )
        self._view_changes: Counter[str] = Counter()
        self._batches: deque[list[Event]] = deque()
        self._max_batches = max_batches
        self._max_wait = max_wait
        self._overflowed = False
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._ready: deque[Event] = deque()
        self._closed = False
        self._on_close = on_close

    def selects(self, cluster_labels: Mapping[str, str]) -> bool:
        """Whether events of a cluster with these labels belong in this stream."""
        return self.cluster_selector is None or self.cluster_selector.matches(cluster_labels)

    def view_epoch(self, cluster: str) -> int:
        """How many times `cluster` entered or left this stream's selection (see `put`)."""
        return self._view_changes[cluster]

    def change_view(self, cluster: str, events: list[Event]) -> None:
        """`cluster` entered or left the selection: queue `events` (its cached objects as ADDED
        or DELETED) now, and make every batch of it taken before (`put`'s `epoch`) obsolete,
        since the cache they were made from already held those batches."""
        self._view_changes[cluster] += 1
        self.put_nowait(events)
        self._not_full.set()  # a producer waiting for room with an obsolete batch need not wait

    def _obsolete(self, epoch: tuple[str, int] | None) -> bool:
        return epoch is not None and self._view_changes[epoch[0]] != epoch[1]

    async def put(self, events: list[Event], *, epoch: tuple[str, int] | None = None) -> None:
        """Queue a batch (called by the hub); waits while the consumer is too far behind.

        `epoch` is (cluster, `view_epoch(cluster)`) when the hub took the batch for this stream:
        if the cluster entered or left the selection since, the batch is dropped, as the events
        `change_view` queued already account for it (queued ahead of it, they would otherwise
        come out of order: a DELETED of an object, then its ADDED).
        """
        if self.types is not None:
            events = [event for event in events if event.type in self.types]
            if not events:
                return
        while len(self._batches) >= self._max_batches and not self._closed and not self._obsolete(epoch):
            self._not_full.clear()
            try:
                async with asyncio.timeout(self._max_wait):
                    await self._not_full.wait()
            except TimeoutError:
                self._overflowed = True
                self.close()
        if self._closed or self._obsolete(epoch):
            return
        self._batches.append(events)
        self._not_empty.set()

    def put_nowait(self, events: list[Event]) -> None:
        """Queue a batch without waiting, past the bound (the hub's initial snapshot)."""
        if self.types is not None:
            events = [event for event in events if event.type in self.types]
        if events and not self._closed:
            self._batches.append(events)
            self._not_empty.set()

    def discard_cluster(self, cluster: str) -> None:
        """Drop the queued events of `cluster` (the hub stopped watching it: see
        `Hub.remove_cluster`); an event the consumer already took is its own."""
        self._ready = deque(event for event in self._ready if event.cluster != cluster)
        kept = [[e for e in batch if e.cluster != cluster] for batch in self._batches]
        self._batches = deque(batch for batch in kept if batch)
        if len(self._batches) < self._max_batches:
            self._not_full.set()

    def close(self) -> None:
        """Stop the stream: the consumer's `async for` ends after the events already queued.

        Producers waiting for room are released at once and their batches dropped: nobody
        will read them.
        """
        if self._closed:
            return
        self._closed = True
        self._not_full.set()
        self._not_empty.set()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def overflowed(self) -> bool:
        """Closed because its consumer fell too far behind (see the class doc)."""
        return self._overflowed

    @property
    def backlog(self) -> int:
        """Events queued and not yet consumed."""
        return len(self._ready) + sum(len(batch) for batch in self._batches)

    async def _next_queued(self) -> list[Event] | None:
        while not self._batches:
            if self._closed:
                if self._overflowed:
                    raise StreamOverflowError(
                        f"the consumer of {self.spec.resource} fell {self._max_batches} batches "
                        f"behind for {self._max_wait:g}s, so its stream was closed to let the "
                        "cluster's other consumers go on; open a new stream (it starts with the "
                        "current objects)"
                    )
                return None
            self._not_empty.clear()
            await self._not_empty.wait()
        batch = self._batches.popleft()
        self._not_full.set()
        return batch

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._ready:
            batch = await self._next_queued()
            if batch is None:
                raise StopAsyncIteration
            self._ready.extend(batch)
        return self._ready.popleft()

    async def next_batch(self) -> list[Event] | None:
        """Everything queued now (waiting for at least one event); None once closed and drained."""
        if not self._ready:
            first = await self._next_queued()
            if first is None:
                return None
            self._ready.extend(first)
        while self._batches:
            self._ready.extend(self._batches.popleft())
        self._not_full.set()
        batch = list(self._ready)
        self._ready.clear()
        return batch

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
