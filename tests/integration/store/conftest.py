"""Fixtures for store tests: every test runs on a real SQLite file and on a real PostgreSQL
database (see postgres_server.py); tests of SQLite's own settings use `sqlite_url`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresServer, postgres_server

from mic.store import Store, default_database_url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return default_database_url(tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    server: PostgresServer = request.getfixturevalue("postgres")
    return await server.new_database()


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    store = await Store.open(url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    async with _opened(db_url) as opened:
        yield opened


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    async with _opened(sqlite_url) as opened:
        yield opened
