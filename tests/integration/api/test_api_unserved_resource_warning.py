"""A subscription naming a resource no registered cluster serves is stored (a CRD may come),
with a `Warning` header, as kube-apiserver warns, so a mistyped name is heard of at once."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api, wait_until

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def _subscription(resources: list[str]) -> dict[str, Any]:
    return {"name": "s", "filter": {"resources": resources}, "sink": {"url": "http://127.0.0.1:9/hook"}}


async def _discovered(api: Api) -> bool:
    clusters = (await api.get("/v1/clusters")).json()["items"]
    return bool(clusters) and all(c["status"]["state"] in ("ready", "degraded") for c in clusters)


async def test_a_resource_no_cluster_serves_is_stored_with_a_warning(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    await wait_until(lambda: _discovered(api), 10.0)

    created = await api.post("/v1/subscriptions", json=_subscription(["nosuchthings", "configmaps"]))
    assert created.status_code == 201, created.text
    assert created.headers.get_list("warning") == [
        "299 - \"filter.resources: no registered cluster serves 'nosuchthings' (eu-1); check the name"
        ' (kubectl api-resources): it is watched once a cluster serves it"'
    ]
    assert (await api.get("/v1/subscriptions/s")).json()["filter"]["resources"] == [
        "nosuchthings",
        "configmaps",
    ]

    fixed = await api.patch("/v1/subscriptions/s", json={"filter": {"resources": ["cm"]}})
    assert fixed.status_code == 200, fixed.text
    assert "warning" not in fixed.headers
    typo = await api.patch("/v1/subscriptions/s", json={"filter": {"resources": ["ingresess"]}})
    assert "'ingresess'" in typo.headers["warning"]
    replaced = await api.put("/v1/subscriptions/s", json=_subscription(["ingresess"]))
    assert replaced.status_code == 200, replaced.text
    assert "'ingresess'" in replaced.headers["warning"]


async def test_without_a_cluster_to_ask_there_is_no_warning(api: Api) -> None:
    created = await api.post("/v1/subscriptions", json=_subscription(["nosuchthings"]))
    assert created.status_code == 201, created.text
    assert "warning" not in created.headers
