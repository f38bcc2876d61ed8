"""A throwaway PostgreSQL server for the store tests: the real thing, started per test session.

`MIC_TEST_POSTGRES_URL` (a server URL such as `postgresql://user@host:5432/postgres`) points
the tests at an existing server instead; otherwise the server binaries of the machine
(`initdb`, `pg_ctl`; Debian's package `postgresql`) start one in a temporary directory, as the
user `postgres` when the tests run as root (PostgreSQL refuses to run as root). Without either
the tests fail, saying so: a missing database is never a silent skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

ENV_URL = "MIC_TEST_POSTGRES_URL"


class PostgresServer:
    """Where the server listens; `new_database()` gives each test an empty database of its own."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")  # postgresql://user@host:port/dbname
        self.base = self.url.rsplit("/", 1)[0]

    async def new_database(self) -> str:
        name = f"mic_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: float(Path(path).parts[4])
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get(ENV_URL)
    if url:
        yield PostgresServer(url)
        return
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.fail(
            f"PostgreSQL is needed by the store tests: install its server (apt-get install postgresql) "
            f"or set {ENV_URL} to a server's URL",
            pytrace=False,
        )
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = Path(tempfile.mkdtemp(prefix="mic-pg-"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
    data, port = workdir / "data", _free_port()
    pg_ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data)]
    initdb = [
        *prefix,
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "--auth=trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
    ]
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(initdb, check=True, capture_output=True)
        start = [*pg_ctl, "-o", options, "-w", "-l", str(workdir / "log"), "start"]
        subprocess.run(start, check=True, capture_output=True)
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        if data.exists():
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
