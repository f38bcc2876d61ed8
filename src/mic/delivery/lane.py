"""`SubscriptionLane`: sends one subscription's stored events to its webhook.

The store is the queue; the lane holds a bounded window of it in memory. Rules it keeps:

* events of one object (a name in a cluster and resource, as client-go keys its queues) leave
  in the order they were stored, one at a time: the next waits until the previous one is
  delivered or dead;
* different objects go in parallel, up to the subscription's concurrency;
* a retryable failure delays only that object (exponential backoff with jitter, at least the
  recipient's `Retry-After`); at `max_age` (or after `max_attempts`, if the policy sets one;
  by default it does not) the event becomes a dead letter and the object's next event goes on;
* when the recipient answers again after failures, every object waiting out a backoff is due
  at once (its outage, not each object, was the reason to wait);
* a 429 or 503 with `Retry-After` speaks for the whole endpoint: the lane starts no request
  of this subscription until that time has passed (requests in flight finish), then resumes
  in the usual order (`_paused_until`);
* with coalescing, an object whose events queue up is sent only its newest state (and the
  DELETED of an older object of the same name);
* an event refused over the backlog limit (`overflow: dead-letter`) holds its object's next
  events until it is stored as a dead letter, so their acknowledgement can mark it superseded;
* acknowledgements are written to the store in small groups (a crash between a delivery and
  its acknowledgement re-sends it: at-least-once, and the stable event id lets recipients
  drop the duplicate).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mic.delivery.acks import Acknowledgements
from mic.delivery.http import shown_origin
from mic.delivery.signing import signature_headers
from mic.delivery.sink import Outcome, SendResult, WebhookClient
from mic.delivery.status import SubscriptionStatus
from mic.events import Event
from mic.events.encodings import EncodedRequest, encode, stable_event_id
from mic.kube.tasks import OwnedTasks
from mic.routing.spec import SubscriptionSpec
from mic.store import DeliveryRow, Replayed, Store, StoreError

log = logging.getLogger(__name__)

PAUSING_STATUSES = frozenset({429, 503})
"""Answers whose `Retry-After` pauses the whole subscription, not only the object that got it."""

STORE_RETRY = 1.0
"""Seconds to wait before using the store again after it failed."""

FAILING_LOG_INTERVAL = 60.0
"""Seconds between two log lines saying a subscription's recipient still fails (the first
failure and the recovery are always logged)."""

MAY_DELIVER_POLL = 0.05
"""Seconds between two looks at whether this MIC may deliver (see `may_deliver`)."""


DUE_SLACK = 64
"""Stale entries `_due` may hold beyond twice the objects before it is rebuilt."""


def object_key(event: Event) -> str:
    """What per-object ordering and coalescing are keyed by: the object's name in its cluster.

    The name, not the uid, as client-go's queues key by namespace/name: when a name is deleted
    and created again, the DELETED of the old object reaches the recipient before the ADDED of
    the new one. Keyed by uid the two could overtake each other, and a recipient that keys by
    name (a load balancer's config) would delete what was just added.
    """
    return f"{event.cluster}/{event.group}/{event.resource}/{event.namespace or ''}/{event.name}"


@dataclass
class Pending:
    """One stored, undelivered event of this subscription."""

    id: int
    object_key: str
    event: Event
    created_at: float
    seq: int
    """The event's `seq` in the outbox: the order events were routed in, which a replay keeps
    (its delivery gets a new id). Coalescing keeps the event of each object routed last."""
    attempts: int = 0
    next_attempt_at: float = 0.0

    @property
    def event_id(self) -> str:
        event = self.event
        return stable_event_id(event.cluster, event.uid, event.resource_version, event.type, event.occasion)


@dataclass
class _ObjectQueue:
    items: deque[Pending] = field(default_factory=deque)
    in_flight: bool = False


class SubscriptionLane:
    """Delivery for one subscription; `enqueue` is called after the outbox commit."""

    def __init__(
        self,
        spec: SubscriptionSpec,
        store: Store,
        client: WebhookClient,
        acknowledgements: Acknowledgements,
        *,
        memory_limit: int = 10_000,
        page_size: int = 1_000,
        clock: Callable[[], float] = time.time,
        may_deliver: Callable[[], bool] = lambda: True,
    ) -> None:
        self.spec = spec
        self._store = store
        self._client = client
        self._may_deliver = may_deliver
        self._memory_limit = memory_limit
        self._page_size = page_size
        self._clock = clock
        self._objects: dict[str, _ObjectQueue] = {}
        self._due: list[tuple[float, int, str]] = []  # (due time, head id, object key)
        # No request starts before this time: the recipient's `Retry-After` (429/503) asked the
        # whole endpoint to be left alone until then. Heads wait in `_due` meanwhile.
        self._paused_until = 0.0
        self._in_memory = 0
        self._max_loaded_id = 0
        self._spilled = True  # start by reading what the store holds
        self._more_in_store = True
        self._wake = asyncio.Event()
        self._acknowledgements = acknowledgements
        self._tasks = OwnedTasks(f"subscription {spec.name}")
        self._senders: set[asyncio.Task[None]] = set()
        self._superseded: list[int] = []  # coalesced away in memory, still pending in the store
        # Heads that took a coalesced head's place and its backoff, not yet written to the store
        # (`_drop_superseded` writes it with the deletion).
        self._inherited: dict[int, Pending] = {}
        self._refused: set[int] = set()  # over the backlog limit, still pending in the store
        # The objects with dead letters: what is delivered of them is acknowledged with the
        # seq of its event, which marks their older dead letters superseded (`Store.replay`).
        self._dead_keys: set[str] = set()
        self._refused_written: set[int] = set()  # ... and now dead in the store
        # Objects with refused rows whose dead-lettering is not stored yet, and how many: their
        # next events wait. Sent and acknowledged before that write, a newer event's mark
        # (`superseded_at`) would find no dead letter to mark, and a replay would later send
        # the refused, older state last.
        self._refusing: dict[str, int] = {}
        self._superseded_lock = asyncio.Lock()
        # counters (status)
        self.backlog = 0
        self.retrying = 0
        self.dead = 0
        self.dead_total = 0
        self.delivered_total = 0
        self.coalesced_total = 0
        self.last_error: str | None = None
        self.last_delivered_at: float | None = None
        self.failed_attempts_total = 0
        # Since when attempts fail without one succeeding (None: the last one succeeded), and
        # how many: an operator reads in the log that a recipient is down, and when it is back.
        self._failing_since: float | None = None
        self._failures_since_ok = 0
        self._failure_logged_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        counts = await self._store.counts(self.spec.name)
        self.backlog = counts.pending
        self.retrying = counts.retrying
        self.dead = counts.dead
        self.dead_total = counts.dead_total
        self.delivered_total = counts.delivered_total
        if counts.last_delivered_at is not None:
            self.last_delivered_at = counts.last_delivered_at.timestamp()
        self._dead_keys = await self._store.dead_object_keys(self.spec.name)
        self._tasks.start("dispatch", self._dispatch_loop())

    async def close(self, *, grace: float = 2.0) -> None:
        """Stop sending; requests in flight get `grace` seconds to finish so that a clean
        shutdown re-sends nothing (the engine writes their acknowledgements)."""
        self._tasks.cancel_named("dispatch")
        if self._senders:
            await asyncio.wait(list(self._senders), timeout=grace)
        for task in list(self._senders):
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        await self._tasks.close()

    def update_spec(self, spec: SubscriptionSpec) -> None:
        """Take a changed sink, format or policy into use for the next requests.

        A new sink URL is another endpoint: the old one's `Retry-After` pause does not apply.
        """
        if spec.sink.url != self.spec.sink.url:
            self._paused_until = 0.0
        self.spec = spec
        self._wake.set()

    # -- intake ---------------------------------------------------------------------------

    def enqueue(self, rows: list[Pending]) -> None:
        """New rows, just committed, in id order."""
        policy = self.spec.delivery
        if policy.overflow == "dead-letter" and self.backlog + len(rows) > policy.backlog_limit:
            room = max(0, policy.backlog_limit - self.backlog)
            rows, refused = rows[:room], rows[room:]
            self.dead += len(refused)
            self.dead_total += len(refused)
            self.last_error = f"backlog limit of {policy.backlog_limit} events reached"
            log.warning(
                "subscription %s: %s; %d event(s) dead-lettered",
                self.spec.name,
                self.last_error,
                len(refused),
            )
            refused_ids = [p.id for p in refused]
            self._refused.update(refused_ids)
            self._dead_keys.update(p.object_key for p in refused)
            keys = [p.object_key for p in refused]
            for key in keys:
                self._refusing[key] = self._refusing.get(key, 0) + 1
            self._tasks.start("overflow", self._dead_letter_refused(refused_ids, keys, self.last_error))
        self.backlog += len(rows)
        if self._spilled or self._in_memory + len(rows) > self._memory_limit:
            self._spilled = True
            self._more_in_store = True
        else:
            self._add(rows)
        self._wake.set()

    async def _dead_letter_refused(self, ids: list[int], keys: list[str], error: str) -> None:
        # Until stored: rows past them are already in memory, so a refill would never read
        # them again, and giving up would leave them pending and unsent until a restart.
        # (Cancelled at close, they stay pending: the next start sends them.)
        while True:
            try:
                await self._store.dead_letter(self.spec.name, ids, error, attempted=False)
                break
            except StoreError as failure:
                log.warning(
                    "subscription %s: cannot dead-letter %d event(s) over the backlog limit: %s;"
                    " retrying in %.0fs",
                    self.spec.name,
                    len(ids),
                    failure,
                    STORE_RETRY,
                )
                await asyncio.sleep(STORE_RETRY)
        # Forgotten only by the next refill that starts after this commit: one that started
        # before it may still read these rows as pending.
        self._refused_written.update(ids)
        for key in keys:
            left = self._refusing[key] - 1
            if left:
                self._refusing[key] = left
            else:
                del self._refusing[key]
        self._wake.set()  # their objects' next events may go

    def _add(self, rows: list[Pending]) -> None:
        for row in rows:
            if row.id in self._refused:
                continue  # over the backlog limit; its dead-lettering is being written
            if row.id <= self._max_loaded_id:
                continue  # already read from the store
            self._max_loaded_id = row.id
            queue = self._objects.get(row.object_key)
            if queue is None:
                queue = self._objects[row.object_key] = _ObjectQueue()
            queue.items.append(row)
            self._in_memory += 1
            if not queue.in_flight:
                head_before = queue.items[0]
                if len(queue.items) > 1 and self._coalescing:
                    self._coalesce(queue)
                head = queue.items[0]
                # A head that is not in flight always has an entry in `_due`: add one for a
                # new head (a new queue, or coalescing replaced the old head).
                if len(queue.items) == 1 or head is not head_before:
                    heapq.heappush(self._due, (head.next_attempt_at, head.id, head.object_key))
        if len(self._due) > 2 * len(self._objects) + DUE_SLACK:
            self._compact_due()

    def _compact_due(self) -> None:
        """Rebuild `_due` from the heads, dropping stale entries.

        A head replaced by coalescing leaves its entry behind until its time comes, and with a
        recipient down, backoff puts that minutes away: a 120 s outage left 35,000 entries for
        200 objects (memory, and `_batch_hold_until` reads them all). Every head not in flight
        has exactly one live entry, at its `next_attempt_at` (`_retry_waiting_now` moves both).
        """
        self._due = [
            (queue.items[0].next_attempt_at, queue.items[0].id, key)
            for key, queue in self._objects.items()
            if queue.items and not queue.in_flight
        ]
        heapq.heapify(self._due)

    @property
    def _coalescing(self) -> bool:
        return self.spec.delivery.coalesce or (self.overflowing and self.spec.delivery.overflow == "coalesce")

    def _coalesce(self, queue: _ObjectQueue) -> None:
        """Keep only the newest queued event of each object (uid) of a name whose head is not
        in flight.

        The rows dropped are deleted from the store before the next request leaves (see
        `_drop_superseded`); the newest carries the full current state, which
        is all a recipient that lags (a load balancer) needs. An older object of the same name
        (deleted, then the name created again) keeps its last event, its DELETED, so a
        recipient that tracks uids also learns that it is gone.
        """
        # The newest by routing order (`Pending.seq`), not by position: a replayed dead letter
        # joins the end of the queue, but an older state it is. Nor by observation time: what
        # MIC sends on its own (a farewell DELETED when the view narrows) is stamped when it is
        # sent, and a change observed just before but routed after it is the newer word.
        last_of_uid: dict[str, Pending] = {}
        for pending in queue.items:
            current = last_of_uid.get(pending.event.uid)
            if current is None or pending.seq >= current.seq:
                last_of_uid[pending.event.uid] = pending
        if len(last_of_uid) == len(queue.items):
            return
        head = queue.items[0]
        kept = [pending for pending in queue.items if last_of_uid[pending.event.uid] is pending]
        dropped = [pending for pending in queue.items if last_of_uid[pending.event.uid] is not pending]
        self.retrying -= sum(1 for pending in dropped if pending.attempts)
        if head.attempts and kept[0] is not head:
            # The new head inherits the backoff: a recipient that is down is not hit once per
            # change, and `max_attempts` (when set) still ends the retries of an object that
            # never gets in. Stored with the dropped rows' deletion, so a restart keeps it.
            successor = kept[0]
            if not successor.attempts:
                self.retrying += 1
            successor.attempts = max(successor.attempts, head.attempts)
            successor.next_attempt_at = max(successor.next_attempt_at, head.next_attempt_at)
            self._inherited[successor.id] = successor
        queue.items = deque(kept)
        self._in_memory -= len(dropped)
        self.backlog -= len(dropped)
        self.coalesced_total += len(dropped)
        self._superseded.extend(pending.id for pending in dropped)

    @property
    def overflowing(self) -> bool:
        """At or over the backlog limit: MIC coalesces or dead-letters new events, as configured."""
        return self.backlog >= self.spec.delivery.backlog_limit

    async def _refill(self) -> None:
        """Read stored rows past what memory holds, while there is room."""
        while self._spilled and self._in_memory < self._memory_limit // 2:
            if self._refused_written:
                self._refused -= self._refused_written
                self._refused_written.clear()
            self._more_in_store = False
            rows = await self._store.pending_deliveries(
                self.spec.name, after_id=self._max_loaded_id, limit=self._page_size
            )
            self._add([_pending_from_row(row) for row in rows])
            if len(rows) < self._page_size and not self._more_in_store:
                self._spilled = False

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                await self._refill()
            except StoreError as error:
                # The store is the queue: without it, wait and read again; nothing is lost.
                self.last_error = f"cannot read the outbox: {error}"
                log.warning(
                    "subscription %s: %s; retrying in %.0fs", self.spec.name, self.last_error, STORE_RETRY
                )
                await asyncio.sleep(STORE_RETRY)
                continue
            wake_at = self._start_ready()
            self._wake.clear()
            timeout = None if wake_at is None else max(0.0, wake_at - self._clock())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _start_ready(self) -> float | None:
        """Start senders for due objects; return when to look again (None: when woken)."""
        held: list[tuple[float, int, str]] = []
        try:
            return self._start_due(held)
        finally:
            for entry in held:
                heapq.heappush(self._due, entry)

    def _start_due(self, held: list[tuple[float, int, str]]) -> float | None:
        """`_start_ready`, leaving out the heads of objects whose refused rows are being
        dead-lettered (`_refusing`): those go to `held`, to be put back."""
        batching = self.spec.batching
        limit = batching.max_events if batching is not None else 1
        while self._due and len(self._senders) < self.spec.delivery.concurrency:
            now = self._clock()
            if self._paused_until > now:
                return self._paused_until
            if self._due[0][0] > now:
                return self._due[0][0]
            if batching is not None:
                hold_until = self._batch_hold_until(now)
                if hold_until is not None:
                    return hold_until
            group: list[Pending] = []
            while self._due and len(group) < limit and self._due[0][0] <= now:
                entry = heapq.heappop(self._due)
                _, head_id, key = entry
                queue = self._objects.get(key)
                if queue is None or not queue.items or queue.in_flight or queue.items[0].id != head_id:
                    continue  # a stale entry: that head was finished or rescheduled meanwhile
                if key in self._refusing:
                    held.append(entry)  # until its refused rows are dead letters (woken then)
                    continue
                queue.in_flight = True
                group.append(queue.items[0])
            if group:
                task = asyncio.create_task(self._send(group), name=f"send {self.spec.name}")
                self._senders.add(task)
                task.add_done_callback(self._sender_done)
        return None

    def _batch_hold_until(self, now: float) -> float | None:
        """When a batch that is not full yet may leave; None if it may leave now.

        A batch leaves when `max_events` events are due or the oldest due one has waited
        `max_wait_ms`.
        """
        batching = self.spec.batching
        assert batching is not None
        due = [entry for entry in self._due if entry[0] <= now]
        if len(due) >= batching.max_events:
            return None
        oldest = min(
            (
                self._objects[key].items[0].created_at
                for _, _, key in due
                if key in self._objects and self._objects[key].items
            ),
            default=now,
        )
        leave_at = oldest + batching.max_wait_ms / 1000.0
        return None if leave_at <= now else leave_at

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("subscription %s: sender crashed", self.spec.name, exc_info=task.exception())
        self._wake.set()

    async def _send(self, group: list[Pending]) -> None:
        """Send one group and record the outcome; whatever fails, no head stays in flight.

        An exception escaping a sender would leave its objects marked in flight: never sent
        again, never dead, and `last_error` silent. Failures before an outcome exists count
        as failed attempts (see `_attempt`); failures to record one put the events back.
        """
        try:
            await self._drop_superseded()
            group, result = await self._attempt(group)
            await self._record(group, result)
        except StoreError as error:
            # The outcome could not be recorded: put the events back in line. If the recipient
            # got them, it gets them again (at-least-once; ids are stable).
            self._put_back(group, f"cannot record a delivery outcome: {error}")
        except Exception as error:
            log.exception("subscription %s: delivery failed unexpectedly", self.spec.name)
            self._put_back(group, f"delivery failed unexpectedly: {type(error).__name__}: {error}")

    def _put_back(self, group: list[Pending], error: str) -> None:
        """Release this sender's heads still in flight, to be tried again in `STORE_RETRY` s.

        Only heads still in flight: one released already (rescheduled) keeps its backoff, and
        the next sender of its object may hold it by now.
        """
        self.last_error = error
        log.warning("subscription %s: %s", self.spec.name, error)
        retry_at = self._clock() + STORE_RETRY
        for pending in group:
            queue = self._objects.get(pending.object_key)
            if queue is not None and queue.in_flight and queue.items and queue.items[0] is pending:
                queue.in_flight = False
                pending.next_attempt_at = max(pending.next_attempt_at, retry_at)
                heapq.heappush(self._due, (pending.next_attempt_at, pending.id, pending.object_key))

    async def _drop_superseded(self) -> None:
        """Delete coalesced rows from the store before anything newer is delivered.

        Were a newer event acknowledged first, a crash could leave an older one pending, to be
        sent after the restart: a stale state delivered last. The lock makes every sender wait
        for a deletion already under way, not only for the ones it starts itself.
        """
        async with self._superseded_lock:
            if not self._superseded:
                return
            ids, self._superseded = self._superseded, []
            inherited, self._inherited = self._inherited, {}
            backoff = [(p.id, p.attempts, _as_datetime(p.next_attempt_at)) for p in inherited.values()]
            try:
                await self._store.drop_superseded(self.spec.name, ids, backoff=backoff)
            except BaseException:
                self._superseded[:0] = ids
                self._inherited = inherited | self._inherited
                raise

    async def _attempt(self, group: list[Pending]) -> tuple[list[Pending], SendResult]:
        """Encode, sign and post the group: the part it was sent in, and the outcome.

        Any exception here is a failed attempt with `last_error` saying why, retried with
        backoff and dead at `max_age` (or `max_attempts`) like a recipient that is down: a spec stored
        before a validation existed, or an event the encoder cannot write, must not stop the
        subscription's queue. (Cancellation is not an Exception and still ends the sender.)
        """
        started = time.monotonic()
        try:
            group, request = self._fit(group)
            return group, await self._post(group, request)
        except Exception as error:
            log.exception("subscription %s: cannot send %d event(s)", self.spec.name, len(group))
            detail = f"cannot send: {type(error).__name__}: {error}"
            duration = (time.monotonic() - started) * 1000.0
            return group, SendResult(Outcome.RETRY, None, detail, None, duration)

    async def _record(self, group: list[Pending], result: SendResult) -> None:
        if result.outcome is Outcome.DELIVERED:
            self.last_delivered_at = self._clock()
            self.last_error = None
            if self._failing_since is not None:
                log.info(
                    "subscription %s: %s answers again, after %d failed attempt(s) in %.0fs",
                    self.spec.name, shown_origin(self.spec.sink.url), self._failures_since_ok,
                    self.last_delivered_at - self._failing_since,
                )  # fmt: skip
                self._failing_since = None
                self._failures_since_ok = 0
                self._retry_waiting_now(self.last_delivered_at)
            superseding: dict[tuple[str, str], int] = {}
            for pending in group:
                self._finish(pending)
                if pending.object_key in self._dead_keys:
                    key = (pending.object_key, pending.event.uid)
                    if pending.seq > superseding.get(key, -1):
                        superseding[key] = pending.seq
            self._acknowledgements.add(self.spec.name, [pending.id for pending in group], superseding)
            self.delivered_total += len(group)
            return
        await self._record_failure(group, result)

    async def _record_failure(self, group: list[Pending], result: SendResult) -> None:
        """Count the failed attempt; retry with backoff, or dead-letter what is out of tries.

        Every store write comes before any head is released: a head released while a later
        write was pending could be taken by a new sender and then, if that write failed, be
        put back by `_put_back` while in flight again.
        """
        spec = self.spec
        self.last_error = result.error
        now = self._clock()
        # Before any await: no sender may start meanwhile.
        self._pause_for(result, now)
        self._log_failure(result, now)
        retry, dead = self._count_attempt(group, result, now)
        for pending in retry:
            await self._store.reschedule(
                pending.id, pending.attempts, _as_datetime(pending.next_attempt_at), result.error
            )
        if dead:
            await self._store.dead_letter(spec.name, [p.id for p in dead], result.error or "undeliverable")
            self._dead_keys.update(p.object_key for p in dead)
        # A delivery that got through while the writes above were awaited ended the failing
        # run (`_retry_waiting_now` ran without these heads): they go at once too.
        recovered_at = self._clock() if self._failing_since is None else None
        for pending in retry:
            queue = self._objects[pending.object_key]
            queue.in_flight = False
            if len(queue.items) > 1 and self._coalescing:
                self._coalesce(queue)  # what queued up behind it during the attempt
            head = queue.items[0]
            if recovered_at is not None and head.next_attempt_at > recovered_at:
                head.next_attempt_at = recovered_at
            heapq.heappush(self._due, (head.next_attempt_at, head.id, pending.object_key))
        if dead:
            self.dead += len(dead)
            self.dead_total += len(dead)
            for pending in dead:
                log.warning(
                    "subscription %s: event %s of %s is a dead letter after %d attempt(s): %s",
                    spec.name, pending.event_id, pending.object_key, pending.attempts, result.error,
                )  # fmt: skip
                self._finish(pending)

    def _retry_waiting_now(self, now: float) -> None:
        """The recipient answers again: objects waiting out a backoff of its outage go now.

        Each object's backoff grew on its own (up to `max_backoff`), so after an outage the
        backlog would drain only as each wait ran out (minutes, for a load balancer's routes);
        one delivery that got through is the evidence they wait for. Their stored next attempt
        is left as it is (a restart goes on from there). A `Retry-After` pause still holds.
        """
        moved = False
        for index, (due, head_id, key) in enumerate(self._due):
            queue = self._objects.get(key)
            if due <= now or queue is None or not queue.items or queue.items[0].id != head_id:
                continue
            head = queue.items[0]
            if head.attempts:
                head.next_attempt_at = now
                self._due[index] = (now, head_id, key)
                moved = True
        if moved:
            heapq.heapify(self._due)
            self._wake.set()

    def _log_failure(self, result: SendResult, now: float) -> None:
        """Count a failed attempt; log the first of a run, then one line a minute at most."""
        self.failed_attempts_total += 1
        self._failures_since_ok += 1
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failure_logged_at < FAILING_LOG_INTERVAL:
            return
        self._failure_logged_at = now
        log.warning(
            "subscription %s: delivery to %s failed (%s); retrying with backoff"
            " (%d failed attempt(s) in %.0fs, %d event(s) waiting)",
            self.spec.name, shown_origin(self.spec.sink.url), result.error or "no answer",
            self._failures_since_ok, now - self._failing_since, self.backlog,
        )  # fmt: skip

    def _pause_for(self, result: SendResult, now: float) -> None:
        """A 429/503 with `Retry-After` pauses the subscription's sending until then.

        Only the start of requests waits: each waiting head keeps its place in `_due`, so
        objects resume in the order they were due, one event at a time as always.
        """
        if result.retry_after is None or result.status_code not in PAUSING_STATUSES:
            return
        until = now + result.retry_after
        if until > self._paused_until:
            self._paused_until = until
            log.info(
                "subscription %s: recipient answered %s with Retry-After; sending paused for %.3gs",
                self.spec.name, result.status_code, result.retry_after,
            )  # fmt: skip

    def _count_attempt(
        self, group: list[Pending], result: SendResult, now: float
    ) -> tuple[list[Pending], list[Pending]]:
        """Add the attempt to each event; split them into retried (with their next attempt
        time set) and dead (permanent answer, out of attempts or too old)."""
        policy = self.spec.delivery
        retry: list[Pending] = []
        dead: list[Pending] = []
        for pending in group:
            pending.attempts += 1
            if pending.attempts == 1:
                self.retrying += 1
            too_old = now - pending.created_at >= policy.max_age
            out_of_attempts = policy.max_attempts is not None and pending.attempts >= policy.max_attempts
            if result.outcome is Outcome.PERMANENT or out_of_attempts or too_old:
                dead.append(pending)
                continue
            delay = min(policy.max_backoff, policy.initial_backoff * 2 ** (pending.attempts - 1))
            delay *= 0.5 + random.random()
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            pending.next_attempt_at = now + delay
            retry.append(pending)
        return retry, dead

    def _finish(self, pending: Pending) -> None:
        """The head of an object's queue is done (delivered or dead): release the next one."""
        queue = self._objects.get(pending.object_key)
        self.backlog -= 1
        if pending.attempts:
            self.retrying -= 1
        if queue is None:
            return
        if queue.items and queue.items[0] is pending:
            queue.items.popleft()
            self._in_memory -= 1
        queue.in_flight = False
        if len(queue.items) > 1 and self._coalescing:
            self._coalesce(queue)
        if queue.items:
            head = queue.items[0]
            heapq.heappush(self._due, (head.next_attempt_at, head.id, pending.object_key))
        else:
            del self._objects[pending.object_key]

    def _fit(self, group: list[Pending]) -> tuple[list[Pending], EncodedRequest]:
        """Encode the group; a batch over `max_bytes` gives back its second half until it fits.

        What is given back is released only once the request is built: if encoding raises,
        the whole group is still this sender's, and `_attempt` counts the failure for it.
        """
        spec = self.spec
        sending = group
        request = self._encode(sending)
        while spec.batching is not None and len(request.body) > spec.batching.max_bytes and len(sending) > 1:
            sending = sending[: len(sending) // 2]
            request = self._encode(sending)
        for pending in group[len(sending) :]:
            self._objects[pending.object_key].in_flight = False
            heapq.heappush(self._due, (pending.next_attempt_at, pending.id, pending.object_key))
        return sending, request

    def _encode(self, group: list[Pending]) -> EncodedRequest:
        spec = self.spec
        return encode(
            [p.event for p in group],
            spec.format,
            batch=spec.batching is not None,
            redact=not spec.include_secret_data,
        )

    async def _post(self, group: list[Pending], request: EncodedRequest) -> SendResult:
        # Right before sending: a MIC that was frozen and may have lost its lease meanwhile
        # waits here until it renews it, or learns that it lost it and stops.
        while not self._may_deliver():  # noqa: ASYNC110 (a condition of the clock: nothing to wait on)
            await asyncio.sleep(MAY_DELIVER_POLL)
        sink = self.spec.sink
        headers = dict(request.headers)
        headers.update(sink.headers)
        secrets = sink.signing_secrets(time.time())
        if secrets:
            message_id = group[0].event_id if len(group) == 1 else _batch_id(group)
            headers.update(signature_headers(secrets, message_id, request.body))
        return await self._client.post(sink.url, request.body, headers, sink.timeout, tls=sink.tls)

    # -- status ---------------------------------------------------------------------------

    def status(self, *, cel_errors: int = 0, last_cel_error: str | None = None) -> SubscriptionStatus:
        oldest = min((q.items[0].created_at for q in self._objects.values() if q.items), default=None)
        return SubscriptionStatus(
            name=self.spec.name,
            delivered_total=self.delivered_total,
            dead=self.dead,
            dead_total=self.dead_total,
            backlog=self.backlog,
            retrying=max(0, self.retrying),
            in_flight=len(self._senders),
            coalesced_total=self.coalesced_total,
            oldest_undelivered_age=(self._clock() - oldest) if oldest is not None else None,
            last_error=self.last_error,
            last_delivered_at=self.last_delivered_at,
            overflowing=self.overflowing,
            cel_errors=cel_errors,
            last_cel_error=last_cel_error,
            failed_attempts_total=self.failed_attempts_total,
        )

    def replayed(self, replayed: Replayed) -> None:
        """Dead letters went back to the end of the queue in the store (under new ids): read
        them from there. Those the store dropped as superseded count as coalesced."""
        count = len(replayed.ids)
        self.dead -= count + replayed.superseded
        self.coalesced_total += replayed.superseded
        if not count:
            return
        self.backlog += count
        self._spilled = True
        self._more_in_store = True
        self._wake.set()


def _batch_id(group: list[Pending]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for pending in group:
        digest.update(pending.event_id.encode())
    return digest.hexdigest()


def _as_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _pending_from_row(row: DeliveryRow) -> Pending:
    event = row.event.to_event()
    next_at = row.next_attempt_at.timestamp() if row.next_attempt_at is not None else 0.0
    return Pending(
        id=row.id,
        # From the event, not the stored column: rows queued by a version that keyed by uid
        # line up with the new ones of the same name.
        object_key=object_key(event),
        event=event,
        created_at=row.created_at.timestamp(),
        seq=row.event.seq,
        attempts=row.attempts,
        next_attempt_at=next_at,
    )
