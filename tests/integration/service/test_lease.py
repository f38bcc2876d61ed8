"""The delivery lease on a real store: one holder, takeover after silence or release, loss seen."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import pytest

from mic.service.lease import LeaseLost, StoreLease, new_holder_id, pid_namespace
from mic.store import Fence, FencedOutError, Store


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_second_process_waits_while_the_holder_renews_then_takes_over_when_it_stops(
    store: Store,
) -> None:
    clock = ManualClock()
    holder = StoreLease(store, holder="a", duration=15, clock=clock)
    standby = StoreLease(store, holder="b", duration=15, clock=clock)
    assert await holder.try_acquire()

    assert not await standby.try_acquire()
    assert standby.other_holder == "a"
    for _ in range(5):  # the holder renews: however long it holds, the standby waits
        clock.now += 10
        assert await store.renew_lease("delivery", "a", 1)
        assert not await standby.try_acquire()

    clock.now += 14.9  # silent, but not for a whole duration yet
    assert not await standby.try_acquire()
    clock.now += 0.2
    assert await standby.try_acquire()
    lease = await store.get_lease("delivery")
    assert lease is not None
    assert (lease.holder, lease.epoch) == ("b", 2)


async def test_a_released_lease_is_taken_at_once(store: Store) -> None:
    clock = ManualClock()
    holder = StoreLease(store, holder="a", duration=15, clock=clock)
    standby = StoreLease(store, holder="b", duration=15, clock=clock)
    assert await holder.try_acquire()
    assert not await standby.try_acquire()

    await holder.release()

    assert await standby.try_acquire()


async def test_a_lease_left_by_a_dead_process_of_this_host_is_taken_at_once(store: Store) -> None:
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()  # a pid that no longer runs
    dead = f"{socket.gethostname()}:{process.pid}:0000:{pid_namespace()}"
    alive = f"{socket.gethostname()}:{os.getppid()}:0000:{pid_namespace()}"
    assert await store.claim_lease("delivery", dead, replacing=None) is not None
    assert await store.claim_lease("other", alive, replacing=None) is not None

    assert await StoreLease(store, duration=15, clock=ManualClock()).try_acquire()
    assert not await StoreLease(store, name="other", duration=15, clock=ManualClock()).try_acquire()


async def test_a_lease_left_by_a_killed_process_not_reaped_yet_is_taken_at_once(store: Store) -> None:
    """`kill -9`, and its parent has not waited for it yet: a zombie still answers kill(pid, 0)."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        child.kill()
        stat = Path(f"/proc/{child.pid}/stat")
        for _ in range(100):  # until the kernel has made it a zombie (never reaped here)
            if stat.read_bytes().rpartition(b")")[2].split()[:1] == [b"Z"]:
                break
            await asyncio.sleep(0.01)
        zombie = f"{socket.gethostname()}:{child.pid}:0000:{pid_namespace()}"
        assert await store.claim_lease("delivery", zombie, replacing=None) is not None
        assert await StoreLease(store, duration=15, clock=ManualClock()).try_acquire()
    finally:
        child.wait()


async def test_the_holder_learns_it_lost_the_lease(store: Store) -> None:
    holder = StoreLease(store, holder="a", duration=0.3)
    assert await holder.try_acquire()
    seen = await store.get_lease("delivery")
    assert seen is not None
    assert await store.claim_lease("delivery", "b", replacing=seen) is not None  # taken over

    with pytest.raises(LeaseLost, match="taken over"):
        await asyncio.wait_for(holder.keep(), timeout=5)
    assert not holder.held


