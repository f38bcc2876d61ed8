"""What a token, a viewer's included, can make MIC watch: bounded and released.

- a tail names at most `MAX_TAIL_NAMESPACES` namespaces (each one is a watch per cluster);
- MIC serves at most `max_event_tails` tails at once;
- a cache a query started for itself is released once no query has used it for a while.

Tails are served by uvicorn on 127.0.0.1 (ASGITransport buffers a whole response, so it cannot
show a stream that never ends); the emulator counts the watches MIC really opened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import uvicorn
from mic_api_harness import ADMIN_TOKEN, VIEWER_TOKEN, Api, kubeconfig_connection, run_app, wait_until

from mic.api.app import create_app
from mic.api.routes import events as events_route
from mic.service.settings import ServiceSettings
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


@pytest.fixture
async def served_url(settings: ServiceSettings) -> AsyncIterator[tuple[str, Any]]:
    """The app (at most 2 tails at once) served by uvicorn: its URL and the app."""
    app = create_app(dataclasses.replace(settings, max_event_tails=2))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started, 10.0, lambda: "uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10.0)
        sock.close()


def client(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10.0)
    )


def watched(api: Api, cluster: str) -> list[str]:
    return [r.resource for r in api.service.hub.status(cluster).resources]


async def test_a_tail_naming_too_many_namespaces_is_refused_before_any_watch(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    await api.add_cluster("eu-1", kube_emulator, resources=["configmaps"])
    await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")
    await kube_emulator.wait_for_watches(1, "configmaps")  # listed is not yet watching
    before = kube_emulator.open_watches
    limit = events_route.MAX_TAIL_NAMESPACES
    async with api.as_token(VIEWER_TOKEN) as viewer:
        listed = ",".join(f"ns{i}" for i in range(300))
        response = await viewer.get("/v1/events", params={"resource": "configmaps", "namespace": listed})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert f"300 namespaces named, a tail may name at most {limit}" in detail
        assert "tail all namespaces" in detail
        # Repeated parameters count the same way, duplicates once.
        repeated = httpx.QueryParams(
            [("resource", "configmaps"), *(("namespace", f"ns{i % (limit + 1)}") for i in range(99))]
        )
        response = await viewer.get("/v1/events", params=repeated)
        assert response.status_code == 422, response.text
    assert kube_emulator.open_watches == before
    assert sum(len(s) for s in api.service.hub._streams.values()) == 0


async def test_concurrent_tails_are_capped_and_a_closed_one_frees_its_slot(
    served_url: tuple[str, Any], kube_emulator: KubeEmulator
) -> None:
    url, app = served_url
    async with client(url, ADMIN_TOKEN) as admin:
        body = {"name": "eu-1", "connection": kubeconfig_connection(kube_emulator)}
        assert (await admin.post("/v1/clusters", json=body)).status_code == 201
    params = {"resource": "configmaps", "namespace": "a,b,c"}
    async with AsyncExitStack() as tails, client(url, VIEWER_TOKEN) as viewer:
        for _ in range(2):
            response = await tails.enter_async_context(viewer.stream("GET", "/v1/events", params=params))
            assert response.status_code == 200
        await kube_emulator.wait_for_watches(3, "configmaps")  # one informer, one watch per namespace
        opened = kube_emulator.open_watches

        refused = await viewer.get("/v1/events", params={"resource": "pods"})
        assert refused.status_code == 503, refused.text
        assert "already serves 2 live tails" in refused.json()["detail"]
        assert refused.headers["Retry-After"] == str(events_route.TAILS_RETRY_AFTER)
        # Refused before anything is watched (the slot is taken first): exact right away.
        assert kube_emulator.open_watches == opened

    # Both clients gone: their slots are free again.
    hub = app.state.service.hub
    await wait_until(lambda: events_route.tail_slots(hub).in_use() == 0, 5.0, lambda: "slots not freed")
    async with (
        client(url, VIEWER_TOKEN) as viewer,
        viewer.stream("GET", "/v1/events", params={"resource": "pods"}) as response,
    ):
        assert response.status_code == 200


@pytest.fixture
async def quick_idle_api(settings: ServiceSettings) -> AsyncIterator[Api]:
    async with run_app(dataclasses.replace(settings, cache_idle_seconds=0.5)) as running:
        yield running


async def test_caches_started_by_viewer_queries_are_released_when_idle(
    quick_idle_api: Api, kube_emulator: KubeEmulator
) -> None:
    api = quick_idle_api
    await api.add_cluster("eu-1", kube_emulator, resources=["configmaps"])
    await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")
    assert watched(api, "eu-1") == ["configmaps"]
    async with api.as_token(VIEWER_TOKEN) as viewer:
        for resource in ["pods", "secrets", "services"]:
            response = await viewer.get(f"/v1/resources/{resource}")
            assert response.status_code == 200, response.text
            assert response.json()["errors"] == {}
        response = await viewer.get("/v1/clusters/eu-1/resources/endpoints")
        assert response.status_code == 200, response.text
        assert sorted(watched(api, "eu-1")) == ["configmaps", "endpoints", "pods", "secrets", "services"]

        # A cache queries keep using stays; the unused ones go, the configured one stays.
        for _ in range(12):
            assert (await viewer.get("/v1/resources/pods")).status_code == 200
            await asyncio.sleep(0.1)
        assert "pods" in watched(api, "eu-1")
        await wait_until(
            lambda: sorted(watched(api, "eu-1")) == ["configmaps"],
            5.0,
            lambda: f"on-demand caches not released: {watched(api, 'eu-1')}",
        )
        await wait_until(lambda: kube_emulator.open_watches == 1, 5.0, lambda: "watches still open")

        # Released is not broken: the next query starts the cache again.
        kube_emulator.create(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}}
        )
        again = (await viewer.get("/v1/clusters/eu-1/resources/services")).json()
        assert [item["metadata"]["name"] for item in again["items"]] == ["web"]


async def test_an_idle_on_demand_cache_that_a_tail_also_uses_keeps_serving_the_tail(
    settings: ServiceSettings, kube_emulator: KubeEmulator
) -> None:
    """Releasing drops only the query's own watch: the informer goes on for its other users."""
    async with run_app(dataclasses.replace(settings, cache_idle_seconds=0.3)) as api:
        await api.add_cluster("eu-1", kube_emulator)
        assert (await api.get("/v1/clusters/eu-1/resources/configmaps")).status_code == 200
        stream = await api.service.hub.events("configmaps", clusters=["eu-1"])  # as a tail does
        async with stream:
            applied = api.service.supervisor._applied["eu-1"]
            await wait_until(
                lambda: applied.on_demand == {}, 5.0, lambda: "the query's cache was not released"
            )
            assert watched(api, "eu-1") == ["configmaps"]
            kube_emulator.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
            )
            async with asyncio.timeout(5.0):
                event = await anext(aiter(stream))
            assert event.key == "default/x"
        await wait_until(lambda: watched(api, "eu-1") == [], 5.0, lambda: "the tail's watch not released")
