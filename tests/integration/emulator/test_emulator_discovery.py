"""Discovery documents and runtime CRDs, over HTTP."""

from typing import Any

import aiohttp

from mic.testing import KubeEmulator

CM = "/api/v1/namespaces/default/configmaps"


async def get_json(session: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with session.get(path) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


def by_name(resource_list: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resource_list["resources"]}


async def test_version_and_core_discovery(session: aiohttp.ClientSession) -> None:
    version = await get_json(session, "/version")
    assert version["major"] == "1"
    assert version["gitVersion"].startswith("v1.")
    api = await get_json(session, "/api")
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    core = await get_json(session, "/api/v1")
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    resources = by_name(core)
    expected = {
        "pods": ("Pod", ["po"]),
        "services": ("Service", ["svc"]),
        "endpoints": ("Endpoints", ["ep"]),
        "namespaces": ("Namespace", ["ns"]),
        "configmaps": ("ConfigMap", ["cm"]),
        "secrets": ("Secret", None),
    }
    for name, (kind, short) in expected.items():
        assert resources[name]["kind"] == kind
        assert resources[name].get("shortNames") == short
        assert "watch" in resources[name]["verbs"]
    assert resources["pods"]["namespaced"] is True
    assert resources["namespaces"]["namespaced"] is False
    assert resources["pods"]["singularName"] == "pod"
    assert resources["pods/status"]["verbs"] == ["get", "patch", "update"]


async def test_group_discovery(session: aiohttp.ClientSession) -> None:
    groups = await get_json(session, "/apis")
    assert groups["kind"] == "APIGroupList"
    names = {g["name"]: g for g in groups["groups"]}
    assert {"networking.k8s.io", "discovery.k8s.io", "apiextensions.k8s.io"} <= set(names)
    assert names["networking.k8s.io"]["preferredVersion"] == {
        "groupVersion": "networking.k8s.io/v1",
        "version": "v1",
    }
    group = await get_json(session, "/apis/networking.k8s.io")
    assert group["kind"] == "APIGroup"
    assert group["name"] == "networking.k8s.io"
    networking = by_name(await get_json(session, "/apis/networking.k8s.io/v1"))
    assert networking["ingresses"]["shortNames"] == ["ing"]
    assert networking["ingresses"]["kind"] == "Ingress"
    assert networking["ingressclasses"]["namespaced"] is False
    slices = by_name(await get_json(session, "/apis/discovery.k8s.io/v1"))
    assert slices["endpointslices"]["kind"] == "EndpointSlice"


async def test_unknown_paths_are_404_status(session: aiohttp.ClientSession) -> None:
    for path in ("/apis/nope.io", "/apis/nope.io/v1", "/api/v2", "/api/v1/foos", "/nothing/here"):
        body = await get_json(session, path, 404)
        assert body["kind"] == "Status"
        assert body["reason"] == "NotFound"
        assert body["code"] == 404


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def test_crd_lifecycle_over_http(session: aiohttp.ClientSession, open_watch: Any) -> None:
    await get_json(session, WIDGETS, 404)
    async with session.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD) as response:
        assert response.status == 201
        crd = await response.json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert by_name(await get_json(session, "/apis/example.com/v1"))["widgets"]["shortNames"] == ["wd"]
    assert "example.com" in {g["name"] for g in (await get_json(session, "/apis"))["groups"]}
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 1},
    }
    async with session.post(WIDGETS, json=widget) as response:
        assert response.status == 201
    async with session.delete(f"{WIDGETS}/w1") as response:
        assert response.status == 200
        deleted = await response.json()
    assert deleted["kind"] == "Status"
    assert deleted["status"] == "Success"
    assert deleted["details"]["group"] == "example.com"
    assert deleted["details"]["kind"] == "widgets"
    async with session.post(WIDGETS, json=widget) as response:
        assert response.status == 201
    listed = await get_json(session, WIDGETS)
    assert listed["kind"] == "WidgetList"
    assert listed["items"][0]["kind"] == "Widget", "custom resource list items keep kind (unstructured)"
    watch = await open_watch(WIDGETS, resourceVersion=listed["metadata"]["resourceVersion"])
    async with session.delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
    ) as r:
        assert r.status == 200
    event = await watch.next()
    assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "w1")
    await watch.expect_end()
    await get_json(session, WIDGETS, 404)
    assert "example.com" not in {g["name"] for g in (await get_json(session, "/apis"))["groups"]}


async def test_register_crd_helper(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    kube_emulator.register_crd(
        "example.com", "v1alpha1", "Gadget", "gadgets", namespaced=False, short_names=["gd"]
    )
    resources = by_name(await get_json(session, "/apis/example.com/v1alpha1"))
    assert resources["gadgets"]["namespaced"] is False
    assert resources["gadgets"]["kind"] == "Gadget"
    kube_emulator.create({"apiVersion": "example.com/v1alpha1", "kind": "Gadget", "metadata": {"name": "g"}})
    got = await get_json(session, "/apis/example.com/v1alpha1/gadgets/g")
    assert got["metadata"]["name"] == "g"
    assert "namespace" not in got["metadata"]
