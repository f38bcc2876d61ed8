"""Delivery seen through the API: status, dead letters (list, paging, objects) and replay."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api, wait_until
from webhook_recipient import Recipient

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def configmap(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    }


def secret(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"password": "aHVudGVyMg=="},
    }


async def subscribe(api: Api, recipient: Recipient, resources: list[str], **extra: Any) -> None:
    document = {
        "name": "sub",
        "filter": {"resources": resources, "clusters": ["eu-1"]},
        "sink": {"url": recipient.url},
        "delivery": {"maxAttempts": 1, "initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.1},
        **extra,
    }
    response = await api.post("/v1/subscriptions", json=document)
    assert response.status_code == 201, response.text


async def watching(api: Api, resource: str) -> None:
    """Wait until the subscription's watch has listed, so a new object is a change, not initial state."""
    await api.wait_cluster(
        "eu-1", lambda c: any(r["resource"] == resource and r["synced"] for r in c["status"]["resources"])
    )


async def dead_letters(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/subscriptions/sub/dead-letters", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_dead(api: Api, count: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []

    async def enough() -> bool:
        nonlocal items
        items = (await dead_letters(api))["items"]
        return len(items) >= count

    await wait_until(enough, 10.0, lambda: f"dead letters: {items}")
    return items


async def test_refused_events_become_dead_letters_and_replay_delivers_them(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    recipient.status = 400  # permanent: straight to the dead letters
    await subscribe(api, recipient, ["configmaps"], initialState=False)
    await watching(api, "configmaps")
    kube_emulator.create(configmap("a"))

    (dead,) = await wait_dead(api, 1)
    assert dead["cluster"] == "eu-1"
    assert dead["resource"] == "configmaps"
    assert dead["namespace"] == "default"
    assert dead["name"] == "a"
    assert dead["type"] == "ADDED"
    assert isinstance(dead["attempts"], int)
    assert "400" in dead["lastError"]
    assert dead["eventId"]
    assert dead["resourceVersion"]
    assert dead["object"] is None
    with_object = (await dead_letters(api, include="object"))["items"][0]
    assert with_object["object"]["data"] == {"k": "v"}

    status = (await api.get("/v1/subscriptions/sub/status")).json()
    assert status["dead"] == 1
    assert status["lastError"]

    recipient.status = 200
    replayed = await api.post("/v1/subscriptions/sub/dead-letters/replay", json={"ids": [dead["id"]]})
    assert replayed.json() == {"replayed": 1, "superseded": 0, "notFound": []}
    await wait_until(lambda: any(r.body.get("subject") == "default/a" for r in recipient.received if r.raw))

    async def settled() -> bool:
        current = (await api.get("/v1/subscriptions/sub/status")).json()
        return bool(current["dead"] == 0 and current["deliveredTotal"] >= 1 and current["backlog"] == 0)

    await wait_until(settled, 10.0)
    assert (await dead_letters(api))["items"] == []
    metrics = (await api.get("/metrics")).text
    assert 'mic_deliveries_total{subscription="sub"} 1.0' in metrics
    assert 'mic_dead_letters_total{subscription="sub"} 1.0' in metrics
    assert 'mic_delivery_backlog{subscription="sub"} 0.0' in metrics
    assert 'mic_delivery_failed_attempts_total{subscription="sub"} 1.0' in metrics  # the 400
    assert 'mic_cluster_state{cluster="eu-1",state="ready"} 1.0' in metrics
    assert 'mic_cluster_state{cluster="eu-1",state="unreachable"} 0.0' in metrics


async def test_dead_letters_page_with_after_id_and_replay_all(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    recipient.status = 404
    await subscribe(api, recipient, ["configmaps"], initialState=False)
    await watching(api, "configmaps")
    for name in ("a", "b", "c"):
        kube_emulator.create(configmap(name))
    await wait_dead(api, 3)

    first = await dead_letters(api, limit=2)
    assert [d["name"] for d in first["items"]] == ["a", "b"]
    assert first["nextAfterId"] == first["items"][-1]["id"]
    rest = await dead_letters(api, limit=2, afterId=first["nextAfterId"])
    assert [d["name"] for d in rest["items"]] == ["c"]
    assert rest["nextAfterId"] is None

    recipient.status = 200
    assert (await api.post("/v1/subscriptions/sub/dead-letters/replay", json={})).json() == {
        "replayed": 3,
        "superseded": 0,
        "notFound": [],
    }
    await wait_until(lambda: len([r for r in recipient.received if r.raw]) >= 6, 10.0)


async def test_dead_letter_objects_never_show_secret_data(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    recipient.status = 400
    await subscribe(api, recipient, ["secrets"], initialState=False)
    await watching(api, "secrets")
    kube_emulator.create(secret("db"))
    await wait_dead(api, 1)
    shown = (await dead_letters(api, include="object"))["items"][0]["object"]
    assert shown["data"] == {"password": "<redacted>"}
    assert "aHVudGVyMg==" not in (await api.get("/v1/subscriptions/sub/dead-letters?include=object")).text


async def test_a_dead_letter_counts_its_attempts(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    recipient.status = 400
    await subscribe(api, recipient, ["configmaps"], initialState=False)
    await watching(api, "configmaps")
    kube_emulator.create(configmap("a"))
    (dead,) = await wait_dead(api, 1)
    assert dead["attempts"] == 1
