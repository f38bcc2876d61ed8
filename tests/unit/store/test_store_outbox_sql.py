"""The SQLite outbox write's statements: one-row inserts turned into many-row ones."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg

from mic.store.outbox_write import bulk_sql, multi_row_statement


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
