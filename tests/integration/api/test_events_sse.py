"""`GET /v1/events`: the live tail over real HTTP (uvicorn on 127.0.0.1), not through ASGITransport,
which buffers a whole response and so cannot show a stream that never ends."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from mic_api_harness import ADMIN_TOKEN, VIEWER_TOKEN, Api, kubeconfig_connection, wait_until

from mic.api.app import create_app
from mic.api.routes import events as events_route
from mic.service.settings import ServiceSettings
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


class Served:
    """The app served by uvicorn, plus a client for it."""

    def __init__(self, url: str, server: uvicorn.Server, app: Any) -> None:
        self.url = url
        self.server = server
        self.app = app

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=httpx.Timeout(10.0))

    @property
    def api(self) -> Api:
        return Api(self.app, self.client())


@pytest.fixture
async def served(settings: ServiceSettings) -> AsyncIterator[Served]:
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started, 10.0, lambda: "uvicorn did not start")
    try:
        yield Served(f"http://127.0.0.1:{port}", server, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10.0)
        sock.close()


async def add_cluster(served: Served, name: str, emulator: KubeEmulator) -> None:
    async with served.client() as client:
        response = await client.post(
            "/v1/clusters", json={"name": name, "connection": kubeconfig_connection(emulator)}
        )
        assert response.status_code == 201, response.text


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "data": {"k": "v"},
    }


class SseReader:
    """Parses a text/event-stream into messages ({field: value}) and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next_message(self, timeout: float = 10.0) -> dict[str, str]:
        message: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line == "":
                    if message:
                        return message
                else:
                    field, _, value = line.partition(":")
                    message[field] = value.removeprefix(" ")
        raise AssertionError("the stream ended")


def stream_count(served: Served) -> int:
    hub = served.app.state.service.hub
    return sum(len(streams) for streams in hub._streams.values())


def synced(served: Served, cluster: str, resource: str) -> bool:
    status = served.app.state.service.hub.status(cluster)
    return any(r.resource == resource and r.synced for r in status.resources)


def informer_scopes(served: Served, cluster: str) -> list[tuple[str, str]]:
    status = served.app.state.service.hub.status(cluster)
    return [(r.resource, r.label_selector) for r in status.resources]


