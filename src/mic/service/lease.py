"""One MIC delivers per store: a lease in the database elects it.

Two MICs on one database would both deliver every change (duplicates, twice the load on every
recipient) and both write the ledger. That happens by accident as soon as MIC runs as a
Deployment: a rolling update starts the new pod before the old one stops. So every MIC takes
the store's delivery lease before it starts its engine and its watches; one that finds it held
waits as a standby (its API answers 503, `/healthz` stays 200) and takes over when the holder
releases it (a clean stop: within `STANDBY_POLL` s) or stops renewing it (a crash: after
`duration` s).

Staleness is measured with the waiting MIC's own monotonic clock, from the last time it saw the
row change, never by comparing timestamps another host wrote: clocks that disagree cannot make
two holders. A holder that cannot renew for `duration * 2 / 3` s, or finds the lease taken, has
lost it: it must stop acting at once (`mic serve` exits; the outbox makes that as safe as a
crash, and its supervisor restarts it as the standby). Until it notices, the store refuses its
writes of delivery state (`Store.fence`, `mic.store.fencing`): a holder frozen past a takeover
may still send a request it had begun, never commit an outbox row or acknowledgement.

A holder id names the host, the process and its PID namespace (`host:pid:random:pidns`). A
lease left by a process of this host and PID namespace that no longer runs (or that had our
pid) is taken at once, so a restart after `kill -9` does not wait `duration` s. Only then: two
containers on one host network share the hostname, and often the pid (1), while each sees
none of the other's processes; a holder in another PID namespace (or named in the older
`host:pid:random` form) cannot be proved dead, so it gets the full `duration`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

from mic.service.defaults import DEFAULT_LEASE_SECONDS
from mic.store import Fence, LeaseRecord, Store, StoreError

log = logging.getLogger(__name__)

DELIVERY_LEASE = "delivery"

STANDBY_POLL = 0.5
"""Seconds between a standby's looks at the lease (at most; `duration / 5` if shorter): one
indexed read, and what a clean stop's hand-over waits for."""