async def test_a_holder_s_store_refuses_delivery_writes_once_a_standby_took_over(
    store: Store, tmp_path: Path
) -> None:
    """A holder frozen past a takeover (its keeper has not noticed yet) writes nothing more."""
    clock = ManualClock()
    holder = StoreLease(store, holder="a", duration=15, clock=clock)
    assert await holder.try_acquire()
    assert store.fence == Fence("delivery", "a", 1)
    await store.purge_delivered_events()  # not delivery state: never fenced
    await store.delivered_many({"s": [1]})  # an acknowledgement: fenced, the lease is ours

    standby_store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}")
    try:
        standby = StoreLease(standby_store, holder="b", duration=15, clock=clock)
        assert not await standby.try_acquire()
        clock.now += 16  # the holder is frozen: no renewal for a whole duration
        assert await standby.try_acquire()
        assert standby_store.fence == Fence("delivery", "b", 2)

        with pytest.raises(FencedOutError, match=r"held by b since epoch 2"):
            await store.delivered_many({"s": [1]})
        await standby_store.delivered_many({"s": [1]})
    finally:
        await standby_store.close()


async def test_a_holder_that_cannot_renew_in_time_gives_up_before_a_standby_may_take_over(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gone.db'}")
    holder = StoreLease(store, holder="a", duration=0.6)
    assert await holder.try_acquire()
    await store.close()
    (tmp_path / "gone.db").unlink()  # reopened empty: every renewal fails (no such table)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LeaseLost, match="could not be renewed"):
        await asyncio.wait_for(holder.keep(), timeout=5)
    assert loop.time() - started < 0.6, "gave up no earlier than a standby may take over"


async def test_acquire_waits_and_says_for_whom(store: Store) -> None:
    holder = StoreLease(store, holder="a", duration=0.25)
    assert await holder.try_acquire()
    waiting_for: list[str] = []
    standby = StoreLease(store, holder="b", duration=0.25)

    task = asyncio.create_task(standby.acquire(on_wait=waiting_for.append))
    await asyncio.sleep(0.1)
    assert not task.done()
    assert waiting_for == ["a"]
    await holder.release()
    await asyncio.wait_for(task, timeout=5)
    assert standby.held


def test_holder_ids_name_the_host_process_and_pid_namespace() -> None:
    host, pid, random, namespace = new_holder_id().split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert len(random) == 8
    assert namespace == str(Path("/proc/self/ns/pid").stat().st_ino)


async def test_a_holder_of_this_host_in_another_pid_namespace_waits_the_whole_duration(store: Store) -> None:
    """Two containers on one host network: same hostname, both pid 1, each blind to the other's
    processes. Neither may call the other dead (it took the lease from a live holder)."""
    host, pid = socket.gethostname(), os.getpid()
    other_container = f"{host}:{pid}:0000:{int(pid_namespace()) + 1}"
    older_form = f"{host}:{pid}:0000"  # an older MIC's id: no namespace to compare
    assert await store.claim_lease("delivery", other_container, replacing=None) is not None
    assert await store.claim_lease("other", older_form, replacing=None) is not None
    clock = ManualClock()
    for name in ("delivery", "other"):
        lease = StoreLease(store, name=name, duration=15, clock=clock)
        assert not await lease.try_acquire()
        clock.now += 10
        assert not await lease.try_acquire()
        clock.now += 6
        assert await lease.try_acquire()


async def test_a_holder_frozen_past_its_renewals_may_not_deliver_before_a_standby_could_take_over(
    store: Store,
) -> None:
    """`current()` is asked before each delivery: a holder that wakes from a freeze (SIGSTOP,
    a paused VM) still says `held` until its next renewal fails, but must send nothing."""
    clock = ManualClock()
    holder = StoreLease(store, holder="a", duration=15, clock=clock)
    standby = StoreLease(store, holder="b", duration=15, clock=clock)
    assert not holder.current()
    assert await holder.try_acquire()
    assert holder.current()
    assert not await standby.try_acquire()
    clock.now += 9.9  # under two thirds of the duration since it was taken
    assert holder.current()
    clock.now += 0.2
    assert holder.held
    assert not holder.current()  # a third of the duration before the standby may take it
    assert not await standby.try_acquire()
    clock.now += 5.0
    assert await standby.try_acquire()
    assert not holder.current()
