"""Deleting a cluster's registration: the subscriptions that selected it get a DELETED for each of
its objects (as when its labels stop matching), and registering it again brings them back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from mic_api_harness import Api, run_app, wait_until
from webhook_recipient import Recipient

from mic.service.settings import ServiceSettings
from mic.store import StoreUnavailableError
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration

ADDED, MODIFIED, DELETED = "io.mic.resource.added", "io.mic.resource.modified", "io.mic.resource.deleted"


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def subscribe(api: Api, name: str, recipient: Recipient, clusters: list[str]) -> None:
    document = {
        "name": name,
        "filter": {"resources": ["configmaps"], "clusters": clusters},
        "sink": {"url": recipient.url},
    }
    response = await api.post("/v1/subscriptions", json=document)
    assert response.status_code == 201, response.text


def subjects(recipient: Recipient, type_: str) -> list[str]:
    return sorted(body["subject"] for body in recipient.bodies(type_))


async def test_deleting_a_cluster_sends_deletes_and_registering_it_again_brings_its_objects_back(
    api: Api, kube_emulators: Any, recipients: tuple[Recipient, Recipient]
) -> None:
    selected, elsewhere = recipients
    eu: KubeEmulator = await kube_emulators(name="eu-1")
    us: KubeEmulator = await kube_emulators(name="us-1")
    for name in ("web", "api"):
        eu.create(configmap(name))
    us.create(configmap("other"))
    await api.add_cluster("eu-1", eu)
    await api.add_cluster("us-1", us)
    await subscribe(api, "lb", selected, ["eu-1"])
    await subscribe(api, "us-only", elsewhere, ["us-1"])
    await wait_until(lambda: len(selected.bodies(ADDED)) == 2, 10.0, lambda: f"{selected.bodies()}")
    await wait_until(lambda: len(elsewhere.bodies(ADDED)) == 1, 10.0, lambda: f"{elsewhere.bodies()}")
    first_ids = {body["id"] for body in selected.bodies(ADDED)}

    assert (await api.delete("/v1/clusters/eu-1")).status_code == 204
    await wait_until(lambda: len(selected.bodies(DELETED)) == 2, 10.0, lambda: f"{selected.bodies()}")
    assert subjects(selected, DELETED) == ["default/api", "default/web"]
    assert all(body["cluster"] == "eu-1" for body in selected.bodies(DELETED))
    eu.create(configmap("late"))  # the cluster is no longer watched: nothing more comes of it
    assert (await api.get("/v1/subscriptions/lb/status")).json()["backlog"] == 0

    await api.add_cluster("eu-1", eu)
    await wait_until(lambda: len(selected.bodies(ADDED)) == 5, 10.0, lambda: f"{selected.bodies()}")
    again = selected.bodies(ADDED)[2:]
    assert sorted(body["subject"] for body in again) == ["default/api", "default/late", "default/web"]
    # New messages about objects the recipient dropped: a recipient that drops ids it has seen
    # must not drop these as duplicates of the first ADDED.
    assert not first_ids & {body["id"] for body in again}
    assert [body["type"] for body in selected.bodies()] == [ADDED] * 2 + [DELETED] * 2 + [ADDED] * 3
    assert elsewhere.bodies(DELETED) == []  # its cluster stayed


async def test_a_deletion_the_store_refuses_takes_its_deletes_back(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DELETED go out before the store forgets the cluster; if it then cannot, the cluster
    stays, and recipients get its objects again (new ids), then its changes as before."""
    kube_emulator.create(configmap("web"))
    await api.add_cluster("eu-1", kube_emulator)
    await subscribe(api, "lb", recipient, ["eu-1"])
    await wait_until(lambda: len(recipient.bodies(ADDED)) == 1, 10.0, lambda: f"{recipient.bodies()}")

    async def locked(name: str) -> None:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(api.service.store, "delete_cluster", locked)
    refused = await api.delete("/v1/clusters/eu-1")
    assert refused.status_code == 503, refused.text
    assert (await api.get("/v1/clusters/eu-1")).status_code == 200
    await wait_until(lambda: len(recipient.bodies(ADDED)) == 2, 10.0, lambda: f"{recipient.bodies()}")
    kube_emulator.patch("configmaps", "web", {"data": {"k": "v2"}})
    await wait_until(lambda: len(recipient.bodies()) == 4, 10.0, lambda: f"{recipient.bodies()}")
    assert [body["type"] for body in recipient.bodies()] == [ADDED, DELETED, ADDED, MODIFIED]
    assert len({body["id"] for body in recipient.bodies(ADDED)}) == 2


async def test_a_label_change_during_a_deletion_brings_no_object_back(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PATCH that would select the cluster for another subscription, while it is being
    deleted: that subscription must not get objects of a cluster that is gone."""
    kube_emulator.create(configmap("web"))
    await api.add_cluster("eu-1", kube_emulator, labels={"env": "staging"})
    document = {
        "name": "prod",
        "filter": {"resources": ["configmaps"], "clusterSelector": "env=prod"},
        "sink": {"url": recipient.url},
    }
    assert (await api.post("/v1/subscriptions", json=document)).status_code == 201
    await api.wait_cluster("eu-1", lambda c: all(r["synced"] for r in c["status"]["resources"]))
    delete_cluster = api.service.store.delete_cluster

    async def slow(name: str) -> None:
        await asyncio.sleep(0.5)
        await delete_cluster(name)

    monkeypatch.setattr(api.service.store, "delete_cluster", slow)

    async def relabel_meanwhile() -> httpx.Response:
        await asyncio.sleep(0.1)  # the deletion is under way
        return await api.patch("/v1/clusters/eu-1", json={"labels": {"env": "prod"}})

    deleted, patched = await asyncio.gather(api.delete("/v1/clusters/eu-1"), relabel_meanwhile())
    assert deleted.status_code == 204
    assert patched.status_code in (200, 404), patched.text  # before the row went, or after
    assert (await api.get("/v1/clusters/eu-1")).status_code == 404
    # A wrong snapshot is queued by the PATCH's reconcile, before its answer: once the writer
    # has stored what was queued, the subscription holds it, or nothing.
    await api.service.engine._writer.flush()
    status = api.service.engine.status("prod")
    assert (status.backlog, status.delivered_total) == (0, 0)
    assert recipient.bodies() == []


async def test_a_cluster_whose_objects_cannot_be_named_is_deleted_only_by_force(
    settings: ServiceSettings, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    """Unreachable since MIC started, and no other cluster serves its resources: its objects'
    DELETED cannot be built, and deleting it would drop the only record of them (the ledger).
    409, saying so; `force=true` deletes it anyway."""
    kube_emulator.create(configmap("web"))
    async with run_app(settings) as api:
        await api.add_cluster("eu-1", kube_emulator)
        await subscribe(api, "lb", recipient, ["eu-1"])
        await wait_until(lambda: len(recipient.bodies(ADDED)) == 1, 10.0, lambda: f"{recipient.bodies()}")
    await kube_emulator.stop()
    async with run_app(settings) as api:
        refused = await api.delete("/v1/clusters/eu-1")
        assert refused.status_code == 409, refused.text
        assert "cannot name the configmaps to send their DELETED" in refused.json()["detail"]
        assert "force=true" in refused.json()["detail"]
        assert (await api.get("/v1/clusters/eu-1")).status_code == 200
        assert (await api.delete("/v1/clusters/eu-1", params={"force": "true"})).status_code == 204
        assert (await api.get("/v1/clusters/eu-1")).status_code == 404
    assert [body["type"] for body in recipient.bodies()] == [ADDED]
