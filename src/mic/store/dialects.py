"""Everything that differs between SQLite and PostgreSQL, kept in this one module.

The rest of `mic.store` speaks portable SQLAlchemy Core. What cannot be portable is here:

* URL handling: `sqlite:///…` and `postgresql://…` are accepted and given their asyncio drivers
  (aiosqlite, asyncpg), so `MIC_DATABASE_URL` can be written the way people usually write it.
* Engine settings. For SQLite: WAL, foreign keys, busy timeout, and transaction control.
  Python's `sqlite3` (under aiosqlite) by default emits no BEGIN before SELECT or DDL
  ("legacy transaction control"), which breaks transactional migrations and repeatable reads.
  So the driver's own BEGIN is disabled (`isolation_level = None`) and SQLAlchemy's `begin` event
  emits it instead: `BEGIN IMMEDIATE` for write transactions, plain (deferred) `BEGIN` for reads.
  Taking the write lock up front is what keeps two writers (two `Store`s, maybe two processes)
  from deadlocking: with deferred transactions, two readers that both try to become writers get
  `SQLITE_BUSY` at once, without the busy timeout ever applying; with `BEGIN IMMEDIATE` the second
  writer simply waits up to `SQLITE_BUSY_TIMEOUT_MS` for the first to commit.
* Upsert (`INSERT … ON CONFLICT DO UPDATE`), whose SQLAlchemy constructs are per dialect.
* Running a whole write transaction in aiosqlite's thread (`run_sqlite_transaction`), for
  writes of many statements that would otherwise wait for the event loop after each one.
* Serialising concurrent migrations: SQLite's `BEGIN IMMEDIATE` already does; PostgreSQL takes a
  transaction-scoped advisory lock.

Durability (SQLite; PostgreSQL's default `synchronous_commit = on` already is durable). WAL mode
is always on. `synchronous` depends on how the store was opened:

* `durable=True` (the default of `Store.open`, and what `mic serve` uses): `synchronous=FULL`.
  Every commit fsyncs the WAL, so a committed transaction survives an OS crash or power loss,
  not only a crash of the MIC process. The delivery outbox needs this: `Store.record_changes`
  is where MIC accepts responsibility for an event and updates the ledger, and after that commit
  the event is not emitted again; if the commit could roll back at a power loss, the event
  would be lost for good. The cost is one fsync per commit (see `Store.record_changes` for the
  batch sizes that make it affordable).
* `durable=False`: `synchronous=NORMAL`. In WAL mode this survives `kill -9` of MIC without
  losing committed transactions; only an OS crash or power loss may roll back the last few
  commits. Good enough for tests, benchmarks and throwaway stores.

The setting is per engine (every connection of one `Store`), not per transaction: configuration
writes are rare, so making them durable too costs nothing measurable.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Table, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another writer (any process) before failing."""

SQLITE_SYNCHRONOUS = "NORMAL"
"""`durable=False`: in WAL mode safe across process crashes, not power loss (module docstring)."""

SQLITE_SYNCHRONOUS_DURABLE = "FULL"
"""`durable=True`: every commit is fsynced, so it survives power loss too (module docstring)."""

WRITE_OPTION = "mic_store_write"
"""Execution option marking a connection whose transactions will write (`BEGIN IMMEDIATE`)."""

MIGRATION_LOCK_ID = 0x6D69635F6D6967  # "mic_mig": the PostgreSQL advisory lock for migrations

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}

_EXAMPLE_URLS = "sqlite+aiosqlite:////var/lib/mic/mic.db or postgresql+asyncpg://user:password@host/db"
"""What error messages suggest: four slashes, since `sqlite:///x` is the relative path `x`."""

