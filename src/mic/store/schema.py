"""The tables, as SQLAlchemy Core metadata.

This module describes the schema the code expects; the Alembic migrations in `migrations/versions`
create it. A test compares the two (alembic's `compare_metadata`), so a change here without a new
migration fails CI. Add new tables (subscriptions, ledger, outbox, dead letters) here *and* in a
new migration; never edit an applied migration.

Only portable types are used (`JSON`, timezone-aware `DateTime`, `String`, `BigInteger`) so the
same metadata serves SQLite and PostgreSQL. Constraints get deterministic names from
`NAMING_CONVENTION`, because SQLite's batch ALTER (copy-and-move) in later migrations can only
drop or alter constraints that have names.

Issue 4 (delivery, migration 0002) adds `subscriptions`, the `ledger` (what was last recorded
per object and informer scope), and the durable outbox: `events` (each event stored once) and
`deliveries` (one row per event and subscription, the per-subscription queue and its dead
letters), plus `subscription_stats` (running totals that outlive deleted delivery rows).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    literal_column,
    text,
)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps.

    PostgreSQL's `timestamptz` returns aware values; SQLite has no time zone type and returns
    naive ones. Storing UTC and re-attaching the zone on read makes both behave the same.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


clusters = Table(
    "clusters",
    metadata,
    # DNS-1123 label (validated by the API layer), hence at most 63 characters.
    Column("name", String(63), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column(
        "connection",
        JSON,
        nullable=False,
        comment="SECRET: credential-bearing connection spec; never return or log it",
    ),
    Column("resources", JSON, nullable=False, comment="resources to watch and cache by default"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("generation", BigInteger, nullable=False, comment="from sequences 'clusters'; never reused"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True, comment="sha256 hex of the token"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    CheckConstraint("role IN ('admin', 'viewer')", name="role"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sequences = Table(
    "sequences",
    metadata,
    # Named counters, bumped inside write transactions. A table rather than database SEQUENCEs
    # because SQLite has none and because a bump rolls back with the transaction that made it.
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

CLUSTERS_SEQUENCE = "clusters"

SUBSCRIPTIONS_SEQUENCE = "subscriptions"
OUTBOX_SEQUENCE = "outbox"
"""Ids of `events` and `deliveries` both: one counter, so one statement allocates a whole batch."""

RowId = BigInteger().with_variant(Integer(), "sqlite")
"""Outbox ids: BIGINT on PostgreSQL; on SQLite `INTEGER PRIMARY KEY`, the rowid itself.

