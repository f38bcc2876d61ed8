"""`POST /v1/subscriptions/{name}/resync`: a recipient that lost its own state gets every object
of its view again, as ADDED with ids of their own."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import VIEWER_TOKEN, Api, wait_until
from webhook_recipient import Recipient

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration

ADDED = "io.mic.resource.added"


def configmap(name: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


async def test_resync_sends_the_view_again_with_new_ids(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    kube_emulator.create(configmap("web"))
    kube_emulator.create(configmap("api"))
    kube_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    kube_emulator.create(configmap("other", namespace="elsewhere"))  # outside the view
    await api.add_cluster("eu-1", kube_emulator)
    document = {
        "name": "lb",
        "filter": {"resources": ["configmaps"], "namespaces": ["default"]},
        "sink": {"url": recipient.url},
    }
    assert (await api.post("/v1/subscriptions", json=document)).status_code == 201
    await wait_until(lambda: len(recipient.bodies(ADDED)) == 2, 10.0, lambda: f"{recipient.bodies()}")
    first = recipient.bodies(ADDED)

    response = await api.post("/v1/subscriptions/lb/resync")
    assert response.status_code == 202, response.text
    assert "every object" in response.json()["detail"]
    await wait_until(lambda: len(recipient.bodies(ADDED)) == 4, 10.0, lambda: f"{recipient.bodies()}")
    again = recipient.bodies(ADDED)[2:]
    assert sorted(body["subject"] for body in again) == ["default/api", "default/web"]
    assert not {body["id"] for body in first} & {body["id"] for body in again}


async def test_resync_needs_an_admin_and_a_known_subscription(api: Api, recipient: Recipient) -> None:
    document = {"name": "lb", "filter": {"resources": ["configmaps"]}, "sink": {"url": recipient.url}}
    assert (await api.post("/v1/subscriptions", json=document)).status_code == 201
    async with api.as_token(VIEWER_TOKEN) as viewer:
        assert (await viewer.post("/v1/subscriptions/lb/resync")).status_code == 403
    assert (await api.post("/v1/subscriptions/nope/resync")).status_code == 404
