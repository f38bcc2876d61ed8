"""`Store`: MIC's registrations and delivery state in SQLite or PostgreSQL.

Registrations are clusters, API tokens, settings and subscriptions. Delivery state (issue 4) is
the ledger (the last recorded state of each watched object) and the outbox (events queued per
subscription, and dead letters); see `Store.record_changes` for the write that ties them together.

Every method is one transaction, committed before it returns. Reads use a deferred transaction,
writes one that takes the write lock at BEGIN (see `dialects`), so concurrent writers from several
`Store`s, in this process or others, queue up instead of failing. Callers never see SQLAlchemy
errors: a missing or duplicate record raises `NotFoundError` / `AlreadyExistsError`, a database
that cannot be reached or stays locked raises `StoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mic.events import Event, EventType
from mic.store import dialects, fencing
from mic.store.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from mic.store.migrate import upgrade
from mic.store.outbox_write import IDS_PER_STATEMENT, BulkSQL, OutboxWrite, bulk_sql
from mic.store.records import (
    TOKEN_ROLES,
    ClusterRecord,
    DeliveryRow,
    DeliveryState,
    Fence,
    LeaseRecord,
    LedgerChange,
    LedgerEntry,
    NewDelivery,
    RecordedDeliveries,
    Replayed,
    StoredEvent,
    SubscriptionCounts,
    SubscriptionRecord,
    Superseding,
    TokenRecord,
    TokenRole,
)
from mic.store.schema import (
    CLUSTERS_SEQUENCE,
    OUTBOX_SEQUENCE,
    SUBSCRIPTIONS_SEQUENCE,
    api_tokens,
    clusters,
    deliveries,
    leases,
    not_for_lookup,
    sequences,
    settings,
    subscription_stats,
    subscriptions,
)
from mic.store.schema import events as events_table
from mic.store.schema import ledger as ledger_table

log = logging.getLogger(__name__)

PURGE_CHUNK = 2_000
"""Events deleted per transaction by `Store.purge_delivered_events` (tens of milliseconds)."""

PURGE_PAUSE = 0.01
"""Seconds between two purge transactions: long enough for writers that waited on the lock
(SQLite's busy handler sleeps a few milliseconds between tries) to take it."""

_T = TypeVar("_T")

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
"""`find_token` records a token's use at most this often, so authentication stays a read."""


PING_TIMEOUT = 5.0
"""Seconds `ping` waits for an answer before reporting the database not ready."""


def hash_token(token: str) -> str:
    """SHA-256 hex of a bearer token: what the store keeps instead of the token.

    A plain (unsalted, fast) hash is right here: tokens are long random strings, not passwords,
    so there is nothing to brute-force, and an unsalted hash can be looked up by index.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _json_normalized(value: Any) -> Any:
    """`value` as it will read back from a JSON column (tuples become lists, keys strings...)."""
    return json.loads(json.dumps(value))


class Store:
    """Persistence of MIC's registrations. Create with `await Store.open(url)`.

    Safe to share between tasks: each call checks a connection out of the engine's pool.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine made by `dialects.create_engine`; prefer `Store.open`."""
        self._engine = engine
        self._writer = dialects.writer(engine)
        self._driver_thread = True  # SQLite: outbox transactions in the driver's thread
        self.fence: Fence | None = None
        """Set by the holder of a lease (`mic.service.lease.StoreLease`): from then on every
        write of delivery state (the outbox, the ledger, acknowledgements, retries, dead
        letters, replays) commits only while that lease is still this holder's, and raises
        `FencedOutError` otherwise (see `mic.store.fencing`). Registrations are not fenced."""

    @classmethod
    async def open(cls, url: str, *, durable: bool = True) -> Store:
        """Open the database at `url`, creating it (and a SQLite file's directory) if needed.

        Accepts `sqlite[+aiosqlite]:///path` and `postgresql[+asyncpg]://…`. Applies pending
        migrations before returning, so the schema is current. Raises `ValueError` for an
        unsupported URL, `SchemaError` for a database newer than this MIC,
        `StoreUnavailableError` when the database cannot be reached.

        `durable` (SQLite only): every commit is fsynced (`synchronous=FULL`), so what the
        outbox accepted survives a power loss, not only a crash of MIC. Only pass False where
        losing the last commits is acceptable (tests, benchmarks); see `dialects`.
        """
        parsed = dialects.normalize_url(url)
        dialects.prepare_location(parsed)
        engine = dialects.create_engine(parsed, durable=durable)
        try:
            try:
                await upgrade(engine)
            except DBAPIError as e:
                raise _unavailable(e) from e
            except OSError as e:
                raise StoreUnavailableError(f"store unavailable: {e}") from e
        except BaseException:
            await engine.dispose()
            raise
        store = cls(engine)
        log.info("store opened at %s", store.url)
        return store

    @property
    def url(self) -> str:
        """The database URL with any password masked, for logs and status pages."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for tests and for later parts of the store (issue 4)."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection. SQLite checkpoints its WAL when the last one closes."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """Whether the database answers a trivial query within `PING_TIMEOUT` s (for `/readyz`).

        Never raises: readiness is a yes or no, and the reason is logged.
        """
        try:
            async with asyncio.timeout(PING_TIMEOUT), self._read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (StoreError, OSError, TimeoutError) as e:
            log.warning("store ping failed: %s", e or type(e).__name__)
            return False
        return True

    # -- transactions -------------------------------------------------------------------------

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with _store_errors():
            async with self._engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception."""
        with _store_errors():
            async with self._writer.begin() as conn:
                yield conn

    @asynccontextmanager
    async def _fenced_write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction of delivery state: `_write`, after checking `fence`."""
        async with self._write() as conn:
            await fencing.check(conn, self.fence)
            yield conn

    async def _write_outbox(self, build: Callable[[BulkSQL], OutboxWrite]) -> int:
        """One outbox transaction (see `mic.store.outbox_write`); returns the first id allocated.

        SQLite runs it from BEGIN to COMMIT in the driver's thread; other databases statement by
        statement on the loop.
        """
        sql = bulk_sql(self._engine.dialect)
        if sql.in_driver_thread and self._driver_thread:
            plan = build(sql)
            try:
                with _store_errors():
                    return await dialects.run_sqlite_transaction(
                        self._writer, partial(plan.run_sqlite, sql, self.fence)
                    )
            except dialects.DriverThreadUnavailable as error:
                log.warning("%s: outbox writes go statement by statement (slower)", error)
                self._driver_thread = False
        async with self._fenced_write() as conn:
            return await self._run_outbox_write(conn, sql, build(sql))

    async def _next_value(self, conn: AsyncConnection, sequence: str) -> int:
        """Bump a named sequence inside the caller's write transaction (rolled back with it)."""
        return await self._allocate(conn, sequence, 1)

    async def _allocate(self, conn: AsyncConnection, sequence: str, count: int) -> int:
        """Reserve `count` consecutive values of a named sequence; returns the first.

        Inside the caller's write transaction, so a rollback returns them. On PostgreSQL the
        UPDATE also locks the sequence's row until commit, which serialises the writers that
        allocate from it.
        """
        table = sequences
        bump = sa.update(table).where(table.c.name == sequence).values(value=table.c.value + count)
        if conn.dialect.update_returning:  # PostgreSQL, SQLite >= 3.35: one round trip instead of two
            value = (await conn.execute(bump.returning(table.c.value))).scalar_one_or_none()
        else:
            if (await conn.execute(bump)).rowcount != 1:
                value = None
            else:
                value = await conn.scalar(sa.select(table.c.value).where(table.c.name == sequence))
        if value is None:
            raise SchemaError(f"sequence {sequence!r} is missing from the database; was a migration skipped?")
        return int(value) - count + 1

    # -- clusters -----------------------------------------------------------------------------

    async def create_cluster(self, record: ClusterRecord) -> ClusterRecord:
        """Store a new cluster; returns it with `created_at`, `updated_at`, `generation` set.

        Raises `AlreadyExistsError` when a cluster of that name exists.
        """
        now = _now()
        try:
            async with self._write() as conn:
                exists = await conn.scalar(sa.select(clusters.c.name).where(clusters.c.name == record.name))
                if exists is not None:
                    raise AlreadyExistsError("cluster", record.name)
                generation = await self._next_value(conn, CLUSTERS_SEQUENCE)
                await conn.execute(
                    sa.insert(clusters).values(
                        name=record.name,
                        labels=dict(record.labels),
                        connection=dict(record.connection),
                        resources=list(record.resources),
                        created_at=now,
                        updated_at=now,
                        generation=generation,
                    )
                )
        except IntegrityError as e:  # a concurrent create won (PostgreSQL, READ COMMITTED)
            raise AlreadyExistsError("cluster", record.name) from e
        return await self.get_cluster(record.name)

    async def get_cluster(self, name: str) -> ClusterRecord:
        """The cluster called `name`; raises `NotFoundError`."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(clusters).where(clusters.c.name == name))).first()
        if row is None:
            raise NotFoundError("cluster", name)
        return _cluster(row)

    async def list_clusters(self) -> list[ClusterRecord]:
        """All clusters, ordered by name."""
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(clusters).order_by(clusters.c.name))).all()
        return [_cluster(row) for row in rows]

    async def replace_cluster(
        self, record: ClusterRecord, *, expected_generation: int | None = None
    ) -> ClusterRecord:
        """Replace a cluster's labels, connection and resources; returns the stored record.

        A change gets a new `generation` and `updated_at`; replacing with identical content
        changes nothing (so the supervisor does not restart watches for a no-op PUT). With
        `expected_generation`, raises `ConflictError` when the stored generation differs, which
        makes read-modify-write (PATCH) safe. Raises `NotFoundError`.
        """
        labels = _json_normalized(dict(record.labels))
        connection = _json_normalized(dict(record.connection))
        resources = _json_normalized(list(record.resources))
        async with self._write() as conn:
            row = (
                await conn.execute(
                    sa.select(clusters).where(clusters.c.name == record.name).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFoundError("cluster", record.name)
            current = _cluster(row)
            if expected_generation is not None and current.generation != expected_generation:
                raise ConflictError("cluster", record.name, expected_generation, current.generation)
            if (row.labels, row.connection, row.resources) == (labels, connection, resources):
                return current
            generation = await self._next_value(conn, CLUSTERS_SEQUENCE)
            now = _now()
            await conn.execute(
                sa.update(clusters)
                .where(clusters.c.name == record.name)
                .values(
                    labels=labels,
                    connection=connection,
                    resources=resources,
                    updated_at=now,
                    generation=generation,
                )
            )
        return await self.get_cluster(record.name)

    async def delete_cluster(self, name: str) -> None:
        """Remove a cluster; raises `NotFoundError`. Also advances `clusters_revision()`."""
        async with self._write() as conn:
            result = await conn.execute(sa.delete(clusters).where(clusters.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError("cluster", name)
            await self._next_value(conn, CLUSTERS_SEQUENCE)

    async def clusters_revision(self) -> int:
        """A number that grows with every create, replace and delete of any cluster.

        Equal values mean no cluster changed in between, which lets a supervisor (or another MIC
        replica sharing a PostgreSQL store) poll cheaply instead of diffing the whole list.
        """
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(sequences.c.value).where(sequences.c.name == CLUSTERS_SEQUENCE)
            )
        return int(value or 0)

    # -- API tokens ---------------------------------------------------------------------------

    async def add_token(
        self, name: str, role: TokenRole, token: str, *, replace: bool = False
    ) -> TokenRecord:
        """Store the hash of `token` under `name` with `role`; the token itself is not kept.

        Raises `AlreadyExistsError` when `name` exists (unless `replace`, which then gives the
        name the new token and role, e.g. for `MIC_ADMIN_TOKEN` changed between restarts), or
        when another name already has the same token. Raises `ValueError` for an unknown role
        or an empty token.
        """
        if role not in TOKEN_ROLES:
            raise ValueError(f"unknown token role {role!r}; expected one of {', '.join(TOKEN_ROLES)}")
        if not token:
            raise ValueError("a token must not be empty")
        digest = hash_token(token)
        now = _now()
        try:
            async with self._write() as conn:
                other = await conn.scalar(
                    sa.select(api_tokens.c.name).where(
                        api_tokens.c.token_hash == digest, api_tokens.c.name != name
                    )
                )
                if other is not None:
                    raise AlreadyExistsError(
                        "token", name, f"token {other!r} already has the same value; generate a new token"
                    )
                existing = await conn.scalar(
                    sa.select(api_tokens.c.id).where(api_tokens.c.name == name).with_for_update()
                )
                if existing is not None and not replace:
                    raise AlreadyExistsError("token", name)
                values = {"role": role, "token_hash": digest, "created_at": now, "last_used_at": None}
                if existing is None:
                    await conn.execute(sa.insert(api_tokens).values(name=name, **values))
                else:
                    await conn.execute(
                        sa.update(api_tokens).where(api_tokens.c.id == existing).values(**values)
                    )
                row = (await conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name))).one()
        except IntegrityError as e:  # a concurrent add won (PostgreSQL, READ COMMITTED)
            raise AlreadyExistsError("token", name) from e
        return _token(row)

    async def find_token(self, token: str) -> TokenRecord | None:
        """The record of a presented bearer token, or None if it is not known.

        Also records the use in `last_used_at`, at most once per `TOKEN_TOUCH_INTERVAL`, so most
        requests cost one indexed read. Failing to record the use is logged, not raised:
        bookkeeping must not lock users out. Looking up by hash needs no constant-time compare:
        the hash of an unguessed token reveals nothing useful through timing.
        """
        digest = hash_token(token)
        async with self._read() as conn:
            row = (await conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest))).first()
        if row is None:
            return None
        record = _token(row)
        now = _now()
        if record.last_used_at is not None and now - record.last_used_at < TOKEN_TOUCH_INTERVAL:
            return record
        try:
            async with self._write() as conn:
                await conn.execute(
                    sa.update(api_tokens).where(api_tokens.c.id == record.id).values(last_used_at=now)
                )
        except StoreError as e:
            log.warning("could not record use of token %r: %s", record.name, e)
            return record
        return TokenRecord(record.id, record.name, record.role, record.created_at, now)

    async def list_tokens(self) -> list[TokenRecord]:
        """All tokens (without their hashes), ordered by name."""
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.name))).all()
        return [_token(row) for row in rows]

    async def delete_token(self, name: str) -> None:
        """Revoke a token; raises `NotFoundError`."""
        async with self._write() as conn:
            result = await conn.execute(sa.delete(api_tokens).where(api_tokens.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError("token", name)

    # -- settings -----------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        async with self._read() as conn:
            value = await conn.scalar(sa.select(settings.c.value).where(settings.c.key == key))
        return cast(str | None, value)

    async def set_setting(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any previous value."""
        async with self._write() as conn:
            await conn.execute(
                dialects.upsert(
                    conn.dialect.name, settings, {"key": key, "value": value, "updated_at": _now()}, ["key"]
                )
            )

    # -- leases -------------------------------------------------------------------------------

    async def get_lease(self, name: str) -> LeaseRecord | None:
        """The lease `name` as stored, or None if nobody ever took it."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(leases).where(leases.c.name == name))).one_or_none()
        return None if row is None else _lease(row)

    async def claim_lease(
        self, name: str, holder: str, *, replacing: LeaseRecord | None
    ) -> LeaseRecord | None:
        """Take the lease for `holder` if it is still exactly `replacing`; None if it changed.

        Compare-and-set: `replacing` None creates the lease (None if someone created it first);
        otherwise the row must still have `replacing`'s holder, epoch and renewals, so of two
        claimants reading the same row only one wins, and a holder that renewed meanwhile keeps it.
        """
        now = _now()
        try:
            async with self._write() as conn:
                await fencing.exclude_writers(conn, name)
                if replacing is None:
                    epoch = 1
                    await conn.execute(
                        sa.insert(leases).values(
                            name=name, holder=holder, epoch=1, renewals=0, acquired_at=now, renewed_at=now
                        )
                    )
                else:
                    epoch = replacing.epoch + 1
                    result = await conn.execute(
                        sa.update(leases)
                        .where(
                            leases.c.name == name,
                            leases.c.holder == replacing.holder,
                            leases.c.epoch == replacing.epoch,
                            leases.c.renewals == replacing.renewals,
                        )
                        .values(holder=holder, epoch=epoch, renewals=0, acquired_at=now, renewed_at=now)
                    )
                    if result.rowcount != 1:
                        return None
        except IntegrityError:
            return None  # created by another claimant first
        return LeaseRecord(name, holder, epoch, 0, now, now)

    async def renew_lease(self, name: str, holder: str, epoch: int) -> bool:
        """Renew a lease held by `holder` since `epoch`; False if it changed hands meanwhile."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, leases.c.holder == holder, leases.c.epoch == epoch)
                .values(renewals=leases.c.renewals + 1, renewed_at=_now())
            )
        return result.rowcount == 1

    async def release_lease(self, name: str, holder: str, epoch: int) -> None:
        """Give a lease up (if `holder` still has it), so another MIC can take it at once."""
        async with self._write() as conn:
            await fencing.exclude_writers(conn, name)
            await conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, leases.c.holder == holder, leases.c.epoch == epoch)
                .values(holder="", renewals=leases.c.renewals + 1, renewed_at=_now())
            )

    # -- subscriptions ------------------------------------------------------------------------

    async def create_subscription(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Store a new subscription; returns it with `created_at`, `updated_at`, `generation` set.

        Its delivery totals start at zero. Raises `AlreadyExistsError` when the name exists.
        """
        now = _now()
        try:
            async with self._write() as conn:
                exists = await conn.scalar(
                    sa.select(subscriptions.c.name).where(subscriptions.c.name == record.name)
                )
                if exists is not None:
                    raise AlreadyExistsError("subscription", record.name)
                generation = await self._next_value(conn, SUBSCRIPTIONS_SEQUENCE)
                await conn.execute(
                    sa.insert(subscriptions).values(
                        name=record.name,
                        spec=dict(record.spec),
                        created_at=now,
                        updated_at=now,
                        generation=generation,
                    )
                )
                await conn.execute(
                    sa.insert(subscription_stats).values(
                        subscription=record.name, delivered_total=0, dead_total=0
                    )
                )
        except IntegrityError as e:  # a concurrent create won (PostgreSQL, READ COMMITTED)
            raise AlreadyExistsError("subscription", record.name) from e
        return await self.get_subscription(record.name)

    async def get_subscription(self, name: str) -> SubscriptionRecord:
        """The subscription called `name`; raises `NotFoundError`."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(subscriptions).where(subscriptions.c.name == name))).first()
        if row is None:
            raise NotFoundError("subscription", name)
        return _subscription(row)

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        """All subscriptions, ordered by name."""
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(subscriptions).order_by(subscriptions.c.name))).all()
        return [_subscription(row) for row in rows]

    async def replace_subscription(
        self, record: SubscriptionRecord, *, expected_generation: int | None = None
    ) -> SubscriptionRecord:
        """Replace a subscription's spec; returns the stored record.

        As for clusters: a change gets a new `generation`, an identical spec changes nothing,
        `expected_generation` guards read-modify-write (`ConflictError`). Queued deliveries and
        totals are kept: the engine decides what a changed spec means for them. Raises
        `NotFoundError`.
        """
        spec = _json_normalized(dict(record.spec))
        async with self._write() as conn:
            row = (
                await conn.execute(
                    sa.select(subscriptions).where(subscriptions.c.name == record.name).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFoundError("subscription", record.name)
            current = _subscription(row)
            if expected_generation is not None and current.generation != expected_generation:
                raise ConflictError("subscription", record.name, expected_generation, current.generation)
            if row.spec == spec:
                return current
            generation = await self._next_value(conn, SUBSCRIPTIONS_SEQUENCE)
            await conn.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.name == record.name)
                .values(spec=spec, updated_at=_now(), generation=generation)
            )
        return await self.get_subscription(record.name)

    async def delete_subscription(self, name: str) -> None:
        """Remove a subscription with its queue, dead letters and totals; raises `NotFoundError`.

        The events only it referred to stay until `purge_delivered_events`. Also advances
        `subscriptions_revision()`.
        """
        async with self._write() as conn:
            result = await conn.execute(sa.delete(subscriptions).where(subscriptions.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError("subscription", name)
            await self._next_value(conn, SUBSCRIPTIONS_SEQUENCE)

    async def subscriptions_revision(self) -> int:
        """A number that grows with every create, replace and delete of any subscription."""
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(sequences.c.value).where(sequences.c.name == SUBSCRIPTIONS_SEQUENCE)
            )
        return int(value or 0)

    # -- ledger and outbox --------------------------------------------------------------------

    async def has_ledger(self, cluster: str) -> bool:
        """Whether MIC recorded any object of `cluster` (in any scope)."""
        t = ledger_table
        async with self._read() as conn:
            found = await conn.scalar(sa.select(t.c.uid).where(t.c.cluster == cluster).limit(1))
        return found is not None

    async def load_ledger(self, cluster: str, scope: str) -> dict[str, LedgerEntry]:
        """The recorded state of every object of one informer scope: uid -> entry."""
        t = ledger_table
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    sa.select(t.c.uid, t.c.namespace, t.c.name, t.c.resource_version, t.c.content_hash).where(
                        t.c.cluster == cluster, t.c.scope == scope
                    )
                )
            ).all()
        return {
            uid: LedgerEntry(namespace, name, rv, content_hash)
            for uid, namespace, name, rv, content_hash in rows
        }

    async def record_changes(
        self,
        ledger: Sequence[LedgerChange],
        events: Sequence[Event],
        deliveries: Sequence[NewDelivery],
        *,
        acknowledged: Mapping[str, Sequence[int]] | None = None,
        superseding: Superseding | None = None,
    ) -> RecordedDeliveries:
        """Update the ledger and queue `deliveries` of `events`, all in one transaction.

        `acknowledged` (subscription -> delivery ids) are deliveries that reached their
        recipients: they are removed in the same transaction (as `delivered_many` does), so a
        busy engine pays one commit for both directions of the outbox. `superseding` says
        which of them were the newest word on an object with dead letters (see `Superseding`).

        This is the outbox write: once it returns, the events are MIC's responsibility (durably,
        with a store opened `durable=True`), and the ledger says they were seen, so they are not
        emitted again after a restart. If anything fails, nothing is written, so the caller can
        retry the whole batch. (Cancelling the call does not stop a transaction SQLite has begun
        in its thread: it may still commit.) Returns the new delivery ids, in the order of
        `deliveries`, with the seq of each one's event (`RecordedDeliveries`); ids increase with
        every call and are never reused, so they order each subscription's queue.

        * `ledger`: applied in order per key (the last change of a uid wins); `entry` None
          forgets the uid.
        * `events`: stored once each, however many deliveries refer to them; an event no
          delivery refers to is not stored (it would only be purged again).
        * `deliveries[i].event_index` indexes `events` (`ValueError` if out of range).

        Raises `NotFoundError` when a delivery names an unknown subscription or a ledger entry
        an unknown cluster (e.g. deleted meanwhile), so the caller can drop those and retry.

        Cost: a fixed handful of statements whatever the batch size, so with `synchronous=FULL`
        batching events is what amortises the fsync of each commit. On SQLite the whole write
        runs in the driver's thread in one go (see `mic.store.outbox_write`).
        On PostgreSQL, allocating ids locks the sequence rows until commit: concurrent calls
        serialise, so ids become visible in increasing order and a reader paging by `after_id`
        never skips a row that commits late.
        """
        for delivery in deliveries:
            if not 0 <= delivery.event_index < len(events):
                raise ValueError(
                    f"delivery for {delivery.subscription!r} refers to event {delivery.event_index},"
                    f" but {len(events)} events were given"
                )
        latest: dict[tuple[str, str, str], LedgerChange] = {}
        for change in ledger:
            latest[(change.cluster, change.scope, change.uid)] = change
        if not latest and not deliveries:
            if acknowledged:
                await self.delivered_many(acknowledged, superseding=superseding)
            return RecordedDeliveries()
        now = _now()
        # Sorted: PostgreSQL writers lock rows in one order.
        changes = [change for _, change in sorted(latest.items())]
        upserts = [(c, c.entry) for c in changes if c.entry is not None]
        used = sorted({d.event_index for d in deliveries})
        acked = [(name, sorted(set(ids))) for name, ids in sorted((acknowledged or {}).items()) if ids]
        marks = _superseding_rows(superseding)
        forget = [(c.cluster, c.scope, c.uid) for c in changes if c.entry is None]

        def plan(sql: BulkSQL) -> OutboxWrite:
            stamp = sql.timestamp(now)
            return OutboxWrite(
                acknowledged=acked,
                superseding=marks,
                forget=forget,
                ledger_rows=[(c.cluster, c.scope, c.uid, *_ledger_values(e), stamp) for c, e in upserts],
                events=events,
                deliveries=deliveries,
                used=used,
                stamp=stamp,
            )

        try:
            first = await self._write_outbox(plan)
        except IntegrityError as e:
            raise await self._explain(e, latest.values(), deliveries) from e
        if not deliveries:
            return RecordedDeliveries()
        # Events take the first ids, in `used` order, deliveries the rest (`OutboxWrite.rows`).
        seq_of = {index: first + n for n, index in enumerate(used)}
        return RecordedDeliveries(
            list(range(first + len(used), first + len(used) + len(deliveries))),
            [seq_of[delivery.event_index] for delivery in deliveries],
        )

    async def _run_outbox_write(self, conn: AsyncConnection, sql: BulkSQL, plan: OutboxWrite) -> int:
        """`OutboxWrite.run_sqlite` for other databases: statement by statement on the loop."""
        for subscription, ids in plan.acknowledged:
            await self._remove_delivered(conn, subscription, ids)
        if plan.superseding:
            await conn.execute(
                _SUPERSEDE_DEAD,
                [{"at": _now(), "s": s, "k": k, "seq": seq, "u": u} for s, k, seq, u in plan.superseding],
            )
        first = await self._allocate(conn, OUTBOX_SEQUENCE, plan.ids_needed) if plan.ids_needed else 0
        if plan.forget:
            await conn.execute(_FORGET_LEDGER, [{"c": c, "s": s, "u": u} for c, s, u in plan.forget])
        if plan.ledger_rows:
            await conn.exec_driver_sql(sql.ledger_upsert, list(plan.ledger_rows))
        if plan.ids_needed:
            event_rows, delivery_rows = plan.rows(first)
            await conn.exec_driver_sql(sql.events_insert, event_rows)
            await conn.exec_driver_sql(sql.deliveries_insert, delivery_rows)
        return first

    async def _explain(
        self, error: IntegrityError, ledger: Iterator[LedgerChange] | Any, new: Sequence[NewDelivery]
    ) -> StoreError:
        """Name what made `record_changes` fail (it has rolled back), for a useful error."""
        wanted_subscriptions = {d.subscription for d in new}
        wanted_clusters = {c.cluster for c in ledger if c.entry is not None}
        async with self._read() as conn:
            known_subscriptions = set(
                (
                    await conn.scalars(
                        sa.select(subscriptions.c.name).where(
                            subscriptions.c.name.in_(sorted(wanted_subscriptions))
                        )
                    )
                ).all()
            )
            known_clusters = set(
                (
                    await conn.scalars(
                        sa.select(clusters.c.name).where(clusters.c.name.in_(sorted(wanted_clusters)))
                    )
                ).all()
            )
        if missing := sorted(wanted_subscriptions - known_subscriptions):
            return NotFoundError("subscription", missing[0])
        if missing := sorted(wanted_clusters - known_clusters):
            return NotFoundError("cluster", missing[0])
        reason = str(error.orig) if error.orig is not None else type(error).__name__
        return StoreError(f"the outbox write was rejected and nothing was recorded: {reason}")

    async def pending_deliveries(
        self, subscription: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[DeliveryRow]:
        """Up to `limit` pending deliveries of `subscription` with id > `after_id`, in id order.

        One query (deliveries joined with their events), whatever `limit` is. Pending rows whose
        `next_attempt_at` lies in the future are included: scheduling is the caller's business.
        """
        return await self._deliveries(subscription, "pending", after_id, limit)

    async def dead_object_keys(self, subscription: str) -> set[str]:
        """The objects (`object_key`) `subscription` has dead letters of."""
        d = deliveries
        query = sa.select(d.c.object_key).where(d.c.subscription == subscription, d.c.state == "dead")
        async with self._read() as conn:
            return set((await conn.scalars(query.distinct())).all())

    async def dead_letters(
        self, subscription: str, *, after_id: int = 0, limit: int = 100
    ) -> list[DeliveryRow]:
        """Up to `limit` dead letters of `subscription` with id > `after_id`, in id order."""
        return await self._deliveries(subscription, "dead", after_id, limit)

    async def _deliveries(
        self, subscription: str, state: DeliveryState, after_id: int, limit: int
    ) -> list[DeliveryRow]:
        d = deliveries
        query = (
            sa.select(*_DELIVERY_COLUMNS, *_EVENT_COLUMNS)
            .select_from(d.join(events_table, d.c.event_seq == events_table.c.seq))
            .where(d.c.subscription == subscription, d.c.state == state, d.c.id > after_id)
            .order_by(d.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_delivery(row) for row in rows]

    async def reschedule(
        self, id: int, attempts: int, next_attempt_at: datetime, last_error: str | None
    ) -> bool:
        """Record a failed attempt of delivery `id`; False if the row is gone (e.g. coalesced)."""
        async with self._fenced_write() as conn:
            result = await conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == id)
                .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=last_error)
            )
        return bool(result.rowcount)

    async def delivered(self, subscription: str, ids: Sequence[int]) -> None:
        """Remove delivered rows and add them to the subscription's `delivered_total`.

        Every distinct id counts, even one whose row is already gone (coalesced or replaced
        meanwhile): the recipient did receive it.
        """
        await self.delivered_many({subscription: ids})

    async def delivered_many(
        self, acknowledged: Mapping[str, Sequence[int]], *, superseding: Superseding | None = None
    ) -> None:
        """`delivered` for several subscriptions in one transaction (one commit, one fsync);
        `superseding` as in `record_changes`."""
        acked = [(name, sorted(set(ids))) for name, ids in sorted(acknowledged.items()) if ids]
        if not acked:
            return
        marks = _superseding_rows(superseding)
        now = _now()
        await self._write_outbox(
            lambda sql: OutboxWrite(
                acked,
                superseding=marks,
                forget=[],
                ledger_rows=[],
                events=[],
                deliveries=[],
                used=[],
                stamp=sql.timestamp(now),
            )
        )

    async def _remove_delivered(self, conn: AsyncConnection, subscription: str, ids: Sequence[int]) -> None:
        unique = sorted(set(ids))
        if not unique:
            return
        for chunk in _chunks(unique):
            await conn.execute(
                sa.delete(deliveries).where(
                    not_for_lookup(deliveries.c.subscription) == subscription, deliveries.c.id.in_(chunk)
                )
            )
        await self._add_totals(conn, subscription, delivered=len(unique))

    async def dead_letter(
        self, subscription: str, ids: Sequence[int], error: str, *, attempted: bool = True
    ) -> int:
        """Turn pending rows into dead letters with `error`; returns how many (added to `dead_total`).

        `attempted`: the rows were just tried once more and failed, so their attempt count
        grows by one (a row refused without a try, e.g. over a backlog limit, keeps its count).
        """
        unique = sorted(set(ids))
        changed = 0
        async with self._fenced_write() as conn:
            for chunk in _chunks(unique):
                result = await conn.execute(
                    sa.update(deliveries)
                    .where(
                        not_for_lookup(deliveries.c.subscription) == subscription,
                        not_for_lookup(deliveries.c.state) == "pending",
                        deliveries.c.id.in_(chunk),
                    )
                    .values(
                        state="dead",
                        last_error=error,
                        attempts=deliveries.c.attempts + (1 if attempted else 0),
                    )
                )
                changed += result.rowcount
            if changed:
                await self._add_totals(conn, subscription, dead=changed)
        return changed

    async def replay(self, subscription: str, ids: Sequence[int] | None) -> Replayed:
        """Queue dead letters again (all of them with `ids` None): pending, 0 attempts, due now.

        Each gets a new id from the outbox sequence, so it joins the end of its subscription's
        queue: a reader paging with `after_id` finds it without starting over (and without
        reading again what it holds already). `last_error` is kept until the next attempt says
        otherwise. Returns the new ids.

        At the end of the queue a dead letter would come after whatever its object got since;
        if that is newer (its event's seq is higher), the recipient would end on a state that is
        gone. So a dead letter is dropped (deleted, counted in `Replayed.superseded`) when a
        newer event of its object (the same uid: a DELETED of an object whose name was taken
        again is still news) was delivered since (`superseded_at`, written with that
        acknowledgement) or is still queued.
        """
        d = deliveries
        where = (d.c.subscription == subscription, d.c.state == "dead")
        columns = (d.c.id, d.c.object_key, d.c.event_seq, d.c.superseded_at, events_table.c.uid)
        joined = d.join(events_table, events_table.c.seq == d.c.event_seq)
        async with self._fenced_write() as conn:
            # Allocating first takes the sequence's lock (PostgreSQL): a concurrent replay waits
            # here, then finds these rows pending, not dead. Unused values are simply skipped.
            first = await self._allocate(conn, OUTBOX_SEQUENCE, 1)
            if ids is None:
                found = list(
                    (await conn.execute(sa.select(*columns).select_from(joined).where(*where))).all()
                )
            else:
                found = []
                by_id = (
                    not_for_lookup(d.c.subscription) == subscription,
                    not_for_lookup(d.c.state) == "dead",
                )
                for chunk in _chunks(sorted(set(ids))):
                    query = sa.select(*columns).select_from(joined).where(*by_id, d.c.id.in_(chunk))
                    found.extend((await conn.execute(query)).all())
            not_found = sorted(set(ids) - {row.id for row in found}) if ids is not None else []
            queued = await _newest_pending(conn, subscription, sorted({row.object_key for row in found}))
            old_ids: list[int] = []
            superseded: list[int] = []
            for id_, key, seq, superseded_at, uid in found:
                if superseded_at is not None or seq < queued.get((key, uid), -1):
                    superseded.append(id_)
                else:
                    old_ids.append(id_)
            for chunk in _chunks(sorted(superseded)):
                await conn.execute(sa.delete(d).where(d.c.id.in_(chunk)))
            if not old_ids:
                return Replayed([], len(superseded), not_found)
            old_ids.sort()
            if len(old_ids) > 1:
                first = await self._allocate(conn, OUTBOX_SEQUENCE, len(old_ids) - 1) - 1
            await conn.execute(
                sa.update(d)
                .where(d.c.id == sa.bindparam("old_id"))
                .values(id=sa.bindparam("new_id"), state="pending", attempts=0, next_attempt_at=_now()),
                [{"old_id": old, "new_id": first + n} for n, old in enumerate(old_ids)],
            )
        return Replayed([first + n for n in range(len(old_ids))], len(superseded), not_found)

    async def drop_superseded(
        self,
        subscription: str,
        ids: Sequence[int],
        *,
        backoff: Sequence[tuple[int, int, datetime]] = (),
    ) -> int:
        """Coalescing: delete these pending rows of `subscription`; returns how many went.

        Dead letters are kept (they are a record of failure, replayed only on request). The
        dropped rows count neither as delivered nor as dead. `backoff` (id, attempts, next
        attempt) is what rows that took a dropped row's place inherited from it, written in the
        same transaction: after a restart they keep the retry count and wait of the attempts
        their object already failed, instead of starting over.
        """
        if not ids and not backoff:
            return 0
        d = deliveries
        dropped = 0
        async with self._fenced_write() as conn:
            for chunk in _chunks(sorted(set(ids))):
                result = await conn.execute(
                    sa.delete(d).where(
                        not_for_lookup(d.c.subscription) == subscription,
                        not_for_lookup(d.c.state) == "pending",
                        d.c.id.in_(chunk),
                    )
                )
                dropped += int(result.rowcount)
            if backoff:
                await conn.execute(
                    sa.update(d)
                    .where(
                        d.c.subscription == subscription,
                        d.c.state == "pending",
                        d.c.id == sa.bindparam("row_id"),
                        d.c.attempts < sa.bindparam("inherited"),
                    )
                    .values(attempts=sa.bindparam("inherited"), next_attempt_at=sa.bindparam("due")),
                    [{"row_id": i, "inherited": n, "due": due} for i, n, due in sorted(backoff)],
                )
        return dropped

    async def backlog(self, subscription: str) -> int:
        """How many deliveries of `subscription` are pending (an index-only count)."""
        d = deliveries
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(sa.func.count()).where(d.c.subscription == subscription, d.c.state == "pending")
            )
        return int(value or 0)

    async def counts(self, subscription: str) -> SubscriptionCounts:
        """The subscription's queue and totals, from one consistent read; raises `NotFoundError`."""
        d = deliveries
        pending = d.c.state == "pending"
        queue = sa.select(
            sa.func.count().filter(pending),
            sa.func.count().filter(pending, d.c.attempts > 0),
            sa.func.count().filter(d.c.state == "dead"),
            sa.func.min(d.c.created_at).filter(pending),
        ).where(d.c.subscription == subscription)
        s = subscription_stats
        totals = sa.select(s.c.delivered_total, s.c.dead_total, s.c.last_delivered_at).where(
            s.c.subscription == subscription
        )
        async with self._read() as conn:
            stats = (await conn.execute(totals)).first()
            if stats is None:
                raise NotFoundError("subscription", subscription)
            n_pending, n_retrying, n_dead, oldest = (await conn.execute(queue)).one()
        return SubscriptionCounts(
            pending=int(n_pending),
            retrying=int(n_retrying),
            dead=int(n_dead),
            delivered_total=int(stats.delivered_total),
            dead_total=int(stats.dead_total),
            oldest_pending_at=_utc(oldest),
            last_delivered_at=stats.last_delivered_at,
        )

    async def purge_delivered_events(self) -> int:
        """Delete the events no delivery (pending or dead) refers to any more; returns how many.

        Walking up the sequence: each step finds up to `PURGE_CHUNK` such events in a read
        (which takes no write lock: finding them means looking up every event still queued
        too, a backlog of them), then deletes those in a short write transaction, then pauses.
        Deleting a minute's events in one transaction (100,000 of them) held SQLite's write
        lock for 1.8 s; finding them inside it, with 300,000 events queued, held it ~0.5-1 s
        a minute even with nothing to delete. Outbox writes, so deliveries, waited as long.
        """
        e, d = events_table, deliveries
        unreferenced = ~sa.exists().where(d.c.event_seq == e.c.seq)
        purged, after = 0, 0
        while True:
            found = (
                sa.select(e.c.seq).where(e.c.seq > after, unreferenced).order_by(e.c.seq).limit(PURGE_CHUNK)
            )
            async with self._read() as conn:
                seqs = list((await conn.execute(found)).scalars())
            if not seqs:
                return purged
            async with self._write() as conn:
                for chunk in _chunks(seqs):  # still unreferenced: checked again under the lock
                    result = await conn.execute(sa.delete(e).where(e.c.seq.in_(chunk), unreferenced))
                    purged += int(result.rowcount)
            if len(seqs) < PURGE_CHUNK:
                return purged
            after = seqs[-1]
            await asyncio.sleep(PURGE_PAUSE)

    async def _add_totals(
        self, conn: AsyncConnection, subscription: str, *, delivered: int = 0, dead: int = 0
    ) -> None:
        s = subscription_stats
        values: dict[str, Any] = {
            "delivered_total": s.c.delivered_total + delivered,
            "dead_total": s.c.dead_total + dead,
        }
        if delivered:
            values["last_delivered_at"] = _now()
        await conn.execute(sa.update(s).where(s.c.subscription == subscription).values(**values))


