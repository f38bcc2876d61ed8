"""`/v1/clusters`: registration, changes, removal, and every error a user can cause."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from mic_api_harness import Api, kubeconfig_connection, run_app

from mic.hub.status import ClusterReason
from mic.service.settings import ServiceSettings
from mic.testing.emulator import KubeEmulator, TokenPolicy

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_register_get_list_and_status_becomes_ready(api: Api, kube_emulator: KubeEmulator) -> None:
    created = await api.add_cluster("eu-1", kube_emulator, labels={"region": "eu"}, resources=["ingresses"])
    assert created["name"] == "eu-1"
    assert created["labels"] == {"region": "eu"}
    assert created["resources"] == ["ingresses"]
    assert created["connection"] == {
        "type": "kubeconfig",
        "server": kube_emulator.url,
        "context": None,
        "path": None,
        "insecureSkipTlsVerify": None,
    }
    assert created["generation"] > 0
    assert created["createdAt"]
    assert created["updatedAt"]

    ready = await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")
    assert ready["status"]["reason"] == "Connected"
    (resource,) = ready["status"]["resources"]
    assert resource["reason"] is None
    assert resource["resource"] == "ingresses.networking.k8s.io"
    assert resource["synced"] is True
    assert resource["namespaces"] is None
    assert ready["status"]["serverVersion"]

    listed = (await api.get("/v1/clusters")).json()
    assert [c["name"] for c in listed["items"]] == ["eu-1"]


async def test_duplicate_is_409_and_unknown_is_404(api: Api, kube_emulator: KubeEmulator) -> None:
    await api.add_cluster("eu-1", kube_emulator)
    again = await api.post(
        "/v1/clusters", json={"name": "eu-1", "connection": kubeconfig_connection(kube_emulator)}
    )
    assert again.status_code == 409
    assert "eu-1" in again.json()["detail"]
    body = {"connection": kubeconfig_connection(kube_emulator)}
    for method, kwargs in [
        ("GET", {}),
        ("DELETE", {}),
        ("PUT", {"json": body}),
        ("PATCH", {"json": {"labels": {}}}),
    ]:
        response = await api.request(method, "/v1/clusters/nope", **kwargs)
        assert response.status_code == 404, (method, response.text)
        assert response.json() == {"detail": "cluster 'nope' not found"}


async def test_name_must_be_a_dns_label(api: Api, kube_emulator: KubeEmulator) -> None:
    for name in ["EU", "eu_1", "-eu", "a" * 64, ""]:
        response = await api.post(
            "/v1/clusters", json={"name": name, "connection": kubeconfig_connection(kube_emulator)}
        )
        assert response.status_code == 422, name
        assert response.json()["detail"].startswith("name:")


async def test_bad_yaml_names_the_line(api: Api) -> None:
    text = "apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: [\n"
    response = await api.post(
        "/v1/clusters", json={"name": "c", "connection": {"type": "kubeconfig", "kubeconfig": text}}
    )
    assert response.status_code == 422
    assert "not valid YAML: line" in response.json()["detail"]


def kubeconfig_text(**cluster: str) -> str:
    """A one-cluster kubeconfig with the given cluster fields (no emulator needed: it is refused)."""
    document = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"insecure-skip-tls-verify": True, **cluster}}],
        "users": [{"name": "u", "user": {"token": "t0k3n-of-u"}}],
    }
    return yaml.safe_dump(document)


def token_connection(server: str) -> dict[str, Any]:
    return {"type": "token", "server": server, "token": "t0k3n-x", "insecureSkipTlsVerify": True}


def kubeconfig_text_connection(text: str) -> dict[str, Any]:
    return {"type": "kubeconfig", "kubeconfig": text}


@pytest.mark.parametrize(
    ("connection", "detail"),
    [
        (token_connection("https://[::1:6443"), "server is not a valid URL (Invalid IPv6 URL)"),
        (token_connection("https://h:99999"), "server is not a valid URL (Port out of range 0-65535)"),
        (
            token_connection("https://admin:hunter2@10.0.0.1:6443"),
            "server must not contain a user name or password (user:password@host): it would be shown "
            "wherever the server URL is; authenticate with a token or a client certificate instead",
        ),
        (
            kubeconfig_text_connection(kubeconfig_text(server="https://[x")),
            "clusters['k'].cluster.server is not a valid URL (Invalid IPv6 URL)",
        ),
        (
            kubeconfig_text_connection(kubeconfig_text(server="https://h", **{"proxy-url": "http://[x"})),
            "clusters['k'].cluster.proxy-url is not a valid URL (Invalid IPv6 URL)",
        ),
        (
            kubeconfig_text_connection(kubeconfig_text(server="https://admin:hunter2@10.0.0.1:6443")),
            "clusters['k'].cluster.server must not contain a user name or password",
        ),
        (kubeconfig_text_connection("[" * 5000 + "]" * 5000), "kubeconfig is nested too deeply"),
        (
            kubeconfig_text_connection("a: " + "{a: " * 3000 + "1" + "}" * 3000),
            "kubeconfig is nested too deeply",
        ),
    ],
    ids=[
        "token-unclosed-bracket",
        "token-port-out-of-range",
        "token-userinfo",
        "kubeconfig-unclosed-bracket",
        "kubeconfig-proxy-unclosed-bracket",
        "kubeconfig-userinfo",
        "kubeconfig-nested-lists",
        "kubeconfig-nested-mappings",
    ],
)
async def test_unusable_server_urls_and_documents_are_422(
    api: Api, connection: dict[str, Any], detail: str
) -> None:
    # Each of these used to be a 500 (ValueError, RecursionError), or, for user info, accepted
    # and then shown to every viewer.
    response = await api.post("/v1/clusters", json={"name": "c", "connection": connection})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(detail), response.text
    assert "hunter2" not in response.text
    assert (await api.get("/v1/clusters")).json()["items"] == []


async def test_missing_context_lists_the_available_ones(api: Api, kube_emulator: KubeEmulator) -> None:
    connection = kubeconfig_connection(kube_emulator, context="nope")
    response = await api.post("/v1/clusters", json={"name": "c", "connection": connection})
    assert response.status_code == 422
    assert response.json()["detail"] == "context 'nope' is not in kubeconfig text; available contexts: c1"


def exec_kubeconfig(emulator: KubeEmulator) -> str:
    config = emulator.kubeconfig()
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "/bin/echo",
            "interactiveMode": "Never",
        }
    }
    return yaml.safe_dump(config)


async def test_exec_plugins_are_refused_unless_the_operator_allows_them(
    api: Api, kube_emulator: KubeEmulator, replace_settings: Any, tmp_path: Path
) -> None:
    body = {"name": "c", "connection": {"type": "kubeconfig", "kubeconfig": exec_kubeconfig(kube_emulator)}}
    response = await api.post("/v1/clusters", json=body)
    assert response.status_code == 422
    assert "--allow-kubeconfig-exec" in response.json()["detail"]
    assert (await api.get("/v1/clusters/c")).status_code == 404

    allowed = replace_settings(
        allow_kubeconfig_exec=True, database_url=f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    )
    async with run_app(allowed) as permissive:
        assert (await permissive.post("/v1/clusters", json=body)).status_code == 201


async def test_file_references_in_kubeconfig_text_are_refused(api: Api, kube_emulator: KubeEmulator) -> None:
    config = kube_emulator.kubeconfig()
    config["users"][0]["user"] = {"tokenFile": "/etc/passwd"}
    body = {"name": "c", "connection": {"type": "kubeconfig", "kubeconfig": yaml.safe_dump(config)}}
    response = await api.post("/v1/clusters", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "refers to a file" in detail
    assert "--allow-kubeconfig-files" in detail


async def test_kubeconfig_file_inside_the_operator_directory(
    api: Api, kube_emulator: KubeEmulator, settings: ServiceSettings
) -> None:
    assert settings.kubeconfig_dir is not None
    kube_emulator.write_kubeconfig(settings.kubeconfig_dir / "eu-1.yaml")
    body = {"name": "eu-1", "connection": {"type": "kubeconfigFile", "path": "eu-1.yaml"}}
    response = await api.post("/v1/clusters", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["connection"] == {
        "type": "kubeconfigFile",
        "server": kube_emulator.url,
        "context": None,
        "path": "eu-1.yaml",
        "insecureSkipTlsVerify": None,
    }
    await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")


async def test_kubeconfig_file_cannot_escape_the_directory(
    api: Api, kube_emulator: KubeEmulator, settings: ServiceSettings, tmp_path: Path
) -> None:
    assert settings.kubeconfig_dir is not None
    outside = kube_emulator.write_kubeconfig(tmp_path / "outside.yaml")
    os.symlink(outside, settings.kubeconfig_dir / "link.yaml")
    for path in ["../outside.yaml", str(outside), "link.yaml", "sub/../../outside.yaml", "."]:
        response = await api.post(
            "/v1/clusters", json={"name": "c", "connection": {"type": "kubeconfigFile", "path": path}}
        )
        assert response.status_code == 422, path
        assert "outside MIC_KUBECONFIG_DIR" in response.json()["detail"], path
    missing = await api.post(
        "/v1/clusters", json={"name": "c", "connection": {"type": "kubeconfigFile", "path": "x.yaml"}}
    )
    assert missing.status_code == 422
    assert "no kubeconfig file 'x.yaml'" in missing.json()["detail"]


async def test_kubeconfig_file_needs_the_directory_setting(
    replace_settings: Any, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    kube_emulator.write_kubeconfig(tmp_path / "eu-1.yaml")
    async with run_app(replace_settings(kubeconfig_dir=None)) as api:
        body = {"name": "c", "connection": {"type": "kubeconfigFile", "path": str(tmp_path / "eu-1.yaml")}}
        response = await api.post("/v1/clusters", json=body)
    assert response.status_code == 422
    assert "set MIC_KUBECONFIG_DIR" in response.json()["detail"]


async def test_malformed_bodies_are_4xx(api: Api, kube_emulator: KubeEmulator) -> None:
    headers = {"Content-Type": "application/json"}
    cases: list[tuple[bytes, int, str]] = [
        (b'{"name": "c", ', 422, "not valid JSON"),
        (b"\xff\xfe garbage", 422, "not valid JSON"),
        (b'{"name": 5, "connection": {"type": "inCluster"}}', 422, "name: Input should be a valid string"),
        (b'{"name": "c", "labels": [1], "connection": {"type": "inCluster"}}', 422, "labels"),
        (b'{"name": "c", "connection": {"type": "magic"}}', 422, "connection"),
        (b'{"name": "c", "connection": {}}', 422, "connection"),
        (b'{"name": "c", "connection": {"type": "token"}}', 422, "connection.token.server: Field required"),
        (b'{"name": "c", "connection": {"type": "inCluster"}, "extra": 1}', 422, "extra: Extra inputs"),
        (b'{"name": "c", "labels": {"bad key!": "v"}, "connection": {"type": "inCluster"}}', 422, "labels"),
        (b'{"name": "c", "resources": ["in gress"], "connection": {"type": "inCluster"}}', 422, "resources"),
        (b"[]", 422, ""),
        (b"", 422, "Field required"),
    ]
    for body, status, fragment in cases:
        response = await api.post("/v1/clusters", content=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert fragment in response.json()["detail"], (body, response.text)
    huge = {"name": "c", "connection": {"type": "kubeconfig", "kubeconfig": "x" * (2 * 1024 * 1024)}}
    too_large = await api.post("/v1/clusters", json=huge)
    assert too_large.status_code == 413
    assert "larger than" in too_large.json()["detail"]

    # no Content-Length (chunked): limited too
    async def chunks() -> Any:
        for _ in range(3):
            yield b"x" * (600 * 1024)

    chunked = await api.post("/v1/clusters", content=chunks(), headers=headers)
    assert chunked.status_code == 413


async def test_in_cluster_outside_a_pod_is_422(api: Api) -> None:
    response = await api.post("/v1/clusters", json={"name": "c", "connection": {"type": "inCluster"}})
    assert response.status_code == 422
    assert "not running inside a Kubernetes pod" in response.json()["detail"]


async def test_unreachable_cluster_is_accepted_and_reported(api: Api) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    body = {"name": "gone", "connection": {"type": "token", "server": server, "token": "t0k3n-unreachable"}}
    response = await api.post("/v1/clusters", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["connection"]["server"] == server
    cluster = await api.wait_cluster("gone", lambda c: c["status"]["state"] == "unreachable")
    assert cluster["status"]["lastError"]
    assert cluster["status"]["reason"] == "ConnectionRefused"
    metrics = (await api.get("/metrics")).text
    assert 'mic_cluster_reason{cluster="gone",reason="ConnectionRefused"} 1.0' in metrics
    assert 'mic_cluster_state{cluster="gone",state="unreachable"} 1.0' in metrics


async def test_unauthorized_cluster_is_accepted_and_reported(api: Api, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="locked", tokens={"good-token": TokenPolicy.allow_all()})
    body = {
        "name": "locked",
        "connection": {"type": "token", "server": emulator.url, "token": "wrong-token-x"},
    }
    assert (await api.post("/v1/clusters", json=body)).status_code == 201
    cluster = await api.wait_cluster("locked", lambda c: c["status"]["state"] == "unauthorized")
    assert "401" in cluster["status"]["lastError"]
    assert cluster["status"]["reason"] == "Unauthorized"


async def test_a_forbidden_resource_has_a_reason_in_the_cluster_and_in_the_resource(
    api: Api, kube_emulators: Any
) -> None:
    emulator = await kube_emulators(name="rbac", tokens={"only-pods": TokenPolicy(resources={"pods"})})
    body = {
        "name": "rbac",
        "connection": {"type": "token", "server": emulator.url, "token": "only-pods"},
        "resources": ["pods", "configmaps"],
    }
    assert (await api.post("/v1/clusters", json=body)).status_code == 201
    cluster = await api.wait_cluster("rbac", lambda c: c["status"]["state"] == "degraded")
    assert cluster["status"]["reason"] == "ResourceForbidden"
    reasons = {r["resource"]: r["reason"] for r in cluster["status"]["resources"]}
    assert reasons["configmaps"] == "ResourceForbidden"


async def test_openapi_lists_every_reason(api: Api) -> None:
    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["ClusterReason"]["enum"] == [reason.value for reason in ClusterReason]
    assert "TLSVerifyFailed" in schemas["ClusterReason"]["description"]
    status = schemas["ClusterStatusView"]
    assert status["properties"]["reason"]["$ref"] == "#/components/schemas/ClusterReason"
    assert "reason" in status["required"]


async def test_put_replaces_and_patch_merges(api: Api, kube_emulator: KubeEmulator) -> None:
    created = await api.add_cluster(
        "eu-1", kube_emulator, labels={"a": "1", "b": "2"}, resources=["ingresses"]
    )
    replaced = await api.put(
        "/v1/clusters/eu-1",
        json={
            "connection": kubeconfig_connection(kube_emulator),
            "labels": {"c": "3"},
            "resources": ["services"],
        },
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["labels"] == {"c": "3"}
    assert body["resources"] == ["services"]
    assert body["generation"] > created["generation"]
    assert body["createdAt"] == created["createdAt"]

    renamed = await api.put(
        "/v1/clusters/eu-1", json={"name": "other", "connection": kubeconfig_connection(kube_emulator)}
    )
    assert renamed.status_code == 422
    assert "cannot be renamed" in renamed.json()["detail"]

    patched = await api.patch(
        "/v1/clusters/eu-1",
        json={"labels": {"c": None, "d": "4"}, "resources": ["ingresses", "services"]},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["labels"] == {"d": "4"}
    assert patched.json()["resources"] == ["ingresses", "services"]

    # RFC 7386: null removes the member: no labels left, the default (no) resources
    cleared = await api.patch("/v1/clusters/eu-1", json={"labels": None, "resources": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["labels"] == {}
    assert cleared.json()["resources"] == []
    no_connection = await api.patch("/v1/clusters/eu-1", json={"connection": None})
    assert no_connection.status_code == 422
    assert "a cluster needs one" in no_connection.json()["detail"]

    # merging into the connection keeps the stored kubeconfig: only the context changes
    wrong_context = await api.patch("/v1/clusters/eu-1", json={"connection": {"context": "nope"}})
    assert wrong_context.status_code == 422
    assert "context 'nope' is not in kubeconfig text" in wrong_context.json()["detail"]
    same_context = await api.patch("/v1/clusters/eu-1", json={"connection": {"context": "c1"}})
    assert same_context.status_code == 200
    assert same_context.json()["connection"]["context"] == "c1"

    # a connection of another type replaces the stored one
    server = kube_emulator.url
    switched = await api.patch("/v1/clusters/eu-1", json={"connection": {"type": "token", "server": server}})
    assert switched.status_code == 200, switched.text
    assert switched.json()["connection"] == {
        "type": "token",
        "server": server,
        "context": None,
        "path": None,
        "insecureSkipTlsVerify": False,
    }

    bad = await api.patch("/v1/clusters/eu-1", json={"labels": {"ok": 5}})
    assert bad.status_code == 422
    not_a_patch = await api.patch("/v1/clusters/eu-1", json={"name": "x"})
    assert not_a_patch.status_code == 422


async def test_delete_removes_it(api: Api, kube_emulator: KubeEmulator) -> None:
    await api.add_cluster("eu-1", kube_emulator, resources=["ingresses"])
    response = await api.delete("/v1/clusters/eu-1")
    assert response.status_code == 204
    assert response.content == b""
    assert (await api.get("/v1/clusters/eu-1")).status_code == 404
    assert api.service.hub.cluster_names() == []
    assert (await api.delete("/v1/clusters/eu-1")).status_code == 404
