"""`mic serve` and the `mic` command as subprocesses, for end-to-end tests.

The emulators and recipients of a test serve from the test's event loop, so everything here is
awaited (asyncio subprocesses, httpx.AsyncClient): a blocking call would freeze the clusters MIC
is talking to. Waiting is always polling a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = "e2e-admin-token-3f9a"
VIEWER_TOKEN = "e2e-viewer-token-77c1"
CLUSTER_TOKEN = "e2e-cluster-token-c0ffee"  # the emulators' credential: must never come back out
START_TIMEOUT = 20.0
CONVERGE_TIMEOUT = 20.0


def _mic_command() -> list[str]:
    """The installed `mic` script next to this interpreter (what a user runs), else `-m`."""
    script = Path(sys.executable).with_name("mic")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mic.cli.main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = CONVERGE_TIMEOUT, what: str
) -> Any:
    """Await `check()` until it returns something truthy; fail with `what` and its last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except httpx.HTTPError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.1)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


class MicServer:
    """`mic serve` as a subprocess; output goes to a file (a pipe nobody reads would fill up)."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        self.env = {
            **os.environ,
            "MIC_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'mic.db'}",
            "MIC_DATA_DIR": str(workdir / "data"),
            "MIC_ADMIN_TOKEN": ADMIN_TOKEN,
            "MIC_VIEWER_TOKEN": VIEWER_TOKEN,
            "MIC_LOG_LEVEL": "info",
        }
        self.env.pop("MIC_TOKEN", None)
        self.env.pop("MIC_URL", None)
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None
        self.verify: ssl.SSLContext | bool = True
        """How clients check the server's certificate, when it serves HTTPS."""

    async def start(self, *, until: str = "/readyz") -> None:
        """Start `mic serve` and wait until `until` answers 200 (`/healthz` for a standby)."""
        with self.log.open("a") as log:
            log.write(f"--- mic serve --port {self.port}\n")
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                *_mic_command(), "serve", "--port", str(self.port),
                env=self.env, cwd=self.workdir, stdout=log, stderr=log,
            )  # fmt: skip
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0, verify=self.verify) as http:

            async def ready() -> bool:
                assert self.process is not None
                if self.process.returncode is not None:
                    pytest.fail(f"mic serve exited with {self.process.returncode}:\n{self.log.read_text()}")
                return (await http.get(until)).status_code == 200

            await eventually(ready, timeout=START_TIMEOUT, what=f"mic serve {until}")

    async def terminate(self) -> int | None:
        """SIGTERM: a clean stop (uvicorn's graceful shutdown), as an orchestrator sends."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(process.wait(), timeout=30)

    async def kill(self) -> int | None:
        """SIGKILL: no shutdown code runs, as when a node dies or the OOM killer strikes."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGKILL)
        return await asyncio.wait_for(process.wait(), timeout=10)


@pytest.fixture
async def mic_server(tmp_path: Path) -> AsyncIterator[MicServer]:
    server = MicServer(tmp_path)
    try:
        yield server
    finally:
        await server.kill()


async def mic(
    server: MicServer, *args: str, token: str = ADMIN_TOKEN, env: dict[str, str] | None = None
) -> CliResult:
    """Run the `mic` command as a user would, with MIC_URL/MIC_TOKEN in the environment."""
    env = {**os.environ, "MIC_URL": server.url, "MIC_TOKEN": token, **(env or {})}
    process = await asyncio.create_subprocess_exec(
        *_mic_command(), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    result = CliResult(process.returncode or 0, stdout.decode(), stderr.decode())
    for secret in (ADMIN_TOKEN, VIEWER_TOKEN, CLUSTER_TOKEN):
        assert secret not in result.stdout + result.stderr, f"`mic {' '.join(args)}` printed a token"
    assert "Traceback" not in result.stderr
    return result