@contextmanager
def _store_errors() -> Iterator[None]:
    """Database errors as the store's: unavailable, unless a constraint refused the write."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as e:
        raise _unavailable(e) from e
    except OSError as e:  # e.g. asyncpg failing to connect
        raise StoreUnavailableError(f"store unavailable: {e}") from e


def _unavailable(error: DBAPIError) -> StoreUnavailableError:
    # Only the driver's message: the statement is not needed and its parameters may be secrets.
    reason = str(error.orig) if error.orig is not None else type(error).__name__
    return StoreUnavailableError(f"store unavailable: {reason}")


def _cluster(row: Row[Any]) -> ClusterRecord:
    return ClusterRecord(
        name=row.name,
        connection=cast(Mapping[str, Any], row.connection),
        labels=cast(Mapping[str, str], row.labels),
        resources=tuple(row.resources),
        created_at=row.created_at,
        updated_at=row.updated_at,
        generation=int(row.generation),
    )


def _lease(row: Row[Any]) -> LeaseRecord:
    return LeaseRecord(
        name=row.name,
        holder=row.holder,
        epoch=int(row.epoch),
        renewals=int(row.renewals),
        acquired_at=row.acquired_at,
        renewed_at=row.renewed_at,
    )


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=int(row.id),
        name=row.name,
        role=cast(TokenRole, row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _subscription(row: Row[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        name=row.name,
        spec=cast(Mapping[str, Any], row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        generation=int(row.generation),
    )


_FORGET_LEDGER = sa.delete(ledger_table).where(
    ledger_table.c.cluster == sa.bindparam("c"),
    ledger_table.c.scope == sa.bindparam("s"),
    ledger_table.c.uid == sa.bindparam("u"),
)

_SUPERSEDE_DEAD = (
    sa.update(deliveries)
    .where(
        deliveries.c.subscription == sa.bindparam("s"),
        deliveries.c.state == "dead",
        deliveries.c.object_key == sa.bindparam("k"),
        deliveries.c.event_seq < sa.bindparam("seq"),
        deliveries.c.superseded_at.is_(None),
        sa.exists().where(
            events_table.c.seq == deliveries.c.event_seq, events_table.c.uid == sa.bindparam("u")
        ),
    )
    .values(superseded_at=sa.bindparam("at"))
)


def _superseding_rows(superseding: Superseding | None) -> list[tuple[str, str, int, str]]:
    """(subscription, object key, event seq, uid), sorted: PostgreSQL writers lock rows in one
    order."""
    return sorted(
        (name, key, seq, uid)
        for name, objects in (superseding or {}).items()
        for (key, uid), seq in objects.items()
    )


_DELIVERY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.subscription,
    deliveries.c.object_key,
    deliveries.c.state,
    deliveries.c.attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.last_error,
    deliveries.c.created_at,
    deliveries.c.superseded_at,
)

_EVENT_COLUMNS = tuple(
    events_table.c[name]
    for name in (
        "seq",
        "event_id",
        "cluster",
        "group",
        "version",
        "kind",
        "resource",
        "namespace",
        "name",
        "uid",
        "resource_version",
        "type",
        "observed_at",
        "object",
        "old_object",
        "occasion",
    )
)


def _ledger_values(entry: LedgerEntry) -> tuple[str, str, str, str]:
    return (entry.namespace, entry.name, entry.resource_version, entry.content_hash)


def _delivery(row: Row[Any]) -> DeliveryRow:
    (
        id_,
        subscription,
        object_key,
        state,
        attempts,
        next_attempt_at,
        last_error,
        created_at,
        superseded_at,
        seq,
        event_id,
        cluster,
        group,
        version,
        kind,
        resource,
        namespace,
        name,
        uid,
        resource_version,
        type_,
        observed_at,
        obj,
        old,
        occasion,
    ) = tuple(row)
    return DeliveryRow(
        id=id_,
        subscription=subscription,
        object_key=object_key,
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
        created_at=created_at,
        superseded_at=superseded_at,
        event=StoredEvent(
            seq=seq,
            event_id=event_id,
            cluster=cluster,
            group=group,
            version=version,
            kind=kind,
            resource=resource,
            namespace=namespace,
            name=name,
            uid=uid,
            resource_version=resource_version,
            type=EventType(type_),
            observed_at=observed_at,
            object_json=obj.encode(),
            old_json=None if old is None else old.encode(),
            occasion=occasion,
        ),
    )


def _utc(value: Any) -> datetime | None:
    """An aggregate's timestamp as aware UTC: `min()` bypasses the column type on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), IDS_PER_STATEMENT):
        yield values[start : start + IDS_PER_STATEMENT]


async def _newest_pending(
    conn: AsyncConnection, subscription: str, keys: Sequence[str]
) -> dict[tuple[str, str], int]:
    """(object key, uid) -> the highest event seq `subscription` has queued (pending) for it."""
    d = deliveries
    newest: dict[tuple[str, str], int] = {}
    for chunk in _chunks(keys):
        query = (
            sa.select(d.c.object_key, events_table.c.uid, sa.func.max(d.c.event_seq))
            .select_from(d.join(events_table, events_table.c.seq == d.c.event_seq))
            .where(d.c.subscription == subscription, d.c.state == "pending", d.c.object_key.in_(chunk))
            .group_by(d.c.object_key, events_table.c.uid)
        )
        newest.update(((key, uid), int(seq)) for key, uid, seq in (await conn.execute(query)).all())
    return newest
