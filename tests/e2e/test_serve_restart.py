"""The issue's acceptance check: `mic serve` as a user runs it, killed and started again.

Two emulated clusters run in this test's event loop; `mic serve` runs as a subprocess on a
temporary SQLite file; the clusters are registered and queried through the `mic` command (and
plain HTTP), then the server is SIGKILLed — no shutdown hook runs, so only what reached the
store survives — and started again on the same file. The clusters must come back by
themselves, watching: an object created while MIC was down and one created after the restart
both show up in queries.

The emulators serve from this process's event loop, so every `mic` command and HTTP call here
is awaited (asyncio subprocesses, httpx.AsyncClient); a blocking call would freeze the
clusters MIC is talking to. Waiting is always polling a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mic_process import (
    ADMIN_TOKEN,
    CLUSTER_TOKEN,
    VIEWER_TOKEN,
    MicServer,
    eventually,
    mic,
)

from mic.testing import KubeEmulator, TokenPolicy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def emulators() -> AsyncIterator[tuple[KubeEmulator, KubeEmulator]]:
    tokens = {CLUSTER_TOKEN: TokenPolicy.allow_all()}
    async with KubeEmulator("east", tokens=tokens) as east, KubeEmulator("west", tokens=tokens) as west:
        yield east, west


def ingress(name: str, namespace: str = "shop", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"rules": [{"host": f"{name}.example"}]},
    }


def seed(emu: KubeEmulator, *names: str) -> None:
    emu.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    for name in names:
        emu.create(ingress(name, app=name))


def ingress_names(answer: dict[str, Any]) -> set[tuple[str, str]]:
    """(cluster, name) pairs of a cross-cluster answer."""
    return {(item["cluster"], item["object"]["metadata"]["name"]) for item in answer["items"]}


async def clusters_watching(http: httpx.AsyncClient, names: set[str]) -> dict[str, Any] | None:
    """The clusters, once each named one is ready with every watched resource synced."""
    response = await http.get("/v1/clusters")
    if response.status_code != 200:
        return None
    clusters = {c["name"]: c for c in response.json()["items"]}
    for name in names:
        status = clusters.get(name, {}).get("status", {})
        watched = status.get("resources") or []
        if status.get("state") != "ready" or not watched or not all(r["synced"] for r in watched):
            return None
    return clusters


async def test_clusters_survive_sigkill_and_keep_watching(
    emulators: tuple[KubeEmulator, KubeEmulator], mic_server: MicServer, tmp_path: Path
) -> None:
    east, west = emulators
    seed(east, "web", "api")
    seed(west, "web")
    kubeconfigs = {
        emu.name: emu.write_kubeconfig(tmp_path / f"{emu.name}.yaml", token=CLUSTER_TOKEN)
        for emu in emulators
    }

    await mic_server.start()

    def add(name: str, kubeconfig: Path) -> list[str]:
        return ["clusters", "add", name, "--kubeconfig", str(kubeconfig), "--label", f"region={name}",
                "--resource", "ingresses"]  # fmt: skip

    added = await asyncio.gather(*(mic(mic_server, *add(name, path)) for name, path in kubeconfigs.items()))
    for result, name in zip(added, kubeconfigs, strict=True):
        assert result.code == 0, result.stderr
        assert result.stdout.startswith(f"cluster '{name}' added")

    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    async with httpx.AsyncClient(base_url=mic_server.url, headers=headers, timeout=5.0) as http:
        clusters = await eventually(
            lambda: clusters_watching(http, {"east", "west"}), what="both clusters ready and synced"
        )
        assert clusters["east"]["labels"] == {"region": "east"}
        assert CLUSTER_TOKEN not in json.dumps(clusters), "a credential came back from GET /v1/clusters"

        # One cluster, through the CLI (viewer token: reading needs no admin rights) and over HTTP.
        query = ["resources", "get", "east", "ingresses", "-n", "shop", "-o", "json"]
        one = (await mic(mic_server, *query, token=VIEWER_TOKEN)).json()
        assert sorted(o["metadata"]["name"] for o in one["items"]) == ["api", "web"]
        web = await http.get("/v1/clusters/east/resources/ingresses/shop/web")
        assert web.status_code == 200
        assert web.json()["spec"]["rules"][0]["host"] == "web.example"

        # Across clusters, through the CLI (JSON and table) and over HTTP.
        across = (await mic(mic_server, "resources", "get", "-A", "ingresses", "-o", "json")).json()
        assert ingress_names(across) == {("east", "api"), ("east", "web"), ("west", "web")}
        assert across["errors"] == {}
        table = await mic(mic_server, "resources", "get", "--clusters", "west,east", "ingresses", "web")
        assert table.code == 0, table.stderr
        rows = [line.split()[:3] for line in table.stdout.splitlines()]
        assert rows == [["CLUSTER", "NAMESPACE", "NAME"], ["east", "shop", "web"], ["west", "shop", "web"]]
        by_http = await http.get(
            "/v1/resources/ingresses", params={"clusters": "west", "labelSelector": "app=web"}
        )
        assert ingress_names(by_http.json()) == {("west", "web")}

        # Kill it hard; change a cluster while MIC is down; start it again on the same file.
        assert await mic_server.kill() == -signal.SIGKILL
        west.create(ingress("late", app="late"))
        await mic_server.start()

        listed = await mic(mic_server, "clusters", "list", "-o", "json", token=VIEWER_TOKEN)
        assert {c["name"]: c["labels"] for c in listed.json()["items"]} == {
            "east": {"region": "east"},
            "west": {"region": "west"},
        }
        clusters = await eventually(
            lambda: clusters_watching(http, {"east", "west"}),
            what="both clusters watching again after restart",
        )
        assert {c["resources"][0] for c in clusters.values()} == {"ingresses"}

        async def late_seen() -> bool:
            answer = (await http.get("/v1/resources/ingresses")).json()
            return ("west", "late") in ingress_names(answer)

        await eventually(late_seen, what="the object created while MIC was down")

        # A change made after the restart reaches the cache through the restored watch.
        east.create(ingress("after", app="after"))
        east.delete("ingresses.networking.k8s.io", "api", namespace="shop")

        async def after_seen() -> bool:
            names = {
                o["metadata"]["name"]
                for o in (await http.get("/v1/clusters/east/resources/ingresses")).json()["items"]
            }
            return names == {"web", "after"}

        await eventually(after_seen, what="east's create and delete after the restart")
        got = (
            await mic(
                mic_server, "resources", "get", "east", "ingresses", "after", "-n", "shop", "-o", "json"
            )
        ).json()
        assert got["metadata"]["labels"] == {"app": "after"}

        table = await mic(mic_server, "clusters", "list")
        assert table.code == 0, table.stderr
        rows = [line.split()[:2] for line in table.stdout.splitlines()]
        assert rows == [["NAME", "STATE"], ["east", "ready"], ["west", "ready"]]

    log = mic_server.log.read_text()
    for secret in (ADMIN_TOKEN, VIEWER_TOKEN, CLUSTER_TOKEN):
        assert secret not in log, "mic serve logged a token"
