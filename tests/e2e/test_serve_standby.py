"""Two `mic serve` on one database, as a rolling update runs them: one delivers, one waits.

The second MIC must not deliver (every recipient would get each change twice) while the first
holds the store's delivery lease; it answers 503 to the API and `standby` on `/readyz`, stays
alive on `/healthz`, and takes over when the first stops cleanly (at once), is killed (at once:
a process of this host that no longer runs holds nothing), or freezes (after the lease
duration; the frozen one, woken, finds the lease gone and exits instead of delivering on).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from mic_process import ADMIN_TOKEN, CLUSTER_TOKEN, MicServer, eventually

from mic.testing import KubeEmulator, TokenPolicy
from mic.testing.recipient import WebhookRecipient

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 2.0


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


def sharing(first: MicServer, workdir: Path) -> MicServer:
    """A second MIC on `first`'s database, with its own port, data directory and log."""
    workdir.mkdir()
    second = MicServer(workdir)
    second.env["MIC_DATABASE_URL"] = first.env["MIC_DATABASE_URL"]
    for server in (first, second):
        server.env["MIC_LEASE_SECONDS"] = str(LEASE_SECONDS)
    return second


async def test_one_mic_delivers_and_the_standby_takes_over(mic_server: MicServer, tmp_path: Path) -> None:
    standby = sharing(mic_server, tmp_path / "second")
    emulator = await KubeEmulator("k0", tokens={CLUSTER_TOKEN: TokenPolicy.allow_all()}).start()
    recipient = await WebhookRecipient().start()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        await mic_server.start()
        async with httpx.AsyncClient(base_url=mic_server.url, headers=headers, timeout=10.0) as http:
            body = {
                "name": "k0",
                "connection": {"type": "kubeconfig", "kubeconfig": emulator.kubeconfig_yaml()},
            }
            assert (await http.post("/v1/clusters", json=body)).status_code == 201
            subscription = {
                "name": "rec",
                "filter": {"resources": ["configmaps"]},
                "sink": {"url": recipient.url},
            }
            assert (await http.post("/v1/subscriptions", json=subscription)).status_code == 201

        await standby.start(until="/healthz")
        async with httpx.AsyncClient(base_url=standby.url, headers=headers, timeout=10.0) as waiting:
            ready = await waiting.get("/readyz")
            assert (ready.status_code, ready.json()) == (503, {"status": "standby"})
            refused = await waiting.get("/v1/clusters")
            assert refused.status_code == 503
            assert "standby" in refused.json()["detail"]
            metrics = await waiting.get("/metrics")
            assert "mic_delivery_lease_held 0.0" in metrics.text

        def delivered() -> Counter[str]:
            return Counter(e["name"] for e in recipient.events() if e["type"].endswith(".added"))

        for i in range(20):
            emulator.create(configmap(f"before-{i}"))
        await eventually(lambda: _true(sum(delivered().values()) >= 20), what="the first MIC delivering")
        await asyncio.sleep(LEASE_SECONDS)  # time for a wrongly active standby to send its copies
        assert all(count == 1 for count in delivered().values()), "both MICs delivered"
        assert emulator.open_watches == 1, "the standby watches the cluster too"

        # A clean stop releases the lease: the standby takes over at once.
        assert await mic_server.terminate() == -signal.SIGTERM  # uvicorn re-raises it once stopped
        assert "released by" in mic_server.log.read_text()
        await _ready(standby, timeout=LEASE_SECONDS * 2)
        emulator.create(configmap("after-stop"))
        await eventually(lambda: _true(delivered()["after-stop"] == 1), what="the new holder delivering")

        # kill -9 of the holder: the other MIC, started again, takes over without waiting.
        assert await standby.kill() == -signal.SIGKILL
        emulator.create(configmap("while-down"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await mic_server.start()
        assert loop.time() - started < LEASE_SECONDS * 5
        await eventually(lambda: _true(delivered()["while-down"] == 1), what="delivery after kill -9")

        # A frozen holder loses the lease to the standby, and exits when it wakes up.
        await standby.start(until="/healthz")
        assert mic_server.process is not None
        mic_server.process.send_signal(signal.SIGSTOP)
        try:
            await _ready(standby, timeout=LEASE_SECONDS * 4)
        finally:
            mic_server.process.send_signal(signal.SIGCONT)
        assert await asyncio.wait_for(mic_server.process.wait(), timeout=LEASE_SECONDS * 3) == 3
        assert "taken over by another MIC" in mic_server.log.read_text()
        emulator.create(configmap("after-freeze"))
        await eventually(lambda: _true(delivered()["after-freeze"] >= 1), what="delivery after a freeze")
        assert sum(delivered().values()) == 23
    finally:
        await standby.kill()
        await recipient.stop()
        await emulator.stop()


async def _true(value: bool) -> bool:
    return value


async def _ready(server: MicServer, *, timeout: float) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as http:

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await eventually(ready, timeout=timeout, what=f"{server.url} taking over")
