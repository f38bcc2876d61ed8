"""The tables, as SQLAlchemy Core metadata.

This module describes the schema the code expects; the Alembic migrations in `migrations/versions`
create it. A test compares the two (alembic's `compare_metadata`), so a change here without a new
migration fails CI. Add new tables (subscriptions, ledger, outbox, dead letters) here *and* in a
new migration; never edit an applied migration.

Only portable types are used (`JSON`, timezone-aware `DateTime`, `String`, `BigInteger`) so the
same metadata serves SQLite and PostgreSQL. Constraints get deterministic names from
`NAMING_CONVENTION`, because SQLite's batch ALTER (copy-and-move) in later migrations can only
drop or alter constraints that have names.

Room for issue 4 (delivery), each a later migration: `subscriptions` (name primary key, JSON sink
and filter, a `generation` from its own row in `sequences`); `ledger` (primary key cluster,
resource, uid; resourceVersion and content hash; `cluster` a foreign key to `clusters.name` with
ON DELETE CASCADE, which works on SQLite because `dialects` turns foreign keys on); `outbox`
(autoincrement BigInteger id giving the per-subscription order, subscription foreign key, object
key, JSON event, attempts, next attempt time; index on subscription and id); `dead_letters`
(same shape plus the last error). Outbox writes share a transaction with ledger updates through
the same write-transaction helper `Store` uses.
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
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
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