_ABSOLUTE_HINT = (
    "sqlite:///path (three slashes) is relative to the working directory, sqlite:////path (four) absolute"
)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file `mic.db` in `data_dir` (made absolute)."""
    return f"sqlite+aiosqlite:///{(data_dir.expanduser().absolute() / 'mic.db').as_posix()}"


def normalize_url(url: str | URL) -> URL:
    """Parse `url` and give it an asyncio driver; reject what the store does not support.

    Raises `ValueError` with a message saying what to write instead.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ValueError(f"invalid database URL; expected e.g. {_EXAMPLE_URLS}") from e
    backend, _, given = parsed.drivername.partition("+")
    if backend == "postgres":  # the spelling Heroku and libpq accept
        backend = "postgresql"
    driver = _ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {backend!r}; use e.g. {_EXAMPLE_URLS}")
    if given and given != driver:
        raise ValueError(
            f"database driver {given!r} is not supported for {backend}; use {backend}+{driver}://…"
        )
    return parsed.set(drivername=f"{backend}+{driver}")


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for memory databases, URIs and other backends."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)


def check_sqlite_directory(url: URL) -> None:
    """Raise `ValueError` when a SQLite file's directory does not exist, naming its absolute path.

    For a URL the operator wrote (`prepare_location` creates directories, as the default data
    directory needs): SQLAlchemy reads `sqlite:///tmp/x/mic.db` as the relative path
    `tmp/x/mic.db`, so creating what is missing would start MIC, from another directory, on a new
    empty database with none of its registrations. A missing directory is the sign of such a
    typo, and the message says how to write an absolute path.
    """
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return
    if path.is_absolute():
        hint = "create it first"
    else:
        meant = url.set(database=f"/{path.as_posix()}").render_as_string(hide_password=True)
        hint = f"{_ABSOLUTE_HINT}: for /{path.as_posix()} write {meant}"
    raise ValueError(f"the directory of the SQLite database {path.resolve()} does not exist; {hint}")


