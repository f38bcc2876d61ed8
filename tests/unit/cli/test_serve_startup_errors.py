"""`mic serve` that cannot start says why in one line, without a traceback or a password.

Exit codes: 2 when a setting is wrong as given, 1 when what it names cannot be used now (the
database, the port); never 3, which means a lost delivery lease. The database and port cases
run `mic serve` as a subprocess: they fail inside uvicorn, which calls `sys.exit` itself.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mic.cli.main import app
from mic.cli.serve import _check_database_url
from mic.service.settings import ServiceSettings

PASSWORD = "s3cret-pw"


def _serve_in_process(port: int, *args: str) -> tuple[int, str]:
    """`mic serve` on a port in use, so that it never serves, should it get as far as binding."""
    result = CliRunner().invoke(app, ["serve", "--port", str(port), *args])
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stderr


def _serve_subprocess(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    mic = Path(sys.executable).with_name("mic")
    command = [str(mic)] if mic.exists() else [sys.executable, "-m", "mic.cli.main"]
    env = {name: value for name, value in os.environ.items() if not name.startswith("MIC_")}
    return subprocess.run(
        [*command, "serve", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_an_unsupported_database_url_is_one_line_and_exit_2(busy_port: int) -> None:
    code, stderr = _serve_in_process(busy_port, "--database-url", f"mysql://mic:{PASSWORD}@db/mic")
    assert code == 2
    assert stderr.startswith("mic serve: unsupported database 'mysql'; use e.g. sqlite+aiosqlite:////")
    assert stderr.endswith(" (MIC_DATABASE_URL)\n")
    assert stderr.count("\n") == 1
    assert PASSWORD not in stderr


def test_a_given_sqlite_url_in_a_missing_directory_is_refused_and_nothing_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy_port: int
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stderr = _serve_in_process(
        busy_port, "--database-url", "sqlite+aiosqlite:///nonexistent/dir/mic.db"
    )
    assert code == 2
    assert stderr.startswith(
        f"mic serve: the directory of the SQLite database {tmp_path}/nonexistent/dir/mic.db does not exist;"
    )
    assert "for /nonexistent/dir/mic.db write sqlite+aiosqlite:////nonexistent/dir/mic.db" in stderr
    assert stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_default_database_may_create_its_data_directory(tmp_path: Path) -> None:
    _check_database_url(ServiceSettings(data_dir=tmp_path / "new" / "data"))  # no error
    with pytest.raises(ValueError, match="does not exist"):
        _check_database_url(ServiceSettings(database_url=f"sqlite:///{tmp_path}/new/data/mic.db"))


def test_an_unreachable_postgresql_is_one_line_without_its_password_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+asyncpg://mic:{PASSWORD}@127.0.0.1:1/mic"
    result = _serve_subprocess(tmp_path, "--port", str(port), "--database-url", url)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        "mic serve: cannot use the database postgresql+asyncpg://mic:***@127.0.0.1:1/mic: store unavailable:"
    )
    assert [line for line in result.stderr.splitlines() if line.startswith("mic serve:")] == [last]


def test_a_port_in_use_is_one_line_and_exit_1_before_the_database_is_opened(
    tmp_path: Path, busy_port: int
) -> None:
    data_dir = tmp_path / "data"
    result = _serve_subprocess(tmp_path, "--port", str(busy_port), "--data-dir", str(data_dir))
    assert result.returncode == 1, result.stderr
    in_use = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    assert result.stderr.splitlines() == [
        f"mic serve: cannot listen on 127.0.0.1:{busy_port}: {in_use} (MIC_HOST, MIC_PORT)"
    ]
    assert not data_dir.exists()  # neither the database opened nor its delivery lease taken
