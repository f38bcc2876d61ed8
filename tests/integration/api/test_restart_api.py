"""A restart on the same SQLite file brings every cluster and its watches back."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api, run_app

from mic.service.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def test_restart_restores_clusters_and_watches(settings: ServiceSettings, kube_emulators: Any) -> None:
    eu = await kube_emulators(name="eu")
    us = await kube_emulators(name="us")
    for emulator in (eu, us):
        emulator.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}
        )
    async with run_app(settings) as api:
        await api.add_cluster("eu-1", eu, labels={"region": "eu"}, resources=["configmaps", "services"])
        await api.add_cluster("us-1", us, resources=["cm"])
        await api.patch("/v1/clusters/us-1", json={"labels": {"region": "us"}})
        before = (await api.get("/v1/clusters")).json()["items"]

    async with run_app(settings) as api:
        assert (await api.get("/readyz")).status_code == 200
        after = (await api.get("/v1/clusters")).json()["items"]
        assert [strip_status(c) for c in after] == [strip_status(c) for c in before]
        for name in ("eu-1", "us-1"):
            cluster = await wait_ready(api, name)
            assert all(r["synced"] for r in cluster["status"]["resources"])
        eu_status = (await api.get("/v1/clusters/eu-1")).json()["status"]
        assert [r["resource"] for r in eu_status["resources"]] == ["configmaps", "services"]
        assert api.service.hub.cluster_names() == ["eu-1", "us-1"]
        listed = (await api.get("/v1/resources/configmaps")).json()
        assert [i["cluster"] for i in listed["items"]] == ["eu-1", "us-1"]


def strip_status(cluster: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cluster.items() if k != "status"}


async def wait_ready(api: Api, name: str) -> dict[str, Any]:
    return await api.wait_cluster(name, lambda c: c["status"]["state"] == "ready")


async def test_a_stored_subscription_no_longer_valid_is_shown_as_not_running(
    settings: ServiceSettings,
) -> None:
    from mic.store import Store, SubscriptionRecord

    hook = "http://127.0.0.1:9/hook"
    async with run_app(settings) as api:
        store: Store = api.service.store
        # As an older MIC stored it: a header value the current rules refuse.
        old = {
            "name": "old",
            "filter": {"resources": ["configmaps"]},
            "sink": {"url": hook, "headers": {"X": "caf€"}},
        }
        await store.create_subscription(SubscriptionRecord(name="old", spec=old))

    async with run_app(settings) as api:
        shown = (await api.get("/v1/subscriptions/old")).json()
        assert shown["status"] is None
        assert "no longer valid" in shown["notStarted"]
        assert "sink.headers.X" in shown["notStarted"]
        assert "caf€" not in shown["notStarted"], "a header value may be a credential"
        status = await api.get("/v1/subscriptions/old/status")
        assert status.status_code == 409
        assert "PUT a valid spec" in status.json()["detail"]
        fixed = {"filter": {"resources": ["configmaps"]}, "sink": {"url": hook, "headers": {"X": "cafe"}}}
        replaced = await api.put("/v1/subscriptions/old", json=fixed)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["notStarted"] is None
        assert (await api.get("/v1/subscriptions/old/status")).status_code == 200
