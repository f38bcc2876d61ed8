"""A stored credential is never sent to a new destination unless the update sends it again."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration

HOOK = "http://127.0.0.1:9/hook"  # never contacted
AUTH = {"Authorization": "Bearer recipient-secret"}


async def test_a_cluster_token_does_not_follow_a_patched_server(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    connection = {"type": "token", "server": kube_emulator.url, "token": "cluster-token-0123"}
    assert (await api.post("/v1/clusters", json={"name": "c", "connection": connection})).status_code == 201
    for change in (
        {"server": "https://attacker.example:6443"},
        {"insecureSkipTlsVerify": True},
        {"tlsServerName": "attacker.example"},
        {"caData": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"},
    ):
        refused = await api.patch("/v1/clusters/c", json={"connection": change})
        assert refused.status_code == 422, (change, refused.text)
        assert "send connection.token again" in refused.json()["detail"]
    stored = await api.service.store.get_cluster("c")
    assert stored.connection["server"] == kube_emulator.url  # nothing changed
    moved = {"server": "https://new.example:6443", "token": "cluster-token-0123"}
    assert (await api.patch("/v1/clusters/c", json={"connection": moved})).status_code == 200
    assert (await api.patch("/v1/clusters/c", json={"labels": {"env": "prod"}})).status_code == 200


async def _subscription(api: Api, **sink: Any) -> None:
    body = {"name": "lb", "filter": {"resources": ["ingresses"]}, "sink": {"url": HOOK, **sink}}
    assert (await api.post("/v1/subscriptions", json=body)).status_code == 201


async def test_sink_headers_do_not_follow_a_changed_url(api: Api) -> None:
    await _subscription(api, headers=AUTH)
    elsewhere = "http://attacker.example/hook"
    patched = await api.patch("/v1/subscriptions/lb", json={"sink": {"url": elsewhere}})
    assert patched.status_code == 422
    assert "send sink.headers again" in patched.json()["detail"]
    put = await api.put(
        "/v1/subscriptions/lb", json={"filter": {"resources": ["ingresses"]}, "sink": {"url": elsewhere}}
    )
    assert put.status_code == 422
    assert (await api.service.store.get_subscription("lb")).spec["sink"]["url"] == HOOK
    resent = await api.patch("/v1/subscriptions/lb", json={"sink": {"url": elsewhere, "headers": AUTH}})
    assert resent.status_code == 200, resent.text
    dropped = await api.put(
        "/v1/subscriptions/lb",
        json={"filter": {"resources": ["ingresses"]}, "sink": {"url": HOOK, "headers": None}},
    )
    assert dropped.status_code == 200, dropped.text


async def test_a_url_change_without_stored_headers_needs_nothing_more(api: Api) -> None:
    await _subscription(api)
    assert (
        await api.patch("/v1/subscriptions/lb", json={"sink": {"url": "http://other/hook"}})
    ).status_code == 200
