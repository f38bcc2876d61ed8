"""The SQLite outbox write's statements: one-row inserts turned into many-row ones."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg

from mic.store.outbox_write import BulkSQL, bulk_sql, chunk_sizes, insert_sqlite, multi_row_statement


def test_a_one_row_insert_becomes_a_many_row_one() -> None:
    assert multi_row_statement("INSERT INTO t (a, b) VALUES (?, ?)", 3) == (
        "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
    )


def test_the_upsert_clause_follows_all_the_rows() -> None:
    upsert = bulk_sql(sqlite.dialect()).ledger_upsert
    statement = multi_row_statement(upsert, 2)
    assert statement.count("(?, ?, ?, ?, ?, ?, ?, ?)") == 2
    assert statement.endswith(upsert.partition("VALUES (?, ?, ?, ?, ?, ?, ?, ?)")[2])
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE ledger (cluster, scope, uid, namespace, name, resource_version, content_hash,"
        " updated_at, PRIMARY KEY (cluster, scope, uid))"
    )
    rows = [("c", "s", "u1", "ns", "a", "1", "h", "t"), ("c", "s", "u2", "ns", "b", "1", "h", "t")]
    db.execute(statement, [value for row in rows for value in row])
    db.execute(multi_row_statement(upsert, 1), ["c", "s", "u1", "ns", "a", "2", "h2", "t"])
    assert db.execute("SELECT uid, resource_version FROM ledger ORDER BY uid").fetchall() == [
        ("u1", "2"),
        ("u2", "1"),
    ]


def test_only_sqlite_runs_the_write_in_the_driver_thread() -> None:
    assert bulk_sql(sqlite.dialect()).in_driver_thread
    assert not bulk_sql(asyncpg.dialect()).in_driver_thread


@pytest.mark.parametrize(
    "statement", ["INSERT INTO t (a) VALUES ($1)", "INSERT INTO t (a) SELECT 1", "UPDATE t SET a = ?"]
)
def test_anything_but_a_one_row_qmark_insert_is_refused(statement: str) -> None:
    with pytest.raises(NotImplementedError):
        multi_row_statement(statement, 2)


@pytest.mark.parametrize(("total", "step"), [(0, 7), (5, 7), (7, 7), (2_999, 2_000), (12_345, 2_000), (1, 1)])
def test_chunk_sizes_cover_every_row_with_few_distinct_sizes(total: int, step: int) -> None:
    sizes = list(chunk_sizes(total, step))
    assert sum(sizes) == total
    assert all(0 < size <= step for size in sizes)
    assert all(size == step or size & (size - 1) == 0 for size in sizes)  # step, or a power of two


def _ledger_db(variable_limit: int | None = None) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    if variable_limit is not None:
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
    db.execute(
        "CREATE TABLE ledger (cluster, scope, uid, namespace, name, resource_version, content_hash,"
        " updated_at, PRIMARY KEY (cluster, scope, uid))"
    )
    return db


def test_inserts_stay_within_the_databases_limit_on_bound_values() -> None:
    # SQLite before 3.32 (or built so) takes 999 values per statement, not 32,766.
    db = _ledger_db(variable_limit=999)
    sql = bulk_sql(sqlite.dialect())
    rows = [("c", "s", f"u{i}", "ns", f"n{i}", "1", "h", "t") for i in range(1_000)]
    cursor = db.cursor()
    insert_sqlite(cursor, sql, sql.ledger_upsert, rows)
    assert db.execute("SELECT count(*) FROM ledger").fetchone() == (1_000,)


def test_the_statement_cache_stays_small_whatever_the_row_counts() -> None:
    db = _ledger_db()
    sql = BulkSQL(
        ledger_upsert=bulk_sql(sqlite.dialect()).ledger_upsert,
        events_insert="",
        deliveries_insert="",
        timestamp=lambda value: value,
        in_driver_thread=True,
    )
    cursor = db.cursor()
    for count in range(1, 600):
        rows = [("c", "s", f"u{count}-{i}", "ns", "n", "1", "h", "t") for i in range(count)]
        insert_sqlite(cursor, sql, sql.ledger_upsert, rows)
    assert len(sql._multi_row) <= 12


def test_sqlite_timestamps_are_the_text_sqlite3_would_store_made_once() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy.dialects.sqlite import aiosqlite

    stamp = bulk_sql(aiosqlite.dialect()).timestamp
    for moment in (datetime(2026, 12, 2, 16, 18, 52, 466327, UTC), datetime(2026, 1, 1, tzinfo=UTC)):
        assert stamp(moment) == moment.isoformat(" ")  # sqlite3's default datetime adapter
    elsewhere = datetime(2026, 12, 2, 17, 0, tzinfo=timezone(timedelta(hours=1)))
    assert stamp(elsewhere) == "2026-12-02 16:00:00+00:00"  # stored as UTC, as the column type does
    assert isinstance(bulk_sql(asyncpg.dialect()).timestamp(elsewhere), datetime)
