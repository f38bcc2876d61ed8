"""Where a SQLite URL points: `sqlite:///x` (three slashes) is the relative path `x`.

An operator who wrote three slashes meaning an absolute path got, from another working
directory, a new empty database (directories created) and a MIC without its registrations.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from mic.store import default_database_url
from mic.store.dialects import check_sqlite_directory, normalize_url, prepare_location


def test_a_relative_path_whose_directory_is_missing_is_refused_with_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    resolved = f"{tmp_path}/srv/mic/mic.db"
    expected = f"the directory of the SQLite database {resolved} does not exist"
    with pytest.raises(ValueError, match=re.escape(expected)) as raised:
        check_sqlite_directory(normalize_url("sqlite:///srv/mic/mic.db"))
    message = str(raised.value)
    assert "sqlite:////path (four) absolute" in message
    assert "for /srv/mic/mic.db write sqlite+aiosqlite:////srv/mic/mic.db" in message
    assert not (tmp_path / "srv").exists()


def test_an_absolute_path_whose_directory_is_missing_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "dir" / "mic.db"
    with pytest.raises(
        ValueError, match=re.escape(f"SQLite database {missing} does not exist; create it first")
    ):
        check_sqlite_directory(normalize_url(f"sqlite:///{missing}"))
    assert not (tmp_path / "no").exists()


def test_existing_directories_memory_databases_and_postgresql_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_sqlite_directory(normalize_url(f"sqlite:///{tmp_path}/mic.db"))
    check_sqlite_directory(normalize_url("sqlite:///mic.db"))  # in the working directory
    check_sqlite_directory(normalize_url("sqlite://"))
    check_sqlite_directory(normalize_url("postgresql://u:p@db/mic"))


def test_the_absolute_path_is_logged_and_a_new_empty_database_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    url = normalize_url("sqlite+aiosqlite:///data/mic.db")
    caplog.set_level(logging.INFO, logger="mic.store.dialects")

    prepare_location(url)
    assert [(r.levelno, r.getMessage().partition(";")[0]) for r in caplog.records] == [
        (logging.WARNING, f"created a new, empty SQLite database {tmp_path}/data/mic.db")
    ]
    caplog.clear()

    prepare_location(url)  # a restart: the file is there
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"using the SQLite database {tmp_path}/data/mic.db")
    ]


def test_the_default_data_directory_is_still_created(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    prepare_location(normalize_url(default_database_url(data_dir)))
    assert (data_dir / "mic.db").is_file()
