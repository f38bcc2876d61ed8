"""Write fencing: a store's writes of delivery state check, inside their own transaction, that
the lease this process took is still its own (`Store.fence`).

Why: a MIC that holds the delivery lease may freeze (SIGSTOP, a paused VM, a long GC) between
its last renewal and a write. A standby then takes the lease over, lists every cluster and
sends what it finds. When the old holder thaws, a write it had begun would still commit: an
outbox row for a change the new holder already reported under another id, an acknowledgement
or a dead letter of a row the new holder is sending. The lease's renewal notices the loss only
later. Checking the lease row in the same transaction closes that window: the write either
commits before the takeover (and the new holder, which reads after it, sees it) or finds the
lease moved on and writes nothing.

* SQLite: write transactions begin with `BEGIN IMMEDIATE`, so nobody else writes (a takeover
  neither) between the check and the commit.
* PostgreSQL: each fenced write first takes the lease's advisory lock in shared mode, and a
  claim or release of the lease takes it exclusively (`exclude_writers`): the takeover waits
  for writes under way, and writes that come later wait behind it, then read the new holder.
  Not a row lock (`FOR SHARE` on the lease row): a claim waits for every share lock, and
  PostgreSQL lets new share lockers of a row in ahead of it, so a busy holder's writes could
  starve the takeover and its own renewals; its lock manager queues advisory locks fairly.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mic.store.errors import FencedOutError
from mic.store.records import Fence
from mic.store.schema import leases

_SQLITE_LEASE = "SELECT holder, epoch FROM leases WHERE name = ?"

LEASE_LOCK_SPACE = 0x4D4943  # "MIC": the first key of the two-key advisory locks of leases
_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(:space, hashtext(:name))")
_EXCLUSIVE = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))")


async def check(conn: AsyncConnection, fence: Fence | None) -> None:
    """Raise `FencedOutError` unless the lease row still names `fence`'s holder and epoch
    (nothing to check without a fence). Call first in a write transaction."""
    if fence is None:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(_SHARED, {"space": LEASE_LOCK_SPACE, "name": fence.lease})
    query = sa.select(leases.c.holder, leases.c.epoch).where(leases.c.name == fence.lease)
    judge(fence, (await conn.execute(query)).one_or_none())


async def exclude_writers(conn: AsyncConnection, lease: str) -> None:
    """Before a lease changes hands (claim, release): wait for the writes fenced by it that are
    under way, and hold back new ones until this transaction ends (PostgreSQL; on SQLite the
    write transaction excludes them already)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_EXCLUSIVE, {"space": LEASE_LOCK_SPACE, "name": lease})


def check_sqlite(cursor: sqlite3.Cursor, fence: Fence | None) -> None:
    """`check` on a raw SQLite connection inside its `BEGIN IMMEDIATE` transaction."""
    if fence is None:
        return
    judge(fence, cursor.execute(_SQLITE_LEASE, (fence.lease,)).fetchone())


def judge(fence: Fence, row: Any) -> None:
    """Raise `FencedOutError` unless `row` (holder, epoch) is the fence's."""
    if row is not None and row[0] == fence.holder and int(row[1]) == fence.epoch:
        return
    if row is None or not row[0]:
        now = "released, and nobody holds it now"
    else:
        now = f"held by {row[0]} since epoch {row[1]}"
    raise FencedOutError(
        f"this MIC ({fence.holder}) no longer holds the store's {fence.lease!r} lease ({now});"
        " its delivery writes are refused and another MIC delivers"
    )
