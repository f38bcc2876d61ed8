"""`EventStream`: one consumer's ordered, bounded view of the hub's events."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

from mic.events import Event, EventType
from mic.hub.spec import WatchSpec


class EventStream:
    """Events for one `WatchSpec`, consumed with `async for`.

    Batches from informers are queued as they come; the queue holds at most `max_batches`
    batches, and when it is full the informer that feeds it waits. That back-pressure slows
    only the (cluster, resource) streams this consumer is behind on, never other clusters,
    and never drops an event. `close()` (or leaving `async with`) ends the iteration.
    """

    def __init__(
        self,
        spec: WatchSpec,
        *,
        types: Iterable[EventType] | None = None,
        max_batches: int = 1024,
        on_close: Callable[[EventStream], None] | None = None,
    ) -> None:
        self.spec = spec
        self.types = frozenset(types) if types is not None else None
        self._batches: deque[list[Event]] = deque()
        self._max_batches = max_batches
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._ready: deque[Event] = deque()
        self._closed = False
        self._on_close = on_close

    async def put(self, events: list[Event]) -> None:
        """Queue a batch (called by the hub); waits while the consumer is too far behind."""
        if self.types is not None:
            events = [event for event in events if event.type in self.types]
            if not events:
                return
        while len(self._batches) >= self._max_batches and not self._closed:
            self._not_full.clear()
            await self._not_full.wait()
        if self._closed:
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
    def backlog(self) -> int:
        """Events queued and not yet consumed."""
        return len(self._ready) + sum(len(batch) for batch in self._batches)

    async def _next_queued(self) -> list[Event] | None:
        while not self._batches:
            if self._closed:
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
