"""Fixtures for store tests: a real SQLite file per test, in pytest's tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mic.store import Store, default_database_url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return default_database_url(tmp_path / "data")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()