def prepare_location(url: URL) -> None:
    """Create a SQLite file's directory, and the file itself readable by its owner only.

    The clusters table holds credentials, so the file is created mode 0600 before SQLite opens it
    (an empty file is a valid empty database); SQLite gives its `-wal` and `-shm` files the same
    mode. A directory MIC creates is 0700. Existing files and directories are left as they are.

    Logs the file's absolute path, and a warning when it is new: a URL pointing at the wrong file
    otherwise shows only as a MIC that starts with no registrations.
    """
    path = sqlite_file(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        log.info("using the SQLite database %s", path.resolve())
        return
    os.close(fd)
    log.warning(
        "created a new, empty SQLite database %s; if MIC should have found its registrations, the"
        " database URL names the wrong file (%s)",
        path.resolve(),
        _ABSOLUTE_HINT,
    )


def create_engine(url: URL, *, durable: bool = True) -> AsyncEngine:
    """An async engine configured for the URL's database (see the module docstring).

    `durable` chooses SQLite's `synchronous` level; PostgreSQL ignores it.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        # File databases get AsyncAdaptedQueuePool (SQLAlchemy's default for aiosqlite): each
        # pooled connection owns one aiosqlite thread and only ever runs on it, so
        # `check_same_thread` can stay at its safe default. The driver-level timeout covers the
        # dialect's first-connect queries, before our PRAGMAs run.
        engine = create_async_engine(
            url,
            hide_parameters=True,  # statement parameters may be credentials; keep them out of errors
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _install_sqlite_hooks(engine, SQLITE_SYNCHRONOUS_DURABLE if durable else SQLITE_SYNCHRONOUS)
        return engine
    # PostgreSQL: pre-ping so a restarted server or a dropped connection costs a retry, not an error.
    return create_async_engine(url, hide_parameters=True, pool_pre_ping=True)


def _enable_wal(cursor: Any) -> str:
    """Switch the file to WAL and return the journal mode it is in.

    Turning a new file to WAL needs a moment of exclusive access, and SQLite answers "database
    is locked" at once, without its busy timeout, when another process opening the same new
    file holds it. That moment is short: try again for up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return str(cursor.fetchone()[0])
        except Exception as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # connect-time only, and only while another opener holds the file


def _install_sqlite_hooks(engine: AsyncEngine, synchronous: str) -> None:
    sync_engine = engine.sync_engine
    in_memory = sqlite_file(engine.url) is None

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _on_begin
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = _enable_wal(cursor)
            if str(mode).lower() != "wal" and not in_memory:
                log.warning(
                    "SQLite refused WAL mode (journal_mode=%s); concurrent access will be slower", mode
                )
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class DriverThreadUnavailable(NotImplementedError):
    """The SQLite driver offers no way to run a function in its thread (raised before any SQL ran)."""


async def run_sqlite_transaction(engine: AsyncEngine, function: Callable[[sqlite3.Connection], T]) -> T:
    """Run `function` with a pooled connection's raw `sqlite3` connection in a write transaction
    (`BEGIN IMMEDIATE` … `COMMIT`; `ROLLBACK` if anything raises), all of it in aiosqlite's
    thread: one trip through the event loop for the whole transaction.

    Why: aiosqlite runs each statement in its thread and returns each result through the loop,
    so a transaction of N statements (BEGIN and COMMIT included) waits N times for a loop that
    may be busy decoding watch events. aiosqlite offers no public way to run a function in its
    thread; its `_execute` has been that way through its releases (aiosqlite is pinned, and the
    store tests run this path); should a release drop it, `DriverThreadUnavailable` says so
    before anything ran, and the store goes statement by statement. Errors of `sqlite3` come out
    as SQLAlchemy's, as they would from a statement run through SQLAlchemy (an `IntegrityError`
    stays one).
    """
    async with engine.connect() as conn:
        fairy = await conn.get_raw_connection()
        driver: Any = fairy.driver_connection
        # Looked up on the class: aiosqlite's `_conn` raises ValueError on a closed connection.
        if getattr(type(driver), "_execute", None) is None or getattr(type(driver), "_conn", None) is None:
            raise DriverThreadUnavailable(f"cannot run a function in the thread of {type(driver).__name__}")
        started = False

        def transaction() -> T:
            nonlocal started
            db: sqlite3.Connection = driver._conn
            started = True
            db.execute("BEGIN IMMEDIATE")
            try:
                result = function(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

        try:
            result: T = await driver._execute(transaction)
        except sqlite3.Error as error:
            raise DBAPIError.instance(None, None, error, sqlite3.Error) from error
        except ValueError as error:
            if started:
                raise  # from `function`: not the connection's doing
            # aiosqlite's "Connection closed" / "no active connection": the database is not
            # reachable through this connection, as SQLAlchemy's adapter reports it.
            raise OperationalError(None, None, error) from error
        return result


def writer(engine: AsyncEngine) -> AsyncEngine:
    """A view of `engine` (same pool) whose transactions take the write lock at BEGIN."""
    return engine.execution_options(**{WRITE_OPTION: True})


async def lock_for_migration(conn: AsyncConnection) -> None:
    """Serialise migrations run by several processes at once, for the current transaction."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    # SQLite: the migration transaction began with BEGIN IMMEDIATE, which already excludes writers.


def upsert(dialect_name: str, table: Table, values: Mapping[str, Any], key: Sequence[str]) -> Insert:
    """`INSERT … ON CONFLICT (key) DO UPDATE SET` every other column to the new values."""
    return _upsert(dialect_name, table, values, list(values), key)


def upsert_many(dialect_name: str, table: Table, columns: Sequence[str], key: Sequence[str]) -> Insert:
    """Like `upsert`, without values: execute it with a list of rows (DBAPI `executemany`).

    One statement for a whole batch is what keeps ledger updates of 100 events to one round
    trip. Every row must give every column in `columns`.
    """
    return _upsert(dialect_name, table, None, columns, key)


def _upsert(
    dialect_name: str,
    table: Table,
    values: Mapping[str, Any] | None,
    columns: Sequence[str],
    key: Sequence[str],
) -> Insert:
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        sqlite_stmt = sqlite_insert(table)
        if values is not None:
            sqlite_stmt = sqlite_stmt.values(dict(values))
        return sqlite_stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={k: sqlite_stmt.excluded[k] for k in columns if k not in key},
        )
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_stmt = pg_insert(table)
        if values is not None:
            pg_stmt = pg_stmt.values(dict(values))
        return pg_stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={k: pg_stmt.excluded[k] for k in columns if k not in key},
        )
    raise NotImplementedError(f"upsert is not implemented for {dialect_name}")
