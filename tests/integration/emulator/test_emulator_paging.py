"""limit/continue over HTTP: consistent pages, remainingItemCount, expired tokens."""

import aiohttp

from mic.testing import KubeEmulator

CMS = "/api/v1/namespaces/default/configmaps"


async def page(session: aiohttp.ClientSession, status: int = 200, **params: str) -> dict:  # type: ignore[type-arg]
    async with session.get(CMS, params=params) as response:
        assert response.status == status, await response.text()
        return await response.json()  # type: ignore[no-any-return]


async def test_pages_are_consistent_with_the_first(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    for i in range(7):
        kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    first = await page(session, limit="3")
    rv = first["metadata"]["resourceVersion"]
    assert first["metadata"]["remainingItemCount"] == 4
    kube_emulator.delete("configmaps", "c4")
    kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c35"}})
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        body = await page(session, limit="3", **{"continue": token})
        assert body["metadata"]["resourceVersion"] == rv
        names += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"].get("continue")
    assert names == [f"c{i}" for i in range(7)]
    fresh = await page(session)
    assert "c35" in [i["metadata"]["name"] for i in fresh["items"]]
    assert "continue" not in fresh["metadata"]
    assert "remainingItemCount" not in fresh["metadata"]


async def test_expired_continue_is_410(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    for i in range(3):
        kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    first = await page(session, limit="1")
    kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}})
    kube_emulator.compact()
    body = await page(session, 410, limit="1", **{"continue": first["metadata"]["continue"]})
    assert (body["reason"], body["code"]) == ("Expired", 410)
    assert body["message"].startswith("The provided continue parameter is too old")


async def test_resource_version_parameters(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    kube_emulator.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    then = kube_emulator.resource_version
    kube_emulator.delete("configmaps", "a")
    exact = await page(session, resourceVersion=then, resourceVersionMatch="Exact")
    assert [i["metadata"]["name"] for i in exact["items"]] == ["a"]
    assert exact["metadata"]["resourceVersion"] == then
    assert (await page(session, resourceVersion="0"))["items"] == []
    too_new = await page(session, 504, resourceVersion=str(int(then) + 100))
    assert too_new["reason"] == "Timeout"
    bad = await page(session, 400, resourceVersion="5", **{"continue": "abc"})
    assert bad["message"] == "specifying resource version is not allowed when using continue"