async def test_stream_delivers_a_created_object_and_releases_the_watch_on_disconnect(
    served: Served, kube_emulator: KubeEmulator
) -> None:
    await add_cluster(served, "eu-1", kube_emulator)
    params = {"cluster": "eu-1", "resource": "cm", "labelSelector": "tail=me"}
    async with served.client() as client, client.stream("GET", "/v1/events", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        await wait_until(lambda: ("configmaps", "tail=me") in informer_scopes(served, "eu-1"))
        kube_emulator.create(configmap("web", tail="me"))
        message = await reader.next_message()
        assert message["event"] == "ADDED"
        body = json.loads(message["data"])
        assert message["id"] == body["id"]
        assert body["specversion"] == "1.0"
        assert body["type"] == "io.mic.resource.added"
        assert body["subject"] == "default/web"
        assert body["cluster"] == "eu-1"
        assert body["data"]["object"]["metadata"]["name"] == "web"
        assert "stream open" in reader.comments
        assert stream_count(served) == 1

    # The client is gone: the hub stream is closed and the watch it declared is released.
    await wait_until(lambda: stream_count(served) == 0, 5.0, lambda: "the hub stream was not closed")
    await wait_until(
        lambda: ("configmaps", "tail=me") not in informer_scopes(served, "eu-1"),
        5.0,
        lambda: f"the watch was not released: {informer_scopes(served, 'eu-1')}",
    )


async def test_existing_objects_come_first_then_changes_with_types_filter(
    served: Served, kube_emulator: KubeEmulator
) -> None:
    kube_emulator.create(configmap("old"))
    await add_cluster(served, "eu-1", kube_emulator)
    async with served.client() as client:
        async with client.stream("GET", "/v1/events", params={"resource": "configmaps"}) as response:
            reader = SseReader(response)
            first = await reader.next_message()
            assert first["event"] == "ADDED"
            assert json.loads(first["data"])["subject"] == "default/old"
        params = {"resource": "configmaps", "types": "deleted"}
        async with client.stream("GET", "/v1/events", params=params) as response:
            reader = SseReader(response)
            await wait_until(lambda: synced(served, "eu-1", "configmaps"))  # "old" is known, so deletable
            kube_emulator.delete("configmaps", "old", namespace="default")
            gone = await reader.next_message()
            assert gone["event"] == "DELETED"
            assert json.loads(gone["data"])["subject"] == "default/old"


async def test_a_cluster_selector_tails_the_clusters_whose_labels_match(
    served: Served, kube_emulators: Any
) -> None:
    prod: KubeEmulator = await kube_emulators(name="prod")
    dev: KubeEmulator = await kube_emulators(name="dev")
    prod.create(configmap("in-prod"))
    dev.create(configmap("in-dev"))
    prod.register_crd("example.com", "v1", "Widget", "widgets")
    async with served.client() as client:
        for name, emulator, env in (("prod-1", prod, "prod"), ("dev-1", dev, "dev")):
            connection = kubeconfig_connection(emulator)
            body = {"name": name, "connection": connection, "labels": {"env": env}}
            assert (await client.post("/v1/clusters", json=body)).status_code == 201
        params = {"resource": "configmaps", "clusterSelector": "env=prod"}
        async with client.stream("GET", "/v1/events", params=params) as response:
            reader = SseReader(response)
            first = await reader.next_message()
            assert json.loads(first["data"])["subject"] == "default/in-prod"
            await wait_until(lambda: synced(served, "dev-1", "configmaps"))
            dev.create(configmap("later-in-dev"))
            prod.create(configmap("later-in-prod"))
            second = await reader.next_message()
            assert (second["event"], json.loads(second["data"])["subject"]) == (
                "ADDED",
                "default/later-in-prod",
            )
        bad = await client.get("/v1/events", params={"resource": "configmaps", "clusterSelector": "env in"})
        assert bad.status_code == 422, bad.text
        # A resource only the selected clusters serve (a CRD installed in prod only) is no 404.
        params = {"resource": "widgets.example.com", "clusterSelector": "env=prod"}
        async with client.stream("GET", "/v1/events", params=params) as response:
            assert response.status_code == 200
        everywhere = await client.get("/v1/events", params={"resource": "widgets.example.com"})
        assert everywhere.status_code == 404, everywhere.text


async def test_secret_data_is_redacted(served: Served, kube_emulator: KubeEmulator) -> None:
    kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    await add_cluster(served, "eu-1", kube_emulator)
    async with (
        served.client(VIEWER_TOKEN) as client,
        client.stream("GET", "/v1/events", params={"resource": "secrets", "cluster": "eu-1"}) as response,
    ):
        message = await SseReader(response).next_message()
        assert "aHVudGVyMg==" not in message["data"]
        assert json.loads(message["data"])["data"]["object"]["data"] == {"password": "<redacted>"}


async def test_heartbeat_comments_while_idle(
    served: Served, kube_emulator: KubeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_route, "HEARTBEAT_SECONDS", 0.05)
    await add_cluster(served, "eu-1", kube_emulator)
    async with (
        served.client() as client,
        client.stream("GET", "/v1/events", params={"resource": "configmaps"}) as response,
    ):
        reader = SseReader(response)
        with pytest.raises(TimeoutError):
            await reader.next_message(timeout=0.5)
        assert "heartbeat" in reader.comments


async def test_errors_are_plain_json_before_any_stream(served: Served, kube_emulator: KubeEmulator) -> None:
    await add_cluster(served, "eu-1", kube_emulator)
    async with served.client() as client:
        missing = await client.get("/v1/events")
        assert missing.status_code == 422
        assert missing.json() == {"detail": "query.resource: Field required"}
        unknown_cluster = await client.get("/v1/events", params={"resource": "pods", "cluster": "nope"})
        assert unknown_cluster.status_code == 404
        assert unknown_cluster.json() == {"detail": "cluster 'nope' not found"}
        bogus = await client.get("/v1/events", params={"resource": "bogons", "cluster": "eu-1"})
        assert bogus.status_code == 404
        assert "bogons" in bogus.json()["detail"]
        bad_type = await client.get("/v1/events", params={"resource": "configmaps", "types": "CREATED"})
        assert bad_type.status_code == 422
        assert "ADDED, MODIFIED, DELETED" in bad_type.json()["detail"]
        bad_selector = await client.get(
            "/v1/events", params={"resource": "configmaps", "labelSelector": "a in"}
        )
        assert bad_selector.status_code == 422
    async with served.client(None) as anonymous:
        assert (await anonymous.get("/v1/events", params={"resource": "configmaps"})).status_code == 401
    assert stream_count(served) == 0


async def test_a_tail_that_could_not_keep_up_ends_with_an_error_event() -> None:
    """Its stream was closed so that the informers (which feed the subscriptions too) go on:
    the client gets what was queued, then an `error` event saying why, then the end."""
    from mic.events import Event, EventType
    from mic.hub import EventStream, WatchSpec

    stream = EventStream(WatchSpec("configmaps"), max_batches=1, max_wait=0.01)
    first = Event(EventType.ADDED, "c1", "", "v1", "ConfigMap", "configmaps", "default", "a", "u1", "1", {})
    await stream.put([first])
    await stream.put([first])  # no room for 0.01 s: the stream is closed
    chunks = [chunk async for chunk in events_route._stream_body(stream, heartbeat=5.0)]
    assert chunks[0] == b": stream open\n\n"
    assert chunks[1].startswith(b"id: ")
    assert b"event: ADDED" in chunks[1]
    kind, data = chunks[2].decode().strip().split("\n")
    assert kind == "event: error"
    assert "fell 1 batches behind" in json.loads(data.removeprefix("data: "))["message"]
    assert len(chunks) == 3
