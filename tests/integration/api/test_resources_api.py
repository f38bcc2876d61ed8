"""Resource queries from the caches: one cluster, one object, across clusters."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from mic_api_harness import Api

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def ingress(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"rules": [{"host": f"{name}.example.com"}]},
    }


def seed(emulator: KubeEmulator) -> None:
    for namespace in ["shop", "blog"]:
        emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    emulator.create(ingress("web", "shop", app="web", tier="front"))
    emulator.create(ingress("api", "shop", app="api", tier="back"))
    emulator.create(ingress("cms", "blog", app="cms", tier="front"))


def names(body: dict[str, Any]) -> list[str]:
    return [f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in body["items"]]


async def test_list_filter_and_page_one_cluster(api: Api, kube_emulator: KubeEmulator) -> None:
    seed(kube_emulator)
    await api.add_cluster("eu-1", kube_emulator, resources=["ingresses"])
    base = "/v1/clusters/eu-1/resources"

    listed = (await api.get(f"{base}/ingresses")).json()
    assert listed["kind"] == "List"
    assert listed["apiVersion"] == "v1"
    assert listed["metadata"] == {"continue": None}
    assert names(listed) == ["blog/cms", "shop/api", "shop/web"]
    assert "managedFields" not in listed["items"][0]["metadata"]

    for alias in [
        "ing",
        "ingress",
        "Ingress",
        "ingresses.networking.k8s.io",
        "ingresses.v1.networking.k8s.io",
    ]:
        assert names((await api.get(f"{base}/{alias}")).json()) == names(listed), alias

    assert names((await api.get(f"{base}/ing", params={"namespace": "shop"})).json()) == [
        "shop/api",
        "shop/web",
    ]
    front = await api.get(f"{base}/ing", params={"labelSelector": "tier=front"})
    assert names(front.json()) == ["blog/cms", "shop/web"]
    both = await api.get(f"{base}/ing", params={"labelSelector": "tier=front", "namespace": "shop"})
    assert names(both.json()) == ["shop/web"]

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        page = (await api.get(f"{base}/ing", params=params)).json()
        pages += 1
        seen += names(page)
        if not page["metadata"]["continue"]:
            break
        params["continue"] = page["metadata"]["continue"]
    assert pages == 2
    assert seen == names(listed)
    shop_page = (await api.get(f"{base}/ing", params={"namespace": "shop", "limit": 1})).json()
    assert names(shop_page) == ["shop/api"]
    rest = await api.get(
        f"{base}/ing", params={"namespace": "shop", "continue": shop_page["metadata"]["continue"]}
    )
    assert names(rest.json()) == ["shop/web"]


async def test_get_one_object(api: Api, kube_emulator: KubeEmulator) -> None:
    seed(kube_emulator)
    await api.add_cluster("eu-1", kube_emulator)
    base = "/v1/clusters/eu-1/resources"
    web = await api.get(f"{base}/ingresses/shop/web")
    assert web.status_code == 200
    assert web.json()["spec"]["rules"][0]["host"] == "web.example.com"
    namespace = await api.get(f"{base}/namespaces/shop")
    assert namespace.status_code == 200
    assert namespace.json()["metadata"]["name"] == "shop"

    missing = await api.get(f"{base}/ingresses/shop/nope")
    assert missing.status_code == 404
    assert (
        missing.json()["detail"]
        == "ingresses.networking.k8s.io 'nope' not found in namespace 'shop' in cluster 'eu-1'"
    )
    wrong_form = await api.get(f"{base}/ingresses/web")
    assert wrong_form.status_code == 404
    assert "is namespaced" in wrong_form.json()["detail"]
    cluster_scoped = await api.get(f"{base}/namespaces/default/shop")
    assert cluster_scoped.status_code == 404
    assert "is cluster-scoped" in cluster_scoped.json()["detail"]


async def test_query_errors(api: Api, kube_emulator: KubeEmulator) -> None:
    for group in ["a.example.com", "b.example.com"]:
        kube_emulator.register_crd(group, "v1", "Widget", "widgets")
    await api.add_cluster("eu-1", kube_emulator)
    base = "/v1/clusters/eu-1/resources"

    unknown = await api.get(f"{base}/ingresss")
    assert unknown.status_code == 404
    assert "did you mean" in unknown.json()["detail"]
    assert "ingresses" in unknown.json()["detail"]
    ambiguous = await api.get(f"{base}/widgets")
    assert ambiguous.status_code == 422
    assert "widgets.a.example.com" in ambiguous.json()["detail"]
    assert (await api.get(f"{base}/widgets.a.example.com")).status_code == 200
    selector = await api.get(f"{base}/ingresses", params={"labelSelector": "app in (a"})
    assert selector.status_code == 422
    assert "selector" in selector.json()["detail"]
    for token in ["!!!", "bm90IGpzb24", "WzFd"]:
        bad = await api.get(f"{base}/ingresses", params={"continue": token})
        assert bad.status_code == 422, token
        assert "continue token" in bad.json()["detail"]
    assert (await api.get(f"{base}/ingresses", params={"limit": 0})).status_code == 422
    assert (await api.get(f"{base}/ingresses", params={"limit": "x"})).status_code == 422
    no_cluster = await api.get("/v1/clusters/nope/resources/ingresses")
    assert no_cluster.status_code == 404
    assert no_cluster.json()["detail"] == "no cluster named 'nope'"


async def test_a_resource_queried_once_stays_cached(api: Api, kube_emulator: KubeEmulator) -> None:
    seed(kube_emulator)
    created = await api.add_cluster("eu-1", kube_emulator)
    assert created["resources"] == []
    first = await api.get("/v1/clusters/eu-1/resources/ingresses")
    assert len(first.json()["items"]) == 3
    kube_emulator.create(ingress("new", "blog"))

    async def seen_new() -> bool:
        body = (await api.get("/v1/clusters/eu-1/resources/ing", params={"namespace": "blog"})).json()
        return "blog/new" in names(body)

    from mic_api_harness import wait_until

    await wait_until(seen_new, message=lambda: "the on-demand cache never saw the new ingress")
    status = (await api.get("/v1/clusters/eu-1")).json()["status"]
    assert [r["resource"] for r in status["resources"]] == ["ingresses.networking.k8s.io"]


async def test_unreachable_cluster_query_is_502(api: Api) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    body = {"name": "gone", "connection": {"type": "token", "server": f"http://127.0.0.1:{port}"}}
    assert (await api.post("/v1/clusters", json=body)).status_code == 201
    response = await api.get("/v1/clusters/gone/resources/ingresses")
    assert response.status_code == 502
    assert response.json()["detail"]


async def test_across_clusters(api: Api, kube_emulators: Any) -> None:
    eu = await kube_emulators(name="eu")
    us = await kube_emulators(name="us")
    seed(eu)
    us.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    us.create(ingress("web", "shop", app="web", tier="front"))
    await api.add_cluster("eu-1", eu, labels={"region": "eu"}, resources=["ingresses"])
    await api.add_cluster("us-1", us, labels={"region": "us"})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = {
        "name": "down",
        "labels": {"region": "eu"},
        "connection": {"type": "token", "server": f"http://127.0.0.1:{port}"},
    }
    assert (await api.post("/v1/clusters", json=down)).status_code == 201

    def pairs(body: dict[str, Any]) -> list[str]:
        return [
            f"{i['cluster']}:{i['object']['metadata']['namespace']}/{i['object']['metadata']['name']}"
            for i in body["items"]
        ]

    everything = (await api.get("/v1/resources/ingresses")).json()
    assert pairs(everything) == ["eu-1:blog/cms", "eu-1:shop/api", "eu-1:shop/web", "us-1:shop/web"]
    assert list(everything["errors"]) == ["down"]

    chosen = (
        await api.get("/v1/resources/ing", params={"clusters": "us-1,nope", "namespace": "shop"})
    ).json()
    assert pairs(chosen) == ["us-1:shop/web"]
    assert chosen["errors"] == {"nope": "no cluster named 'nope'"}

    front_eu = await api.get(
        "/v1/resources/ing", params={"clusterSelector": "region=eu", "labelSelector": "tier=front"}
    )
    assert pairs(front_eu.json()) == ["eu-1:blog/cms", "eu-1:shop/web"]
    assert list(front_eu.json()["errors"]) == ["down"]

    assert (await api.get("/v1/resources/ing", params={"clusterSelector": "region in ("})).status_code == 422
    unknown = (await api.get("/v1/resources/ingresss", params={"clusters": "eu-1"})).json()
    assert unknown["items"] == []
    assert "did you mean" in unknown["errors"]["eu-1"]


async def test_a_cluster_gone_quiet_answers_from_its_cache_and_says_so(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    seed(kube_emulator)
    await api.add_cluster("eu-1", kube_emulator)
    fresh = (await api.get("/v1/resources/ingresses")).json()
    assert len(fresh["items"]) == 3
    assert fresh["stale"] == {}
    await kube_emulator.stop()

    async def stale() -> bool:
        return "eu-1" in (await api.get("/v1/resources/ingresses")).json()["stale"]

    from mic_api_harness import wait_until

    await wait_until(stale, timeout=10, message=lambda: "the list never said eu-1's objects are stale")
    body = (await api.get("/v1/resources/ingresses")).json()
    assert len(body["items"]) == 3  # as last seen
    assert body["stale"]["eu-1"].startswith("unreachable: ")
    assert body["stale"]["eu-1"].endswith("; objects as last seen")
    assert body["errors"] == {}
