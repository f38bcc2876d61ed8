"""`mic clusters add|update` wait for the cluster to connect, against a real MIC and emulated clusters.

MIC (the real app under uvicorn, on SQLite) and the emulated clusters serve from an event loop
in a background thread, over real sockets; the test thread runs the `mic` command as a user
would (`CliRunner`, `MIC_URL`/`MIC_TOKEN` in the environment), whose blocking HTTP calls would
otherwise freeze the servers it is talking to.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
import yaml
from click.testing import Result
from typer.testing import CliRunner

from mic.api.app import create_app
from mic.cli.main import app as mic_app
from mic.service.settings import ServiceSettings
from mic.testing.emulator import KubeEmulator, TokenPolicy
from mic.testing.seed import seed_demo

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "cli-wait-admin-token-0123456789"
CLUSTER_TOKEN = "cli-wait-cluster-token-c0ffee"
WRONG_TOKEN = "cli-wait-wrong-token-deadbeef"
T = TypeVar("T")


@dataclass
class Background:
    """An event loop in a daemon thread, for servers the (blocking) CLI talks to."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="mic-test-servers", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Servers:
    """MIC and the emulated clusters of one test, with what the CLI needs to reach them."""

    background: Background
    mic_url: str
    workdir: Path
    emulators: list[KubeEmulator] = field(default_factory=list)

    def emulator(self, name: str, *, tls: bool = False) -> KubeEmulator:
        """A started cluster that only lets CLUSTER_TOKEN in, with the demo Ingresses (2)."""
        emulator = KubeEmulator(name, tokens={CLUSTER_TOKEN: TokenPolicy.allow_all()}, tls=tls)
        self.background.run(emulator.start())
        self.emulators.append(emulator)
        seed_demo(emulator)
        return emulator

    def kubeconfig(self, emulator: KubeEmulator, token: str) -> Path:
        path = self.workdir / f"{emulator.name}-{token[-8:]}.kubeconfig"
        path.write_text(yaml.safe_dump(emulator.kubeconfig(token=token)))
        return path

    def file(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path


async def _start_mic(
    settings: ServiceSettings, sock: socket.socket
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # a failed start: raise its error
        await asyncio.sleep(0.01)
    return server, task


async def _stop_mic(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    background = Background()
    settings = ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}",
        admin_token=ADMIN_TOKEN,
        announce_generated_token=False,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    mic, task = background.run(_start_mic(settings, sock))
    running = Servers(background, f"http://127.0.0.1:{sock.getsockname()[1]}", tmp_path)
    try:
        yield running
    finally:
        background.run(_stop_mic(mic, task))
        for emulator in running.emulators:
            background.run(emulator.stop())
        background.close()
        sock.close()


def mic(servers: Servers, *args: str) -> Result:
    """`mic <args>` with MIC_URL and MIC_TOKEN set; never a traceback, never a token printed."""
    env = {"MIC_URL": servers.mic_url, "MIC_TOKEN": ADMIN_TOKEN}
    result = CliRunner().invoke(mic_app, list(args), env=env, catch_exceptions=False)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for token in (ADMIN_TOKEN, CLUSTER_TOKEN, WRONG_TOKEN):
        assert token not in output, f"`mic {' '.join(args)}` printed a token"
    return result


def timed(servers: Servers, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = mic(servers, *args)
    return result, time.monotonic() - started


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: MIC keeps
    "connecting" until its own 30 s request timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_add_a_good_cluster_waits_until_connected(servers: Servers) -> None:
    emulator = servers.emulator("good")
    kubeconfig = servers.kubeconfig(emulator, CLUSTER_TOKEN)

    result = mic(
        servers, "clusters", "add", "good", "--kubeconfig", str(kubeconfig), "--resource", "ingresses",
        "--wait-seconds", "10",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert (
        result.stdout == "cluster 'good' added: connected (server v1.31.0-mic-emulator), 2 objects cached\n"
    )


def test_add_with_a_rejected_token_exits_1_and_says_the_registration_is_stored(servers: Servers) -> None:
    emulator = servers.emulator("locked")
    kubeconfig = servers.kubeconfig(emulator, WRONG_TOKEN)

    result = mic(servers, "clusters", "add", "locked", "--kubeconfig", str(kubeconfig), "--wait-seconds", "5")

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "error: cluster 'locked' added, but MIC cannot connect to it: unauthorized: the cluster refused"
        " MIC's credentials (401 Unauthorized: Unauthorized). The registration is stored and MIC keeps"
        " retrying; fix its credentials with 'mic clusters update locked --kubeconfig FILE'\n"
    )
    stored = mic(servers, "clusters", "get", "locked", "-o", "json")
    assert json.loads(stored.stdout)["status"]["state"] == "unauthorized"
    assert json.loads(stored.stdout)["status"]["reason"] == "Unauthorized"
    shown = [line.split() for line in mic(servers, "clusters", "get", "locked").stdout.splitlines()]
    assert ["Reason:", "Unauthorized"] in shown
    listed = [line.split() for line in mic(servers, "clusters", "list").stdout.splitlines()]
    assert listed[0][:3] == ["NAME", "STATE", "REASON"]
    assert listed[1][:3] == ["locked", "unauthorized", "Unauthorized"]


def test_add_json_output_still_prints_the_stored_cluster_when_it_cannot_connect(servers: Servers) -> None:
    emulator = servers.emulator("locked")
    kubeconfig = servers.kubeconfig(emulator, WRONG_TOKEN)

    result = mic(
        servers,
        "clusters",
        "add",
        "locked",
        "--kubeconfig",
        str(kubeconfig),
        "-o",
        "json",
        "--wait-seconds",
        "5",
    )

    assert result.exit_code == 1, result.output
    cluster = json.loads(result.stdout)
    assert (cluster["name"], cluster["status"]["state"]) == ("locked", "unauthorized")
    assert result.stderr.startswith(
        "error: cluster 'locked' added, but MIC cannot connect to it: unauthorized"
    )
    assert "The registration is stored" in result.stderr


def test_add_an_unreachable_server_fails_within_the_wait(servers: Servers, closed_port: int) -> None:
    token_file = servers.file("token", CLUSTER_TOKEN)
    server = f"http://127.0.0.1:{closed_port}"

    result, elapsed = timed(
        servers, "clusters", "add", "gone", "--server", server, "--token-file", str(token_file),
        "--wait-seconds", "8",
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert elapsed < 8, "an unreachable server is an answer: no need to wait it out"
    assert result.stderr.startswith(
        f"error: cluster 'gone' added, but MIC cannot connect to it: unreachable: cannot reach {server}"
    )
    assert result.stderr.endswith(
        ". The registration is stored and MIC keeps retrying; check that MIC's host can reach the server,"
        " or fix it with 'mic clusters update gone --server URL --token-file FILE'\n"
    )
    assert len(result.stderr.splitlines()) == 1


def test_add_a_server_whose_certificate_fails_suggests_its_ca(servers: Servers) -> None:
    emulator = servers.emulator("private-ca", tls=True)
    token_file = servers.file("token", CLUSTER_TOKEN)

    result = mic(
        servers, "clusters", "add", "private-ca", "--server", emulator.url, "--token-file", str(token_file),
        "--wait-seconds", "5",
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "error: cluster 'private-ca' added, but MIC cannot connect to it: unreachable: the server's"
        " certificate could not be verified (cannot reach https://127.0.0.1:"
    )
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    stored = json.loads(mic(servers, "clusters", "get", "private-ca", "-o", "json").stdout)
    assert (stored["status"]["state"], stored["status"]["reason"]) == ("unreachable", "TLSVerifyFailed")
    assert result.stderr.endswith(
        ". The registration is stored and MIC keeps retrying; give the CA that signed it with"
        " 'mic clusters update private-ca --server URL --token-file FILE --ca-file CA.pem'\n"
    )


def test_add_gives_up_after_wait_seconds_and_keeps_the_registration(
    servers: Servers, silent_port: int
) -> None:
    token_file = servers.file("token", CLUSTER_TOKEN)

    result, elapsed = timed(
        servers, "clusters", "add", "slow", "--server", f"http://127.0.0.1:{silent_port}",
        "--token-file", str(token_file), "--wait-seconds", "1",
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert 1 <= elapsed < 5
    assert result.stderr == (
        "error: cluster 'slow' added, but it did not connect within 1s (state: connecting). The registration"
        " is stored and MIC keeps retrying; see 'mic clusters get slow'\n"
    )


def test_no_wait_exits_0_as_soon_as_it_is_stored(servers: Servers, silent_port: int) -> None:
    token_file = servers.file("token", CLUSTER_TOKEN)

    result, elapsed = timed(
        servers, "clusters", "add", "slow", "--server", f"http://127.0.0.1:{silent_port}",
        "--token-file", str(token_file), "--no-wait", "--wait-seconds", "10",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert elapsed < 3
    assert result.stdout == "cluster 'slow' added (state: connecting)\n"


def test_update_with_the_right_token_waits_until_connected(servers: Servers) -> None:
    emulator = servers.emulator("rotated")
    added = mic(
        servers, "clusters", "add", "rotated", "--kubeconfig", str(servers.kubeconfig(emulator, WRONG_TOKEN)),
        "--resource", "ingresses", "--wait-seconds", "5",
    )  # fmt: skip
    assert added.exit_code == 1, added.output

    fixed = servers.kubeconfig(emulator, CLUSTER_TOKEN)

    result = mic(servers, "clusters", "update", "rotated", "--kubeconfig", str(fixed), "--wait-seconds", "10")

    assert result.exit_code == 0, result.output
    assert (
        result.stdout
        == "cluster 'rotated' updated: connected (server v1.31.0-mic-emulator), 2 objects cached\n"
    )
