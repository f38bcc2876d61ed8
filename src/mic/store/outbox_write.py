"""One outbox write (`Store.record_changes`) as a plan of rows, and how SQLite runs it.

Why a plan: on SQLite the driver (aiosqlite) runs each statement in its own thread and hands
every result back through the event loop. A write of a dozen statements so waited a dozen
times for a loop busy decoding watch events: in the batched end-to-end benchmark the informers
spent 5 of 8.7 seconds waiting for commits that took 80-90 µs per event, against 40-50 µs when
the store ran alone. SQLite runs the whole plan, BEGIN to COMMIT, as one function in the
driver's thread (`run_sqlite` inside `dialects.run_sqlite_transaction`), many rows per
statement (`multi_row_statement`), so the loop waits once per commit. PostgreSQL (asyncpg,
on the loop itself) runs the same plan statement by statement (`Store._run_outbox_write`).

The statements are compiled once per dialect (`bulk_sql`) and take plain tuples: SQLAlchemy's
per-row parameter processing cost more than the database's own work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from mic.events import Event
from mic.store import dialects, fencing
from mic.store.errors import SchemaError
from mic.store.records import Fence, NewDelivery
from mic.store.schema import OUTBOX_SEQUENCE
from mic.store.schema import deliveries as deliveries_table
from mic.store.schema import events as events_table
from mic.store.schema import ledger as ledger_table

Row = tuple[Any, ...]

SQLITE_BOUND_PARAMETERS = 30_000
"""Values bound per multi-row statement on SQLite at most (1,875 events' rows); less where the
SQLite in use allows fewer (`SQLITE_LIMIT_VARIABLE_NUMBER`)."""

IDS_PER_STATEMENT = 500
"""Ids per `IN (…)` list: far below any database's limit on bound parameters (SQLite: 32766)."""

# SQLite's own spelling of what the Store does with SQLAlchemy constructs elsewhere.
_SQLITE_ALLOCATE = "UPDATE sequences SET value = value + ? WHERE name = ? RETURNING value"
_SQLITE_ALLOCATE_OLD = "UPDATE sequences SET value = value + ? WHERE name = ?"  # before 3.35
_SQLITE_SEQUENCE_VALUE = "SELECT value FROM sequences WHERE name = ?"
_SQLITE_FORGET_LEDGER = "DELETE FROM ledger WHERE cluster = ? AND scope = ? AND uid = ?"
_SQLITE_ADD_DELIVERED = (
    "UPDATE subscription_stats SET delivered_total = delivered_total + ?, last_delivered_at = ?"
    " WHERE subscription = ?"
)
_SQLITE_SUPERSEDE_DEAD = (
    "UPDATE deliveries SET superseded_at = ? WHERE subscription = ? AND state = 'dead'"
    " AND object_key = ? AND event_seq < ? AND superseded_at IS NULL"
    " AND EXISTS (SELECT 1 FROM events WHERE events.seq = deliveries.event_seq AND events.uid = ?)"
)


def _sqlite_remove_delivered(count: int) -> str:
    # `+subscription`: the ids, not the subscription's index, find the rows (see
    # `schema.not_for_lookup`).
    return f"DELETE FROM deliveries WHERE +subscription = ? AND id IN ({', '.join('?' * count)})"


@dataclass(frozen=True, slots=True)
class BulkSQL:
    """The plan's inserts compiled for one dialect, taking tuples in table column order
    (checked when compiling). `timestamp` converts a datetime the way the timestamp columns'
    type would, since the driver gets values as given."""

    ledger_upsert: str
    events_insert: str
    deliveries_insert: str
    timestamp: Callable[[datetime], Any]
    in_driver_thread: bool
    """SQLite: run the plan with `run_sqlite` in the driver's thread."""
    _multi_row: dict[tuple[str, int], str] = field(default_factory=dict)

    def multi_row(self, single: str, count: int) -> str:
        """`single` for `count` rows (cached)."""
        key = (single, count)
        statement = self._multi_row.get(key)
        if statement is None:
            statement = self._multi_row[key] = multi_row_statement(single, count)
        return statement


def multi_row_statement(single: str, count: int) -> str:
    """`INSERT … VALUES (?, …) [ON CONFLICT …]` for `count` rows instead of one (qmark style)."""
    head, separator, rest = single.partition(" VALUES (")
    group, closing, tail = rest.partition(")")
    if not separator or not closing or set(group.replace(", ", "")) != {"?"}:
        raise NotImplementedError(f"not a one-row qmark INSERT: {single[:80]}")
    values = "(" + group + ")"
    return f"{head} VALUES {', '.join([values] * count)}{tail}"


_BULK_SQL: dict[str, BulkSQL] = {}


def bulk_sql(dialect: Dialect) -> BulkSQL:
    """The plan's statements for `dialect`, compiled on first use."""
    cached = _BULK_SQL.get(dialect.name)
    if cached is not None:
        return cached

    def positional(statement: sa.Insert, table: sa.Table, *, leave_out: str | None = None) -> str:
        columns = [c.name for c in table.c if c.name != leave_out]
        compiled = statement.compile(dialect=dialect, column_keys=columns)
        if list(compiled.positiontup or ()) != columns:  # a named paramstyle, or a reordering
            raise NotImplementedError(f"bulk insert into {table.name} needs positional parameters")
        return compiled.string

    key = ("cluster", "scope", "uid")
    process = deliveries_table.c.created_at.type.bind_processor(dialect)
    timestamp: Callable[[datetime], Any] = process if process is not None else (lambda value: value)
    if dialect.name == "sqlite":
        # The text Python's sqlite3 makes of a datetime (its default adapter), made once per
        # write instead of once per row and timestamp column: 3 % of the batched benchmark's
        # interpreter-lock time went to that adapter.
        to_datetime = timestamp
        timestamp = lambda value: _sqlite_datetime_text(to_datetime(value))  # noqa: E731
    built = BulkSQL(
        ledger_upsert=positional(
            dialects.upsert_many(dialect.name, ledger_table, [c.name for c in ledger_table.c], key),
            ledger_table,
        ),
        events_insert=positional(sa.insert(events_table), events_table),
        # `superseded_at` is only ever set later (on dead letters): new rows leave it NULL.
        deliveries_insert=positional(
            sa.insert(deliveries_table), deliveries_table, leave_out="superseded_at"
        ),
        timestamp=timestamp,
        in_driver_thread=dialect.name == "sqlite",
    )
    _BULK_SQL[dialect.name] = built
    return built


def _sqlite_datetime_text(value: Any) -> Any:
    """What `sqlite3`'s default datetime adapter stores: `isoformat(" ")`."""
    return value.isoformat(" ") if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class OutboxWrite:
    """Everything one `record_changes` transaction writes, in the order it is written:
    acknowledged deliveries removed (and the dead letters they supersede marked), ids
    allocated, ledger entries forgotten and set, events
    and deliveries inserted. The rows that hold ids are built once the ids are known (`rows`)."""

    acknowledged: Sequence[tuple[str, list[int]]]
    """(subscription, distinct delivery ids, sorted) to remove and count as delivered."""
    superseding: Sequence[tuple[str, str, int, str]]
    """(subscription, object key, event seq, uid) just delivered to an object with dead
    letters: its dead letters of older events of that uid get `superseded_at` (see
    `Store.replay`)."""
    forget: Sequence[tuple[str, str, str]]
    """(cluster, scope, uid) of ledger entries to delete."""
    ledger_rows: Sequence[Row]
    events: Sequence[Event]
    deliveries: Sequence[NewDelivery]
    used: Sequence[int]
    """Indexes into `events` of the events some delivery refers to, in order: those are stored."""
    stamp: Any
    """The transaction's time, as the driver takes timestamps."""

    @property
    def ids_needed(self) -> int:
        return len(self.used) + len(self.deliveries) if self.deliveries else 0

    def rows(self, first: int) -> tuple[list[Row], list[Row]]:
        """Event and delivery rows, given the first allocated id (events take the first ids,
        deliveries the rest, in order)."""
        seq_of = {index: first + n for n, index in enumerate(self.used)}
        events, stamp = self.events, self.stamp
        event_rows = [event_row(seq_of[index], events[index]) for index in self.used]
        base = first + len(self.used)
        delivery_rows = [
            (base + n, d.subscription, seq_of[d.event_index], d.object_key, "pending", 0, stamp, None, stamp)
            for n, d in enumerate(self.deliveries)
        ]
        return event_rows, delivery_rows

    def run_sqlite(self, sql: BulkSQL, fence: Fence | None, db: sqlite3.Connection) -> int:
        """Run the plan on a raw SQLite connection inside its open transaction (in the driver's
        thread), once `fence` is checked (`mic.store.fencing`); returns the first allocated id
        (0 when none were needed)."""
        cursor = db.cursor()
        try:
            fencing.check_sqlite(cursor, fence)
            for subscription, ids in self.acknowledged:
                for start in range(0, len(ids), IDS_PER_STATEMENT):
                    chunk = ids[start : start + IDS_PER_STATEMENT]
                    cursor.execute(_sqlite_remove_delivered(len(chunk)), (subscription, *chunk))
                cursor.execute(_SQLITE_ADD_DELIVERED, (len(ids), self.stamp, subscription))
            if self.superseding:
                stamp = self.stamp
                cursor.executemany(_SQLITE_SUPERSEDE_DEAD, [(stamp, *marked) for marked in self.superseding])
            first = self._allocate_sqlite(cursor) if self.ids_needed else 0
            if self.forget:
                cursor.executemany(_SQLITE_FORGET_LEDGER, self.forget)
            insert_sqlite(cursor, sql, sql.ledger_upsert, self.ledger_rows)
            if self.ids_needed:
                event_rows, delivery_rows = self.rows(first)
                insert_sqlite(cursor, sql, sql.events_insert, event_rows)
                insert_sqlite(cursor, sql, sql.deliveries_insert, delivery_rows)
            return first
        finally:
            cursor.close()

    def _allocate_sqlite(self, cursor: sqlite3.Cursor) -> int:
        count = self.ids_needed
        if sqlite3.sqlite_version_info >= (3, 35):
            found = cursor.execute(_SQLITE_ALLOCATE, (count, OUTBOX_SEQUENCE)).fetchone()
        else:
            cursor.execute(_SQLITE_ALLOCATE_OLD, (count, OUTBOX_SEQUENCE))
            found = cursor.execute(_SQLITE_SEQUENCE_VALUE, (OUTBOX_SEQUENCE,)).fetchone()
        if found is None:
            raise SchemaError(
                f"sequence {OUTBOX_SEQUENCE!r} is missing from the database; was a migration skipped?"
            )
        return int(found[0]) - count + 1


def insert_sqlite(cursor: sqlite3.Cursor, sql: BulkSQL, single: str, rows: Sequence[Row]) -> None:
    """Insert `rows` with the one-row statement `single`, many rows per statement."""
    if not rows:
        return
    # Within this SQLite's limit on bound values (32,766 since 3.32; 999 before, or as built).
    limit = min(SQLITE_BOUND_PARAMETERS, cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    start = 0
    for size in chunk_sizes(len(rows), max(1, limit // len(rows[0]))):
        chunk = rows[start : start + size]
        start += size
        cursor.execute(sql.multi_row(single, size), list(chain.from_iterable(chunk)))


def chunk_sizes(total: int, step: int) -> Iterator[int]:
    """Split `total` rows into statements of `step` rows, the rest into powers of two: a dozen
    distinct statement sizes at most, each compiled once and cached (`BulkSQL.multi_row`),
    however the commits' sizes vary."""
    while total >= step:
        yield step
        total -= step
    while total:
        size = 1 << (total.bit_length() - 1)  # the largest power of two that fits
        yield size
        total -= size


def event_row(seq: int, event: Event) -> Row:
    # In `events` column order (see BulkSQL). orjson rather than the JSON column type: several
    # times faster, and the store never queries inside objects; decoding bytes to str keeps the
    # column TEXT on every database. States that came as JSON (compact caches) are written as
    # they came, never encoded again.
    old_json = event.old_json
    if old_json is not None:
        old_text: str | None = old_json.decode()
    else:
        old = event.old_object
        old_text = None if old is None else orjson.dumps(old).decode()
    object_json = event.object_json
    if object_json is None:
        object_json = orjson.dumps(event.object)
    return (
        seq,
        event.id,
        str(event.type),
        event.cluster,
        event.group,
        event.version,
        event.kind,
        event.resource,
        event.namespace,
        event.name,
        event.uid,
        event.resource_version,
        float(event.observed_at),
        object_json.decode(),
        old_text,
        event.occasion,
    )
