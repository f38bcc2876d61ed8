"""Tokens, roles, credential redaction, probes, metrics and the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mic_api_harness import VIEWER_TOKEN, Api, kubeconfig_connection, run_app

from mic.api.routes.original import ORIGIN_LABEL
from mic.service.settings import ServiceSettings
from mic.store import ClusterRecord
from mic.testing.emulator import KubeEmulator, TokenPolicy

pytestmark = pytest.mark.integration


async def test_tokens_and_roles(api: Api, kube_emulator: KubeEmulator) -> None:
    body = {"name": "eu-1", "connection": kubeconfig_connection(kube_emulator)}
    async with (
        api.as_token(None) as anonymous,
        api.as_token("wrong") as wrong,
        api.as_token(VIEWER_TOKEN) as viewer,
    ):
        missing = await anonymous.get("/v1/clusters")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert (await wrong.get("/v1/clusters")).status_code == 401
        assert (await anonymous.post("/v1/clusters", json=body)).status_code == 401
        forbidden = await viewer.post("/v1/clusters", json=body)
        assert forbidden.status_code == 403
        assert "admin" in forbidden.json()["detail"]
        assert (await api.post("/v1/clusters", json=body)).status_code == 201
        assert (await viewer.get("/v1/clusters/eu-1")).status_code == 200
        assert (await viewer.get("/v1/resources/ingresses")).status_code == 200
        assert (await viewer.delete("/v1/clusters/eu-1")).status_code == 403
        assert (await viewer.patch("/v1/clusters/eu-1", json={})).status_code == 403
        for path in ["/healthz", "/readyz", "/openapi.json", "/swagger/", "/metrics"]:
            assert (await anonymous.get(path)).status_code == 200, path


async def test_tokens_file(replace_settings: Any, tmp_path: Any) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# role:name:token\nviewer:dash:file-viewer-token\nadmin:ci:file-admin-token\n")
    async with run_app(
        replace_settings(admin_token=None, viewer_token=None, tokens_file=tokens), token=None
    ) as api:
        async with api.as_token("file-viewer-token") as viewer, api.as_token("file-admin-token") as admin:
            assert (await viewer.get("/v1/clusters")).status_code == 200
            assert (await viewer.delete("/v1/clusters/x")).status_code == 403
            assert (await admin.delete("/v1/clusters/x")).status_code == 404
        assert await api.service.store.list_tokens() == [], "configured tokens are never stored"


async def test_a_token_is_generated_once_when_none_is_configured(replace_settings: Any) -> None:
    settings: ServiceSettings = replace_settings(admin_token=None, viewer_token=None)
    for _ in range(2):
        async with run_app(settings, token=None) as api:
            (record,) = await api.service.store.list_tokens()
            assert record.role == "admin"
    async with run_app(settings, token=None) as api:
        assert await api.service.store.list_tokens() == [record], "kept while nothing is configured"


async def test_configuring_tokens_revokes_the_generated_one(
    replace_settings: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    unconfigured = replace_settings(admin_token=None, viewer_token=None, announce_generated_token=True)
    async with run_app(unconfigured, token=None):
        printed = capsys.readouterr().err
    generated = next(line.strip() for line in printed.splitlines() if line.startswith("    "))
    async with run_app(replace_settings(viewer_token=None), token=None) as api:
        assert await api.service.store.list_tokens() == []
        assert "generated at first start is revoked" in caplog.text
        async with api.as_token(generated) as old:
            assert (await old.get("/v1/clusters")).status_code == 401


async def test_generated_token_is_printed_and_works(
    replace_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = replace_settings(admin_token=None, viewer_token=None, announce_generated_token=True, port=8123)
    async with run_app(settings, token=None) as api:
        printed = capsys.readouterr().err
        assert "http://127.0.0.1:8123/swagger/" in printed
        token = next(line.strip() for line in printed.splitlines() if line.startswith("    "))
        async with api.as_token(token) as admin:
            assert (await admin.get("/v1/clusters")).status_code == 200
    async with run_app(settings, token=None):
        assert "swagger" not in capsys.readouterr().err, "shown only at first start"


async def test_credentials_never_come_back_nor_reach_the_log(
    api: Api, kube_emulators: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything MIC and the HTTP stack log, at DEBUG. (aiosqlite's own DEBUG log prints SQL
    # parameters; `mic serve` keeps that logger at INFO or above, see quiet_noisy_loggers.)
    caplog.set_level(logging.DEBUG, logger="mic")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    caplog.set_level(logging.DEBUG, logger="httpx")
    secret_token = "s3cr3t-cluster-token-abcdef"
    emulator = await kube_emulators(name="c1", tokens={secret_token: TokenPolicy.allow_all()})
    kubeconfig = emulator.kubeconfig_yaml(token=secret_token)
    ca_marker = "-----BEGIN CERTIFICATE-----"
    await api.post(
        "/v1/clusters", json={"name": "kc", "connection": {"type": "kubeconfig", "kubeconfig": kubeconfig}}
    )
    await api.post(
        "/v1/clusters",
        json={"name": "tok", "connection": {"type": "token", "server": emulator.url, "token": secret_token}},
    )
    await api.wait_cluster("kc", lambda c: c["status"]["state"] == "ready")
    # a validation error must not echo the submitted connection
    bad = await api.post(
        "/v1/clusters",
        json={"name": "bad", "connection": {"type": "token", "token": secret_token, "caData": ca_marker}},
    )
    assert bad.status_code == 422
    bad_patch = await api.patch("/v1/clusters/tok", json={"connection": {"token": 5}})
    assert bad_patch.status_code == 422
    responses = [
        bad,
        bad_patch,
        await api.get("/v1/clusters"),
        await api.get("/v1/clusters/kc"),
        await api.get("/v1/clusters/tok"),
        await api.patch("/v1/clusters/tok", json={"labels": {"x": "y"}}),
        await api.put(
            "/v1/clusters/kc", json={"connection": {"type": "kubeconfig", "kubeconfig": kubeconfig}}
        ),
        await api.get("/metrics"),
    ]
    for response in responses:
        assert secret_token not in response.text
        assert "apiVersion: v1" not in response.text
        assert ca_marker not in response.text
    assert secret_token not in caplog.text
    for cluster in (await api.get("/v1/clusters")).json()["items"]:
        assert set(cluster["connection"]) == {"type", "server", "context", "path", "insecureSkipTlsVerify"}


async def test_a_password_in_a_stored_server_url_is_never_shown(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # Such URLs are refused now (test_clusters_api), but a cluster stored before that still
    # has one: it must neither run with it nor show it to a viewer, in /v1 or the original API.
    caplog.set_level(logging.DEBUG, logger="mic")
    server = "https://admin:hunter2@127.0.0.1:1"
    connection = {"type": "token", "server": server, "token": "t0k3n-old", "insecureSkipTlsVerify": True}
    await api.service.store.create_cluster(
        ClusterRecord(name="old", connection=connection, labels={ORIGIN_LABEL: "old"})
    )
    await api.service.supervisor.reconcile("old")
    async with api.as_token(VIEWER_TOKEN) as viewer:
        cluster = await viewer.get("/v1/clusters/old")
        controllers = await viewer.get("/cic/nitro/v1/config/controller")
    assert cluster.json()["connection"]["server"] == "https://admin:***@127.0.0.1:1"
    assert cluster.json()["status"]["state"] == "unreachable"
    assert cluster.json()["status"]["lastError"].startswith(
        "invalid connection: server must not contain a user name or password"
    )
    assert controllers.json()[0]["KubeURL"] == "https://admin:***@127.0.0.1:1"
    for response in (cluster, controllers):
        assert "hunter2" not in response.text
    assert "hunter2" not in caplog.text


async def test_readyz_and_metrics(api: Api, kube_emulator: KubeEmulator) -> None:
    assert (await api.get("/readyz")).json() == {"status": "ok"}
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    kube_emulator.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
    )
    await api.add_cluster("eu-1", kube_emulator, resources=["configmaps"])
    await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")
    text = (await api.get("/metrics")).text
    assert 'mic_clusters{state="ready"} 1.0' in text
    assert 'mic_informer_objects{cluster="eu-1",resource="configmaps"} 1.0' in text
    assert 'mic_events_observed_total{cluster="eu-1",resource="configmaps"}' in text


async def test_readyz_is_503_when_the_store_does_not_answer(api: Api) -> None:
    await api.service.store.close()

    async def broken_ping() -> bool:
        return False

    api.service.store.ping = broken_ping  # type: ignore[method-assign]
    response = await api.get("/readyz")
    assert response.status_code == 503


async def test_openapi_documents_every_route_with_bearer_auth(api: Api) -> None:
    document = (await api.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            if path.startswith("/v1"):
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
    for name in ["ClusterSpec", "Cluster", "ObjectList", "MultiClusterList", "ClusterPatch", "ErrorBody"]:
        assert document["components"]["schemas"][name].get("examples"), name
    swagger = await api.get("/swagger/")
    assert "swagger-ui" in swagger.text
