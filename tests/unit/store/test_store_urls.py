"""Database URL handling (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mic.store import default_database_url
from mic.store.dialects import normalize_url, sqlite_file


def test_default_database_url_is_an_absolute_sqlite_file(tmp_path: Path) -> None:
    assert default_database_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/mic.db"
    assert sqlite_file(normalize_url(default_database_url(tmp_path))) == tmp_path / "mic.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/lib/mic/mic.db", "sqlite+aiosqlite:///var/lib/mic/mic.db"),
        ("sqlite+aiosqlite:///mic.db", "sqlite+aiosqlite:///mic.db"),
        ("postgresql://u@db/mic", "postgresql+asyncpg://u@db/mic"),
        ("postgres://u@db/mic", "postgresql+asyncpg://u@db/mic"),
    ],
)
def test_urls_get_their_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string() == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("mysql://db/mic", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://db/mic", "driver 'psycopg2' is not supported"),
        ("not a url", "invalid database URL"),
    ],
)
def test_unsupported_urls_say_what_to_write(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_url(given)


def test_memory_databases_have_no_file() -> None:
    assert sqlite_file(normalize_url("sqlite://")) is None
    assert sqlite_file(normalize_url("postgresql://db/mic")) is None
