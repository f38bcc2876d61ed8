"""The README's "From zero to a webhook" walkthrough, step by step as a user types it.

Two `mic testing cluster` processes (TLS, a token, demo content), `mic serve`, and
`examples/webhook_receiver.py` checking signatures run as subprocesses; the clusters and the
subscription are registered with the `mic` command; objects are changed through the emulated
clusters' Kubernetes API (what `kubectl` does in the README). The recipient must print the
current Ingresses of both clusters, then each change, all with valid signatures.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from mic_process import MicServer, _free_port, _mic_command, eventually, mic

pytestmark = pytest.mark.e2e

RECEIVER = Path(__file__).parents[2] / "examples" / "webhook_receiver.py"
CLUSTER_TOKEN = "quickstart-cluster-token"


class Processes:
    """Subprocesses whose output goes to files, stopped (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[asyncio.subprocess.Process] = []

    async def start(self, name: str, *args: str) -> Path:
        out = self.workdir / f"{name}.out"
        with out.open("w") as sink:
            process = await asyncio.create_subprocess_exec(
                *args, cwd=self.workdir, stdout=sink, stderr=asyncio.subprocess.STDOUT
            )
        self.running.append(process)
        return out

    async def stop(self) -> None:
        for process in self.running:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        await started.stop()


def _api(kubeconfig: Path, workdir: Path) -> httpx.AsyncClient:
    """An HTTP client for an emulated cluster, from the kubeconfig it wrote (as kubectl reads it)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = workdir / f"{kubeconfig.stem}-ca.pem"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    token = config["users"][0]["user"]["token"]
    return httpx.AsyncClient(
        base_url=cluster["server"],
        verify=ssl.create_default_context(cafile=str(ca)),
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_two_clusters_to_one_webhook_as_the_readme_says(
    tmp_path: Path, mic_server: MicServer, processes: Processes
) -> None:
    # 1. Two emulated clusters (`mic testing cluster ... --tls --token ... --seed-demo`).
    kubeconfigs = {}
    for name in ("eu-1", "us-1"):
        kubeconfig = tmp_path / f"{name}.kubeconfig"
        out = await processes.start(
            name, *_mic_command(), "testing", "cluster", "--name", name, "--port", "0", "--tls",
            "--token", CLUSTER_TOKEN, "--seed-demo", "--kubeconfig-out", str(kubeconfig),
        )  # fmt: skip

        async def written(kubeconfig: Path = kubeconfig, out: Path = out) -> bool:
            return kubeconfig.exists() and "press Ctrl-C" in out.read_text()

        await eventually(written, timeout=20, what=f"mic testing cluster {name}")
        kubeconfigs[name] = kubeconfig

    # 2. MIC, with an admin token chosen by the operator.
    await mic_server.start()

    # 3. A webhook recipient that checks signatures with a secret made beforehand.
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() + "\n")
    port = _free_port()
    received = await processes.start(
        "receiver", sys.executable, str(RECEIVER), "--port", str(port), "--secret-file", str(secret_file)
    )

    async def listening() -> bool:
        return "listening on" in received.read_text()

    await eventually(listening, timeout=20, what="examples/webhook_receiver.py")

    # 4. Register both clusters and subscribe the recipient to their Ingresses.
    for name, kubeconfig in kubeconfigs.items():
        result = await mic(
            mic_server, "clusters", "add", name, "--kubeconfig", str(kubeconfig),
            "--label", "env=prod", "--resource", "ingresses",
        )  # fmt: skip
        assert result.code == 0, result.stderr
    result = await mic(
        mic_server, "subscriptions", "add", "ingress-hook", "--url", f"http://127.0.0.1:{port}/hook",
        "--resource", "ingresses", "--cluster-selector", "env=prod", "--signing-secret", str(secret_file),
    )  # fmt: skip
    assert result.code == 0, result.stderr

    def lines() -> list[list[str]]:
        return [line.split() for line in received.read_text().splitlines()[1:]]

    async def initial_state() -> bool:
        got = {(words[0], words[1], words[2]) for words in lines() if len(words) == 3}
        return {
            (cluster, "io.mic.resource.added", subject)
            for cluster in ("eu-1", "us-1")
            for subject in ("shop/shop", "blog/blog")
        } <= got

    await eventually(initial_state, what="the current Ingresses of both clusters at the recipient")

    # 5. Change an Ingress in each cluster (the README does it with kubectl).
    async with _api(kubeconfigs["eu-1"], tmp_path) as eu, _api(kubeconfigs["us-1"], tmp_path) as us:
        patched = await eu.patch(
            "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/shop",
            json={"metadata": {"annotations": {"demo": "1"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        deleted = await us.delete("/apis/networking.k8s.io/v1/namespaces/blog/ingresses/blog")
        assert deleted.status_code == 200, deleted.text

    async def changes() -> bool:
        got = [words for words in lines() if len(words) == 3]
        return ["eu-1", "io.mic.resource.modified", "shop/shop"] in got and [
            "us-1",
            "io.mic.resource.deleted",
            "blog/blog",
        ] in got

    await eventually(changes, what="both clusters' changes at the recipient")
    assert not [line for line in received.read_text().splitlines() if line.startswith("rejected")]

    status = (await mic(mic_server, "subscriptions", "status", "ingress-hook", "-o", "json")).json()
    assert status["deliveredTotal"] >= 6
    assert status["dead"] == 0
    ping = await mic(mic_server, "subscriptions", "test", "ingress-hook")
    assert ping.code == 0, ping.stderr + ping.stdout
