"""The original MIC's routes: `/cic/nitro/v1/config/controller` mapped onto a cluster and
subscriptions, and the cache routes with the original's status codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mic_api_harness import VIEWER_TOKEN, Api, run_app, wait_until
from webhook_recipient import Recipient

from mic.api.routes.original import ORIGIN_LABEL, mic_cluster_name
from mic.service.settings import ServiceSettings
from mic.testing import TokenPolicy
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration

CONTROLLER = "/cic/nitro/v1/config/controller"
TOKEN = "sa-t0ken-never-shown"


def registration(emulator: KubeEmulator, urls: list[str], **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "ClusterName": "ClusterABC",
        "KubeURL": emulator.url,
        "KubeServAcctToken": TOKEN,
        "ServerURL": urls,
        "WatchEvents": ["Services", "endpoints"],
    }
    document.update(fields)
    return document


def service(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"port": 80}]},
    }


def envelope_for(recipient: Recipient, name: str) -> dict[str, Any] | None:
    return next((b for b in recipient.bodies() if b.get("resource_name") == name), None)


async def register(api: Api, body: dict[str, Any]) -> None:
    response = await api.post(CONTROLLER, json=body)
    assert response.status_code == 200, response.text
    assert response.text == "Controller Added"


async def test_an_https_kube_url_is_verified_and_needs_the_cluster_ca(
    api: Api, kube_emulators: Any, recipients: tuple[Recipient, Recipient]
) -> None:
    """The original skipped verification (client-go Insecure: true), which hands the token to
    whoever is on the path: MIC refuses that unless the operator allows it, and verifies with
    `KubeCAData`."""
    secure = await kube_emulators(name="secure", tls=True, tokens={TOKEN: TokenPolicy.allow_all()})
    body = registration(secure, [recipients[0].url])
    refused = await api.post(CONTROLLER, json=body)
    assert refused.status_code == 422
    assert "KubeCAData: required with an https KubeURL" in refused.json()["detail"]
    assert "--original-api-insecure-tls" in refused.json()["detail"]
    assert (await api.get("/v1/clusters")).json()["items"] == []

    await register(api, {**body, "KubeCAData": secure.ca_pem.decode()})
    cluster = await api.wait_cluster("clusterabc", lambda c: c["status"]["state"] == "ready")
    assert cluster["connection"]["insecureSkipTlsVerify"] is False


async def test_the_operator_may_restore_the_original_unverified_connections(
    replace_settings: Callable[..., ServiceSettings],
    kube_emulators: Any,
    recipients: tuple[Recipient, Recipient],
) -> None:
    secure = await kube_emulators(name="secure", tls=True, tokens={TOKEN: TokenPolicy.allow_all()})
    async with run_app(replace_settings(original_api_insecure_tls=True)) as api:
        await register(api, registration(secure, [recipients[0].url]))
        cluster = await api.wait_cluster("clusterabc", lambda c: c["status"]["state"] == "ready")
        assert cluster["connection"]["insecureSkipTlsVerify"] is True  # shown, not hidden


def test_cluster_names_become_dns_labels() -> None:
    assert mic_cluster_name("ClusterABC") == "clusterabc"
    assert mic_cluster_name("my_cluster.1") == "my-cluster-1"
    assert mic_cluster_name("--eu--1--") == "eu-1"


async def test_post_maps_to_a_cluster_and_one_mic_v1_subscription_per_server(
    api: Api, kube_emulator: KubeEmulator, recipients: tuple[Recipient, Recipient]
) -> None:
    first, second = recipients
    kube_emulator.create(service("dns", "kube-system"))
    await register(api, registration(kube_emulator, [first.url, second.url]))

    cluster = (await api.get("/v1/clusters/clusterabc")).json()
    assert cluster["labels"] == {ORIGIN_LABEL: "ClusterABC"}
    assert cluster["resources"] == ["services", "endpoints"]
    assert cluster["connection"]["type"] == "token"
    assert cluster["connection"]["server"] == kube_emulator.url
    assert TOKEN not in json.dumps(cluster)
    assert cluster["connection"]["insecureSkipTlsVerify"] is False  # plain http: nothing to skip

    subscriptions = (await api.get("/v1/subscriptions")).json()["items"]
    assert [s["name"] for s in subscriptions] == ["clusterabc-1", "clusterabc-2"]
    for subscription, recipient in zip(subscriptions, (first, second), strict=True):
        assert subscription["format"] == "mic-v1"
        assert subscription["sink"]["url"] == recipient.url
        assert subscription["filter"]["clusters"] == ["clusterabc"]
        assert subscription["filter"]["resources"] == ["services", "endpoints"]
        assert subscription["filter"]["namespaces"] is None
        assert subscription["filter"]["excludeNamespaces"] == ["kube-system"]

    kube_emulator.create(service("web"))
    for recipient in (first, second):
        await wait_until(lambda r=recipient: envelope_for(r, "web") is not None, 10.0)
        envelope = envelope_for(recipient, "web")
        assert envelope is not None
        assert envelope["resource_type"] == "Service"
        assert envelope["app_environment_id"] == "clusterabc"
        assert envelope["app_environment_type"] == "Kubernetes"
        assert envelope["server_group_id"] == "default"
        assert json.loads(envelope["message"])["metadata"]["name"] == "web"
        assert not any(b.get("server_group_id") == "kube-system" for b in recipient.bodies())


async def test_get_lists_registrations_without_the_token_and_204_when_empty(
    api: Api, kube_emulator: KubeEmulator, recipients: tuple[Recipient, Recipient]
) -> None:
    empty = await api.get(CONTROLLER)
    assert empty.status_code == 204
    assert empty.content == b""
    await register(api, registration(kube_emulator, [recipients[0].url], Namespaces=["shop"]))
    await api.add_cluster("v1-cluster", kube_emulator)  # registered through /v1: not listed here
    listed = await api.get(CONTROLLER)
    assert listed.status_code == 200
    assert listed.json() == [
        {
            "ClusterName": "ClusterABC",
            "ConfigFileName": "",
            "KubeURL": kube_emulator.url,
            "KubeServAcctToken": "",
            "Namespaces": ["shop"],
            "ServerURL": [recipients[0].url],
            "WatchEvents": ["services", "endpoints"],
        }
    ]
    assert TOKEN not in listed.text


async def test_viewers_see_server_url_query_values_masked(
    api: Api, kube_emulator: KubeEmulator, recipients: tuple[Recipient, Recipient]
) -> None:
    """As in /v1/subscriptions: a recipient's key in the query is the admin's to see."""
    keyed = f"{recipients[0].url}?api_key=s3cr3t"
    await register(api, registration(kube_emulator, [keyed]))
    assert (await api.get(CONTROLLER)).json()[0]["ServerURL"] == [keyed]
    async with api.as_token(VIEWER_TOKEN) as viewer:
        shown = (await viewer.get(CONTROLLER)).json()[0]["ServerURL"]
    assert shown == [f"{recipients[0].url}?api_key=***"]


async def test_duplicate_post_is_409(api: Api, kube_emulator: KubeEmulator) -> None:
    await register(api, registration(kube_emulator, []))
    again = await api.post(CONTROLLER, json=registration(kube_emulator, []))
    assert again.status_code == 409
    assert again.json() == {"detail": "cluster 'clusterabc' already exists"}


async def test_put_replaces_servers_and_delete_removes_everything(
    api: Api, kube_emulator: KubeEmulator, recipients: tuple[Recipient, Recipient]
) -> None:
    first, second = recipients
    missing = await api.put(CONTROLLER, json=registration(kube_emulator, [first.url]))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no controller registered for ClusterName 'ClusterABC'"}

    await register(api, registration(kube_emulator, [first.url, second.url]))
    updated = await api.put(
        CONTROLLER, json=registration(kube_emulator, [second.url], WatchEvents=["ingresses"])
    )
    assert updated.status_code == 200, updated.text
    subscriptions = (await api.get("/v1/subscriptions")).json()["items"]
    assert [(s["name"], s["sink"]["url"]) for s in subscriptions] == [("clusterabc-1", second.url)]
    assert subscriptions[0]["filter"]["resources"] == ["ingresses"]
    assert (await api.get("/v1/clusters/clusterabc")).json()["resources"] == ["ingresses"]

    deleted = await api.request("DELETE", CONTROLLER, json={"ClusterName": "ClusterABC"})
    assert deleted.status_code == 200
    assert (await api.get("/v1/clusters/clusterabc")).status_code == 404
    assert (await api.get("/v1/subscriptions")).json()["items"] == []
    again = await api.request("DELETE", CONTROLLER, json={"ClusterName": "ClusterABC"})
    assert again.status_code == 404


async def test_clusters_registered_through_v1_are_not_touched(api: Api, kube_emulator: KubeEmulator) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    response = await api.request("DELETE", CONTROLLER, json={"ClusterName": "eu-1"})
    assert response.status_code == 404
    assert "registered through /v1/clusters" in response.json()["detail"]
    assert (await api.get("/v1/clusters/eu-1")).status_code == 200


async def test_a_failed_registration_leaves_nothing_behind(
    api: Api, kube_emulator: KubeEmulator, recipients: tuple[Recipient, Recipient]
) -> None:
    taken = {"name": "clusterabc-2", "filter": {"resources": ["pods"]}, "sink": {"url": recipients[0].url}}
    assert (await api.post("/v1/subscriptions", json=taken)).status_code == 201
    response = await api.post(CONTROLLER, json=registration(kube_emulator, [r.url for r in recipients]))
    assert response.status_code == 409
    assert response.json() == {"detail": "subscription 'clusterabc-2' already exists"}
    assert (await api.get("/v1/clusters/clusterabc")).status_code == 404
    names = [s["name"] for s in (await api.get("/v1/subscriptions")).json()["items"]]
    assert names == ["clusterabc-2"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"KubeServAcctToken": ""}, "KubeServAcctToken: required with KubeURL"),
        ({"KubeURL": ""}, "KubeURL: required with KubeServAcctToken"),
        ({"WatchEvents": ["deployments"]}, "WatchEvents: 'deployments' is not one of endpoints, services"),
        ({"WatchEvents": []}, "WatchEvents: empty, so nothing would be sent to ServerURL"),
        ({"ClusterName": "bad name!"}, "ClusterName: 'bad name!' may only hold"),
        ({"ClusterName": "---"}, "ClusterName: '---' does not make a usable name"),
        ({"Namespaces": ["kube-system"]}, "Namespaces: kube-system is never delivered"),
        ({"ServerURL": ["not a url"]}, "sink.url:"),
        ({"KubeURL": "https://[x"}, "KubeURL is not a valid URL (Invalid IPv6 URL)"),
        (
            {"KubeURL": "https://admin:hunter2@10.0.0.1:6443"},
            "KubeURL must not contain a user name or password (user:password@host)",
        ),
    ],
)
async def test_invalid_registrations_are_422(
    api: Api, kube_emulator: KubeEmulator, fields: dict[str, Any], message: str
) -> None:
    response = await api.post(CONTROLLER, json=registration(kube_emulator, ["http://127.0.0.1:9/"], **fields))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(message), response.json()
    assert "hunter2" not in response.text
    assert (await api.get("/v1/clusters")).json()["items"] == []


async def test_config_file_name_obeys_the_kubeconfig_dir_gate(
    api: Api, kube_emulator: KubeEmulator, settings: ServiceSettings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yaml"
    kube_emulator.write_kubeconfig(outside)
    refused = await api.post(
        CONTROLLER, json={"ClusterName": "a", "ConfigFileName": str(outside), "WatchEvents": ["pods"]}
    )
    assert refused.status_code == 422
    assert "outside MIC_KUBECONFIG_DIR" in refused.json()["detail"]

    assert settings.kubeconfig_dir is not None
    inside = settings.kubeconfig_dir / "a.yaml"
    kube_emulator.write_kubeconfig(inside)
    await register(api, {"ClusterName": "a", "ConfigFileName": str(inside), "WatchEvents": ["pods"]})
    connection = (await api.get("/v1/clusters/a")).json()["connection"]
    assert connection["type"] == "kubeconfigFile"
    assert connection["path"] == str(inside)
    listed = (await api.get(CONTROLLER)).json()
    assert listed[0]["ConfigFileName"] == str(inside)
    assert listed[0]["ServerURL"] == []


async def test_no_connection_fields_means_in_cluster(api: Api) -> None:
    # MIC does not run in a pod here: the in-cluster connection cannot be built, which says so.
    response = await api.post(CONTROLLER, json={"ClusterName": "here", "WatchEvents": ["pods"]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("not running inside a Kubernetes pod")


async def test_cache_routes_answer_with_the_original_status_codes(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    kube_emulator.create(service("web"))
    kube_emulator.create(service("api"))
    kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    await register(api, registration(kube_emulator, []))
    base = "/cic/nitro/v1/config"

    listed = await api.get(f"{base}/services/clusterabc")
    assert listed.status_code == 200
    assert listed.json()["kind"] == "ServiceList"
    assert sorted(o["metadata"]["name"] for o in listed.json()["items"]) == ["api", "web"]
    as_registered = await api.get(f"{base}/services/ClusterABC/default/web")  # the original's spelling
    assert as_registered.status_code == 200, as_registered.text
    in_namespace = await api.get(f"{base}/services/clusterabc/default")
    assert in_namespace.status_code == 200
    assert len(in_namespace.json()["items"]) == 2
    one = await api.get(f"{base}/services/clusterabc/default/web")
    assert one.status_code == 200
    assert one.json()["metadata"]["name"] == "web"

    empty = await api.get(f"{base}/services/clusterabc/elsewhere")
    assert empty.status_code == 204
    assert empty.content == b""
    assert (await api.get(f"{base}/ingresses/clusterabc")).status_code == 204
    missing = await api.get(f"{base}/services/clusterabc/default/nope")
    assert missing.status_code == 404
    unknown = await api.get(f"{base}/pods/nope")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "cluster 'nope' not found"}

    secrets = await api.get(f"{base}/secrets/clusterabc/default/db")
    assert secrets.json()["data"] == {"password": "<redacted>"}
    assert "aHVudGVyMg==" not in (await api.get(f"{base}/secrets/clusterabc")).text


async def test_same_tokens_as_v1(api: Api, kube_emulator: KubeEmulator) -> None:
    async with api.as_token(None) as anonymous:
        assert (await anonymous.get(CONTROLLER)).status_code == 401
        assert (await anonymous.get("/cic/nitro/v1/config/pods/x")).status_code == 401
    async with api.as_token(VIEWER_TOKEN) as viewer:
        assert (await viewer.get(CONTROLLER)).status_code == 204
        refused = await viewer.post(CONTROLLER, json=registration(kube_emulator, []))
        assert refused.status_code == 403
        assert (await viewer.request("DELETE", CONTROLLER, json={"ClusterName": "x"})).status_code == 403


async def test_v1_resource_queries_redact_secrets_too(api: Api, kube_emulator: KubeEmulator) -> None:
    kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    await api.add_cluster("eu-1", kube_emulator)
    for path in (
        "/v1/clusters/eu-1/resources/secrets",
        "/v1/clusters/eu-1/resources/secrets/default/db",
        "/v1/resources/secrets",
    ):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "aHVudGVyMg==" not in response.text, path
        assert "<redacted>" in response.text, path
