"""Deleting a cluster's registration: the subscriptions that selected it get a DELETED for each of
its objects (as when its labels stop matching), and registering it again brings them back."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api, wait_until
from webhook_recipient import Recipient

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration

ADDED, DELETED = "io.mic.resource.added", "io.mic.resource.deleted"


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