def new_holder_id() -> str:
    """`host:pid:random:pidns`: who holds a lease, readable in logs and unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{pid_namespace()}"


def pid_namespace() -> str:
    """This process's PID namespace (its inode number), "" where there are none (not Linux).

    Pids name processes only within one PID namespace: each container has its own.
    """
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return "".join(character for character in link if character.isdigit())


def _left_by_a_dead_process(holder: str) -> bool:
    """Whether `holder` is a process of this host and PID namespace that has ended (or whose
    pid is now ours). False whenever that cannot be known (see the module's doc)."""
    parts = holder.split(":")
    if len(parts) != 4:
        return False  # not an id of this form (an older MIC's): no namespace to compare
    host, pid_text, _, namespace = parts
    if host != socket.gethostname() or namespace != pid_namespace() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # our own pid in an older holder id: that process is gone (a restart)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that ended (`kill -9`) but that its parent has not reaped yet still answers
    `kill(pid, 0)`; Linux says what it is in /proc (elsewhere: taken to be alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses; the state follows the last ")".
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False


class LeaseLost(Exception):
    """The lease changed hands, or could not be renewed in time: stop acting for the store."""


class StoreLease:
    """One process's claim on one lease of a store.

    `acquire()` waits until this process holds it; `keep()` renews it until cancelled and raises
    `LeaseLost` when it is lost; `release()` gives it up.
    """

    def __init__(
        self,
        store: Store,
        *,
        name: str = DELIVERY_LEASE,
        holder: str | None = None,
        duration: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if duration <= 0:
            raise ValueError("a lease duration must be positive")
        self.store = store
        self.name = name
        self.holder = holder or new_holder_id()
        self.duration = duration
        self._clock = clock
        self._held: LeaseRecord | None = None
        self._renewed_at = 0.0  # this process's clock when the lease was last taken or renewed
        self._observed: tuple[str, int, int] | None = None
        self._observed_at = 0.0
        self.other_holder: str | None = None
        """The holder this process waits for, while it waits (for status and logs)."""

    @property
    def held(self) -> bool:
        return self._held is not None

    def current(self) -> bool:
        """Held, and renewed recently enough that no standby can have taken it over: checked
        before each delivery. A holder frozen (SIGSTOP, a VM paused) for longer than a standby
        waits wakes with a lease that says `held` until its next renewal fails; what it would
        send meanwhile comes after, and behind, what the new holder sent. It sends nothing
        while its last renewal is older than `duration * 2 / 3` s (where `keep` gives up), a
        third of `duration` before any standby's clock can call it stale."""
        return self._held is not None and self._clock() - self._renewed_at < self.duration * 2 / 3

    async def try_acquire(self) -> bool:
        """One attempt: take the lease if it is free, released, or stale; True if held now."""
        record = await self.store.get_lease(self.name)
        now = self._clock()
        if record is None:
            claimed = await self.store.claim_lease(self.name, self.holder, replacing=None)
        elif record.holder == self.holder:
            claimed = record  # ours already (a second call)
        elif record.holder == "" or _left_by_a_dead_process(record.holder):
            claimed = await self.store.claim_lease(self.name, self.holder, replacing=record)
        else:
            seen = (record.holder, record.epoch, record.renewals)
            if seen != self._observed:
                self._observed, self._observed_at = seen, now
                self.other_holder = record.holder
                return False
            if now - self._observed_at < self.duration:
                return False
            log.warning(
                "lease %r: holder %s has not renewed it for %.0f s; taking it over",
                self.name,
                record.holder,
                now - self._observed_at,
            )
            claimed = await self.store.claim_lease(self.name, self.holder, replacing=record)
        if claimed is None:
            self._observed = None  # someone else moved first: watch the new row from now
            return False
        self._held = claimed
        self._renewed_at = now
        self.other_holder = None
        # From now on the store writes delivery state only while this lease is ours: a holder
        # frozen past a takeover wakes to refused writes, not to doubled or stale ones. The
        # fence stays after a loss or a release: this process must not write as holder again.
        self.store.fence = Fence(self.name, self.holder, claimed.epoch)
        log.info("lease %r taken by %s (epoch %d)", self.name, self.holder, claimed.epoch)
        return True

    async def acquire(self, *, on_wait: Callable[[str], None] | None = None) -> None:
        """Wait until this process holds the lease; `on_wait(holder)` is called once, if it must wait."""
        told = False
        while not await self._attempt():
            if not told and on_wait is not None:
                on_wait(self.other_holder or "another MIC")
                told = True
            await asyncio.sleep(min(STANDBY_POLL, self.duration / 5))

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except StoreError as error:
            log.warning("lease %r: store error while waiting for it (%s); trying again", self.name, error)
            return False

    async def keep(self) -> None:
        """Renew the lease every `duration / 3` s until cancelled; raise `LeaseLost` when it is lost."""
        held = self._held
        if held is None:
            raise LeaseLost(f"lease {self.name!r} is not held by {self.holder}")
        renewed_at = self._renewed_at = self._clock()
        deadline = self.duration * 2 / 3
        while True:
            await asyncio.sleep(self.duration / 3)
            try:
                async with asyncio.timeout(max(0.1, deadline - (self._clock() - renewed_at))):
                    still_ours = await self.store.renew_lease(self.name, self.holder, held.epoch)
            except (StoreError, TimeoutError) as error:
                if self._clock() - renewed_at >= deadline:
                    self._held = None
                    raise LeaseLost(
                        f"lease {self.name!r} could not be renewed for {deadline:.0f} s"
                        f" ({error or 'timeout'}); another MIC may take it over"
                    ) from error
                log.warning("lease %r: renewal failed (%s); trying again", self.name, error or "timeout")
                continue
            if not still_ours:
                self._held = None
                raise LeaseLost(f"lease {self.name!r} was taken over by another MIC")
            renewed_at = self._renewed_at = self._clock()

    async def release(self) -> None:
        """Give the lease up so a standby takes over at once; a store error only costs it time."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            await self.store.release_lease(self.name, self.holder, held.epoch)
            log.info("lease %r released by %s", self.name, self.holder)
        except StoreError as error:
            log.warning("lease %r: could not release it (%s); it expires instead", self.name, error)
