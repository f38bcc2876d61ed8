"""One open watch: which changes it wants, how it buffers them, and how it streams them.

A `Watcher` is fed synchronously by `ClusterState` (see `offer`) and drained by the HTTP
handler's coroutine (`stream`), which is the only place that awaits the socket. Between the
two sits a bounded buffer: a client that cannot keep up gets its watch closed, as kube's
cacher closes slow watchers, and must re-watch from its last resourceVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from aiohttp import web

from mic.testing.emulator.resources import ResourceType
from mic.testing.emulator.selectors import FieldSelector, LabelSelector
from mic.testing.emulator.state import ADDED, DELETED, MODIFIED, Change, encode_event

log = logging.getLogger(__name__)

# How a watch ends: cleanly (chunked end, like a server timeout), abruptly (transport abort,
# like a network cut), or not at all (stalled: stays open, sends nothing).
LIVE, ENDED, DROPPED, STALLED = "live", "ended", "dropped", "stalled"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_CHUNK = 1 << 20
_INITIAL_BATCH = 512


def chunk_lines(lines: list[bytes], size: int = _CHUNK) -> list[bytes]:
    """Join watch lines into writes of about `size` bytes (few large writes beat many small)."""
    chunks: list[bytes] = []
    batch: list[bytes] = []
    pending = 0
    for line in lines:
        batch.append(line)
        pending += len(line)
        if pending >= size:
            chunks.append(b"".join(batch))
            batch, pending = [], 0
    if batch:
        chunks.append(b"".join(batch))
    return chunks


class Watcher:
    """The server side of one watch request."""

    def __init__(
        self,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        bookmarks: bool,
        bookmark_interval: float,
        timeout: float | None,
        max_buffer: int,
        current_rv: Any,
    ) -> None:
        self.rt = rt
        self.api_version = rt.api_version_for(version)
        self._convert = self.api_version != rt.api_version
        self.namespace = namespace if rt.namespaced else None
        self.labels = labels
        self.fields = fields
        self._filtered = not labels.empty or not fields.empty
        self.bookmarks = bookmarks
        self.bookmark_interval = bookmark_interval
        self.timeout = timeout
        self.max_buffer = max_buffer
        self._current_rv = current_rv  # callable returning the global resourceVersion
        self.state = LIVE
        self.buffer: list[bytes] = []
        self.prelude: list[bytes] = []  # firehose chunks, then initial events, written first
        self.initial: Sequence[dict[str, Any]] = ()
        self.initial_end_rv: int | None = None
        self.since_rv = 0
        """The resourceVersion the watch started from: nothing at or below it is sent. Only a
        watch from a version the server has not reached yet sees the difference: like kube's
        watch cache, it stays silent (bookmarks too) until changes pass that version."""
        self.wakeup = asyncio.Event()
        self.overflowed = False

    # -- fed by the state (synchronous) -------------------------------------------------

    def wants(self, obj: dict[str, Any]) -> bool:
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return not self._filtered or (
            self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)
        )

    def _encode(self, event_type: str, obj: dict[str, Any]) -> bytes:
        if self._convert:
            obj = dict(obj, apiVersion=self.api_version)
        return encode_event(event_type, obj)

    def line_for(self, change: Change) -> bytes | None:
        """The line this watcher sends for `change`, or None; selectors turn an object that
        enters the selection into ADDED and one that leaves it into DELETED (of its previous
        state at the new resourceVersion), exactly as kube's watch cache does."""
        meta = change.obj["metadata"]
        if self.namespace and meta.get("namespace") != self.namespace:
            return None
        if not self._filtered:
            return change.line() if not self._convert else self._encode(change.type, change.obj)
        now = self.wants(change.obj)
        if change.type == ADDED:
            return self._encode(ADDED, change.obj) if now else None
        if change.type == DELETED:
            return self._encode(DELETED, change.obj) if now else None
        before = change.prev is not None and self.wants(change.prev)
        if now:
            return self._encode(MODIFIED if before else ADDED, change.obj)
        if before and change.prev is not None:
            prev = dict(change.prev)
            prev["metadata"] = dict(prev["metadata"], resourceVersion=meta["resourceVersion"])
            return self._encode(DELETED, prev)
        return None

    def offer(self, change: Change) -> None:
        if self.state != LIVE or change.rv <= self.since_rv:
            return
        line = self.line_for(change)
        if line is None:
            return
        self.buffer.append(line)
        if len(self.buffer) > self.max_buffer:
            # kube's cacher drops a watcher that cannot keep up; the client re-watches from
            # the last resourceVersion it saw and gets the rest from history.
            self.overflowed = True
            log.warning(
                "closing a watch on %s: the client fell %d events behind", self.rt.key, len(self.buffer)
            )
            self.buffer.clear()
            self.close(ENDED)
        self.wakeup.set()

    def close(self, how: str) -> None:
        """End this watch: ENDED (clean), DROPPED (abort) or STALLED (silence)."""
        if self.state == LIVE or (self.state == STALLED and how != STALLED):
            self.state = how
            if how == STALLED:
                self.buffer.clear()
            self.wakeup.set()

    # -- drained by the handler -------------------------------------------------------

    def _initial_chunks(self) -> Iterator[bytes]:
        batch: list[bytes] = []
        for obj in self.initial:
            batch.append(self._encode(ADDED, obj))
            if len(batch) >= _INITIAL_BATCH:
                yield b"".join(batch)
                batch = []
        if self.initial_end_rv is not None:
            batch.append(self._bookmark(self.initial_end_rv, initial_end=True))
        if batch:
            yield b"".join(batch)

    def _bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.api_version, "metadata": meta}
        return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b"}\n"

    async def stream(self, request: web.Request, response: web.StreamResponse) -> str:
        """Write events until the watch ends; returns how it ended (ENDED or DROPPED)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout if self.timeout else None
        next_bookmark = loop.time() + self.bookmark_interval
        for chunk in itertools.chain(self.prelude, self._initial_chunks()):
            if self.state != LIVE:
                break
            await response.write(chunk)
        self.prelude = []
        self.initial = ()
        while True:
            self.wakeup.clear()
            if self.state == DROPPED:
                return DROPPED
            if self.state == ENDED and not self.buffer:
                return ENDED
            if self.state == STALLED:
                await self._wait_closed(request)
                continue
            if self.buffer:
                lines, self.buffer = self.buffer, []
                data = b"".join(lines)
                for start in range(0, len(data), _CHUNK):
                    await response.write(data[start : start + _CHUNK])
                continue
            now = loop.time()
            if deadline is not None and now >= deadline:
                return ENDED
            if self.bookmarks and now >= next_bookmark:
                next_bookmark = now + self.bookmark_interval
                # At the watch's own version too: a real cluster's version never stands still
                # (leases renew every few seconds), so its bookmarks keep coming on a quiet
                # resource; an idle emulator's would not, and informers would take that
                # silence for a stalled watch. Only a watch from the future stays silent.
                if (current := self._current_rv()) >= self.since_rv:
                    await response.write(self._bookmark(current))
                continue
            wait = (next_bookmark - now) if self.bookmarks else 3600.0
            if deadline is not None:
                wait = min(wait, deadline - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=max(wait, 0.0))

    async def _wait_closed(self, request: web.Request) -> None:
        """Stalled: send nothing; poll the transport so a client's close ends the handler."""
        while self.state == STALLED:
            transport = request.transport
            if transport is None or transport.is_closing():
                self.state = DROPPED
                return
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=0.1)