Only that exact spelling makes SQLite use the rowid as the key (a `BIGINT PRIMARY KEY` would add
a second index to every insert). SQLite integers are 64-bit either way.
"""

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("name", String(63), primary_key=True),
    Column(
        "spec",
        JSON,
        nullable=False,
        comment="SECRET: holds the sink's headers and signing secret; never return or log it",
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("generation", BigInteger, nullable=False, comment="from sequences 'subscriptions'; never reused"),
)

ledger = Table(
    "ledger",
    metadata,
    # The last state of each object recorded per informer scope, so that after a restart a
    # relist emits only what really changed (including deletes) while MIC was down.
    Column("cluster", String(63), ForeignKey("clusters.name", ondelete="CASCADE"), primary_key=True),
    Column("scope", Text, primary_key=True, comment="InformerKey.scope: group/resource|namespaces|selector"),
    Column("uid", String(128), primary_key=True),
    Column("namespace", String(63), nullable=False, comment="'' for cluster-scoped objects"),
    Column("name", String(253), nullable=False),
    Column("resource_version", String(128), nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    # Each event is stored once, however many subscriptions it goes to; `deliveries` refer to it.
    # Ids come from sequences 'outbox' (see Store.record_changes), never reused.
    Column("seq", RowId, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("type", String(8), nullable=False),
    Column("cluster", String(63), nullable=False),
    Column("group", String(253), nullable=False),
    Column("version", String(63), nullable=False),
    Column("kind", String(253), nullable=False),
    Column("resource", String(253), nullable=False),
    Column("namespace", String(63), nullable=True),
    Column("name", String(253), nullable=False),
    Column("uid", String(128), nullable=False),
    Column("resource_version", String(128), nullable=False),
    Column("observed_at", Float, nullable=False, comment="seconds since the epoch"),
    # orjson-encoded text rather than JSON columns: the store never queries inside objects, and
    # encoding once with orjson is several times faster than the JSON type's json.dumps.
    Column("object", Text, nullable=False, comment="the object after the change, JSON text"),
    Column("old_object", Text, nullable=True, comment="the object before the change, JSON text"),
    # Migration 0005 (`Event.occasion`: sets apart the ids of events MIC sends on its own
    # initiative). Last, where that migration adds it to an existing table.
    Column("occasion", String(32), nullable=True, comment="Event.occasion; NULL for an observed change"),
    CheckConstraint("type IN ('ADDED', 'MODIFIED', 'DELETED')", name="type"),
)

_UNMARKED_DEAD = text("state = 'dead' AND superseded_at IS NULL")

deliveries = Table(
    "deliveries",
    metadata,
    # The outbox proper: one row per (event, subscription) until delivered (then deleted) or
    # dead-lettered (state 'dead', kept until replayed or the subscription is deleted). Ids come
    # from sequences 'outbox': the order of a subscription's queue, never reused.
    Column("id", RowId, primary_key=True, autoincrement=False),
    Column(
        "subscription",
        String(63),
        ForeignKey("subscriptions.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_seq", RowId, ForeignKey("events.seq"), nullable=False),
    Column("object_key", Text, nullable=False, comment="per-object ordering and coalescing key"),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Migration 0006: set on a dead letter when a newer event of its object is delivered to the
    # subscription; `Store.replay` drops such a dead letter (it would put an older state last).
    Column(
        "superseded_at",
        UTCDateTime,
        nullable=True,
        comment="a dead letter's object got a newer event delivered since, at this time",
    ),
    CheckConstraint("state IN ('pending', 'dead')", name="state"),
    # A lane reads its queue in order: WHERE subscription = ? AND state = ? AND id > ? ORDER BY id.
    Index("ix_deliveries_subscription_state_id", "subscription", "state", "id"),
    # Purging events no delivery refers to (and the FK check when an event is deleted).
    Index("ix_deliveries_event_seq", "event_seq"),
    # Migration 0009: an acknowledgement marks its object's older dead letters superseded;
    # only unmarked dead letters are in it, so outbox inserts never pay for it.
    Index(
        "ix_deliveries_dead_unmarked",
        "subscription",
        "object_key",
        "event_seq",
        sqlite_where=_UNMARKED_DEAD,
        postgresql_where=_UNMARKED_DEAD,
    ),
)


def not_for_lookup(column: Any) -> Any:
    """`column` as an expression no index serves, for conditions that only guard a lookup by
    primary key (`WHERE id IN (…) AND subscription = ?`).

    Without statistics, SQLite prefers an index's equality (`subscription = ?`, served by
    ix_deliveries_subscription_state_id) over an `IN` list of rowids, and so read every row the
    subscription has queued to find the few it was given, so each acknowledgement cost more the
    longer the backlog: deleting acknowledged rows took 111 µs a row with 6,000 queued and 467
    with 20,000, against 16 and 55 by id (a recovery drains such backlogs). An expression
    (`subscription || ''`; in SQLite's own SQL a unary `+`) leaves the ids to drive the lookup,
    on every database.
    """
    return column.op("||")(literal_column("''"))


subscription_stats = Table(
    "subscription_stats",
    metadata,
    # Totals kept apart from `deliveries`, whose rows are deleted once delivered.
    Column(
        "subscription",
        String(63),
        ForeignKey("subscriptions.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("delivered_total", BigInteger, nullable=False),
    Column("dead_total", BigInteger, nullable=False),
    # Migration 0008: written with each acknowledgement, so a status after a restart still says it.
    Column(
        "last_delivered_at",
        UTCDateTime,
        nullable=True,
        comment="when a delivery of the subscription was last acknowledged",
    ),
)

leases = Table(
    "leases",
    metadata,
    # Who may act for the whole store (migration 0004): MICs sharing one database elect one
    # holder, which alone delivers; see `mic.service.lease`. A holder proves it is alive by
    # bumping `renewals`; the others measure staleness with their own clocks, never by comparing
    # timestamps written by another host.
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False, comment="'' when released"),
    Column("epoch", BigInteger, nullable=False, comment="bumped whenever the lease changes hands"),
    Column("renewals", BigInteger, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
)
