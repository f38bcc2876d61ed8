"""`Store`: MIC's registrations (clusters, API tokens, settings) in SQLite or PostgreSQL.

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
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mic.store import dialects
from mic.store.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from mic.store.migrate import upgrade
from mic.store.records import TOKEN_ROLES, ClusterRecord, TokenRecord, TokenRole
from mic.store.schema import CLUSTERS_SEQUENCE, api_tokens, clusters, sequences, settings

log = logging.getLogger(__name__)

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

    @classmethod
    async def open(cls, url: str) -> Store:
        """Open the database at `url`, creating it (and a SQLite file's directory) if needed.

        Accepts `sqlite[+aiosqlite]:///path` and `postgresql[+asyncpg]://…`. Applies pending
        migrations before returning, so the schema is current. Raises `ValueError` for an
        unsupported URL, `SchemaError` for a database newer than this MIC,
        `StoreUnavailableError` when the database cannot be reached.
        """
        parsed = dialects.normalize_url(url)
        dialects.prepare_location(parsed)
        engine = dialects.create_engine(parsed)
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
        try:
            async with self._engine.connect() as conn:
                yield conn
        except IntegrityError:
            raise
        except DBAPIError as e:
            raise _unavailable(e) from e
        except OSError as e:  # e.g. asyncpg failing to connect
            raise StoreUnavailableError(f"store unavailable: {e}") from e

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception."""
        try:
            async with self._writer.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except DBAPIError as e:
            raise _unavailable(e) from e
        except OSError as e:
            raise StoreUnavailableError(f"store unavailable: {e}") from e

    async def _next_value(self, conn: AsyncConnection, sequence: str) -> int:
        """Bump a named sequence inside the caller's write transaction (rolled back with it)."""
        table = sequences
        result = await conn.execute(
            sa.update(table).where(table.c.name == sequence).values(value=table.c.value + 1)
        )
        if result.rowcount != 1:
            raise SchemaError(f"sequence {sequence!r} is missing from the database; was a migration skipped?")
        value = (await conn.execute(sa.select(table.c.value).where(table.c.name == sequence))).scalar_one()
        return int(value)

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


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=int(row.id),
        name=row.name,
        role=cast(TokenRole, row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
