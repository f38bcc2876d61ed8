"""Object verbs over HTTP: status codes and Status bodies as kube answers them."""

from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from mic.testing import KubeEmulator

CMS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def call(
    session: aiohttp.ClientSession, method: str, path: str, body: Any = None, status: int = 200, **kw: Any
) -> Any:
    data = orjson.dumps(body) if body is not None and not isinstance(body, bytes) else body
    headers = kw.pop("headers", {"Content-Type": "application/json"})
    async with session.request(method, path, data=data, headers=headers, **kw) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def test_create_get_and_duplicate(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    created = await call(session, "POST", CMS, cm("a"), 201)
    meta = created["metadata"]
    assert (created["kind"], created["apiVersion"]) == ("ConfigMap", "v1")
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert meta["resourceVersion"].isdigit()
    assert await call(session, "GET", f"{CMS}/a") == created
    dup = await call(session, "POST", CMS, cm("a"), 409)
    assert dup == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "a" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "a", "kind": "configmaps"},
        "code": 409,
    }
    missing = await call(session, "GET", f"{CMS}/zzz", status=404)
    assert (missing["reason"], missing["message"]) == ("NotFound", 'configmaps "zzz" not found')


async def test_namespace_must_exist(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    body = await call(session, "POST", "/api/v1/namespaces/nope/configmaps", cm("a", namespace="nope"), 404)
    assert body["message"] == 'namespaces "nope" not found'
    await call(session, "POST", "/api/v1/namespaces", {"metadata": {"name": "nope"}}, 201)
    await call(session, "POST", "/api/v1/namespaces/nope/configmaps", cm("a", namespace="nope"), 201)
    ns = await call(session, "GET", "/api/v1/namespaces/nope")
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "nope"


async def test_bad_bodies(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    assert (await call(session, "POST", CMS, b"{not json", 400))["reason"] == "BadRequest"
    assert (await call(session, "POST", CMS, [1, 2], 400))["reason"] == "BadRequest"
    invalid = await call(session, "POST", CMS, {"metadata": {}}, 422)
    assert invalid["reason"] == "Invalid"
    assert "metadata.name" in invalid["message"]
    wrong_kind = await call(session, "POST", CMS, {**cm("a"), "kind": "Secret"}, 400)
    assert "kind" in wrong_kind["message"]
    text = await call(session, "POST", CMS, b"x", 415, headers={"Content-Type": "text/plain"})
    assert text["reason"] == "UnsupportedMediaType"
    other_ns = await call(session, "POST", CMS, cm("a", namespace="kube-system"), 400)
    assert "namespace" in other_ns["message"]


async def test_unknown_resource_and_unsupported_verbs(
    session: aiohttp.ClientSession, cm: Callable[..., Any]
) -> None:
    assert (await call(session, "GET", "/api/v1/namespaces/default/foos", status=404))["reason"] == "NotFound"
    await call(session, "POST", CMS, cm("a"), 201)
    assert (await call(session, "POST", f"{CMS}/a", cm("a"), 405))["reason"] == "MethodNotAllowed"
    assert (await call(session, "PUT", CMS, cm("a"), 405))["code"] == 405
    assert (await call(session, "DELETE", "/api/v1/namespaces", status=405))["code"] == 405
    assert (await call(session, "GET", f"{CMS}/a/status", status=404))["code"] == 404


async def test_update_and_conflict(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    created = await call(session, "POST", CMS, cm("a"), 201)
    updated = await call(session, "PUT", f"{CMS}/a", {**created, "data": {"k": "new"}})
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert updated["metadata"]["generation"] == 2
    stale = await call(session, "PUT", f"{CMS}/a", {**created, "data": {"k": "x"}}, 409)
    assert stale["reason"] == "Conflict"
    assert stale["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    mismatch = await call(session, "PUT", f"{CMS}/b", updated, 400)
    assert "does not match the name on the URL" in mismatch["message"]
    unconditional = {**updated, "metadata": {"name": "a"}, "data": {"k": "forced"}}
    assert (await call(session, "PUT", f"{CMS}/a", unconditional))["data"] == {"k": "forced"}
    assert (await call(session, "PUT", f"{CMS}/missing", {**cm("missing")}, 404))["reason"] == "NotFound"


async def test_patches(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    await call(session, "POST", CMS, cm("a", app="web"), 201)
    merged = await call(
        session,
        "PATCH",
        f"{CMS}/a",
        {"metadata": {"labels": {"app": None, "x": "y"}}, "data": {"n": "1"}},
        headers=MERGE,
    )
    assert merged["metadata"]["labels"] == {"x": "y"}
    assert merged["data"] == {"k": "v", "n": "1"}
    ops = [{"op": "replace", "path": "/data/k", "value": "w"}]
    patched = await call(
        session, "PATCH", f"{CMS}/a", ops, headers={"Content-Type": "application/json-patch+json"}
    )
    assert patched["data"]["k"] == "w"
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"k": "z"}}
    assert (await call(session, "PATCH", f"{CMS}/a", stale, 409, headers=MERGE))["reason"] == "Conflict"
    smp = await call(
        session,
        "PATCH",
        f"{CMS}/a",
        {"data": {"s": "1"}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert smp["data"]["s"] == "1"
    apply = await call(
        session,
        "PATCH",
        f"{CMS}/a",
        {"data": {}},
        415,
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert apply["reason"] == "UnsupportedMediaType"
    assert (await call(session, "PATCH", f"{CMS}/nope", {"data": {}}, 404, headers=MERGE))["code"] == 404


async def test_delete_answers_like_kube(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    created = await call(session, "POST", CMS, cm("a"), 201)
    status = await call(session, "DELETE", f"{CMS}/a")
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "a", "kind": "configmaps", "uid": created["metadata"]["uid"]},
    }
    assert (await call(session, "DELETE", f"{CMS}/a", status=404))["reason"] == "NotFound"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await call(session, "POST", "/api/v1/namespaces/default/pods", pod, 201)
    deleted = await call(session, "DELETE", "/api/v1/namespaces/default/pods/p")
    assert deleted["kind"] == "Pod"
    assert deleted["metadata"]["name"] == "p"


async def test_delete_preconditions_and_finalizers(
    session: aiohttp.ClientSession, cm: Callable[..., Any]
) -> None:
    body = cm("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await call(session, "POST", CMS, body, 201)
    wrong = await call(session, "DELETE", f"{CMS}/a", {"preconditions": {"uid": "nope"}}, 409)
    assert "Precondition failed" in wrong["message"]
    held = await call(session, "DELETE", f"{CMS}/a")
    assert held["metadata"]["deletionTimestamp"]
    await call(session, "PATCH", f"{CMS}/a", {"metadata": {"finalizers": None}}, headers=MERGE)
    await call(session, "GET", f"{CMS}/a", status=404)


async def test_lists_selectors_and_item_shape(session: aiohttp.ClientSession, cm: Callable[..., Any]) -> None:
    await call(session, "POST", CMS, cm("a", app="web", tier="front"), 201)
    await call(session, "POST", CMS, cm("b", app="db"), 201)
    await call(
        session, "POST", "/api/v1/namespaces/kube-system/configmaps", cm("c", "kube-system", app="web"), 201
    )
    listed = await call(session, "GET", CMS)
    assert listed["kind"] == "ConfigMapList"
    assert listed["apiVersion"] == "v1"
    assert listed["metadata"]["resourceVersion"].isdigit()
    assert "kind" not in listed["items"][0]
    assert "apiVersion" not in listed["items"][0]
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]

    async def names(path: str, **params: str) -> list[str]:
        body = await call(session, "GET", path, params=params)
        return [i["metadata"]["name"] for i in body["items"]]

    assert await names("/api/v1/configmaps", labelSelector="app=web") == ["a", "c"]
    assert await names(CMS, labelSelector="app in (web,db),!tier") == ["b"]
    assert await names("/api/v1/configmaps", fieldSelector="metadata.namespace!=default") == ["c"]
    assert await names(CMS, fieldSelector="metadata.name=b") == ["b"]
    bad = await call(session, "GET", CMS, params={"labelSelector": "app in web"}, status=400)
    assert bad["reason"] == "BadRequest"
    assert (await call(session, "GET", CMS, params={"fieldSelector": "data.k=v"}, status=400))["message"] == (
        "field label not supported: data.k"
    )


async def test_status_subresource(session: aiohttp.ClientSession) -> None:
    ing_path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    ing = {"metadata": {"name": "i"}, "spec": {"rules": [{"host": "a.example.com"}]}}
    created = await call(session, "POST", ing_path, ing, 201)
    status = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    updated = await call(session, "PUT", f"{ing_path}/i/status", {**created, "status": status})
    assert updated["status"] == status
    assert updated["metadata"]["generation"] == 1
    assert (await call(session, "GET", f"{ing_path}/i/status"))["status"] == status
    merged = await call(
        session,
        "PATCH",
        f"{ing_path}/i/status",
        {"status": {"loadBalancer": {"ingress": None}}},
        headers=MERGE,
    )
    assert merged["status"] == {"loadBalancer": {}}


async def test_in_process_helpers_match_http(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    made = kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h"}})
    assert made["metadata"]["namespace"] == "default"
    made["data"] = {"mutated": "locally"}
    assert "data" not in kube_emulator.get("configmaps", "h"), "helpers return copies"
    patched = kube_emulator.patch("cm", "h", {"data": {"a": "1"}})
    assert (await call(session, "GET", f"{CMS}/h")) == patched
    updated = kube_emulator.update({**patched, "data": {"a": "2"}})
    assert kube_emulator.resource_version == updated["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in kube_emulator.objects("configmaps", "default")] == ["h"]
    kube_emulator.delete("configmaps", "h")
    assert kube_emulator.objects("configmaps") == []
