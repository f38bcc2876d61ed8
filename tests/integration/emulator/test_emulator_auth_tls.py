"""Bearer-token authentication, RBAC-style 403s and TLS with the kubeconfig's CA."""

import base64
import ssl
from typing import Any

import aiohttp
import pytest
import yaml

from mic.testing import KubeEmulator, TokenPolicy

TOKENS = {
    "t-admin": TokenPolicy.allow_all(),
    "t-pods": TokenPolicy(resources={"pods", "ingresses.networking.k8s.io"}),
    "t-team": TokenPolicy(resources={"configmaps"}, verbs={"get", "list"}, namespaces={"team"}),
}


async def request(emu: KubeEmulator, path: str, token: str | None, method: str = "GET") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(emu.url, headers=headers) as session,
        session.request(method, path, json={"metadata": {"name": "x"}}) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_missing_or_unknown_token_is_401(kube_emulators: Any) -> None:
    emu = await kube_emulators(tokens=TOKENS)
    for token in (None, "nope"):
        status, body = await request(emu, "/api/v1/pods", token)
        assert status == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    assert (await request(emu, "/version", None))[0] == 401


async def test_forbidden_messages_follow_kube(kube_emulators: Any) -> None:
    emu = await kube_emulators(tokens=TOKENS)
    assert (await request(emu, "/api/v1/pods", "t-pods"))[0] == 200
    assert (await request(emu, "/apis/networking.k8s.io/v1/namespaces/default/ingresses", "t-pods"))[0] == 200
    assert (await request(emu, "/apis", "t-pods"))[0] == 200, "discovery is open to every valid token"
    status, body = await request(emu, "/api/v1/secrets", "t-pods")
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'secrets is forbidden: User "token:t-pods" cannot list resource "secrets" '
        'in API group "" at the cluster scope'
    )
    status, body = await request(emu, "/apis/networking.k8s.io/v1/ingressclasses/x", "t-pods")
    assert status == 403
    assert body["message"] == (
        'ingressclasses.networking.k8s.io "x" is forbidden: User "token:t-pods" cannot get resource '
        '"ingressclasses" in API group "networking.k8s.io" at the cluster scope'
    )
    status, body = await request(emu, "/api/v1/namespaces/default/configmaps", "t-pods", "POST")
    assert status == 403
    assert body["message"].endswith(
        'cannot create resource "configmaps" in API group "" in the namespace "default"'
    )


async def test_verb_and_namespace_restrictions(kube_emulators: Any) -> None:
    emu = await kube_emulators(tokens=TOKENS)
    emu.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert (await request(emu, "/api/v1/namespaces/team/configmaps", "t-team"))[0] == 200
    assert (await request(emu, "/api/v1/namespaces/default/configmaps", "t-team"))[0] == 403
    assert (await request(emu, "/api/v1/configmaps", "t-team"))[0] == 403
    assert (await request(emu, "/api/v1/namespaces/team/configmaps", "t-team", "POST"))[0] == 403
    assert (await request(emu, "/api/v1/namespaces/team/configmaps?watch=1&timeoutSeconds=1", "t-team"))[
        0
    ] == 403


async def test_kubeconfig_shape(kube_emulators: Any) -> None:
    emu = await kube_emulators(name="c7", tokens=TOKENS)
    config = emu.kubeconfig()
    assert config["current-context"] == "c7"
    assert config["clusters"][0]["cluster"] == {"server": emu.url}
    assert config["users"][0]["user"] == {"token": "t-admin"}
    assert config["contexts"][0]["context"]["namespace"] == "default"
    named = yaml.safe_load(emu.kubeconfig_yaml(token="t-pods", context_name="ctx"))
    assert named["current-context"] == "ctx"
    assert named["users"][0]["user"]["token"] == "t-pods"


async def test_tls_with_kubeconfig_ca(kube_emulators: Any, tmp_path: Any) -> None:
    emu = await kube_emulators(name="secure", tls=True, tokens={"t": TokenPolicy.allow_all()})
    assert emu.url.startswith("https://127.0.0.1:")
    path = emu.write_kubeconfig(tmp_path / "secure.kubeconfig")
    assert path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    context = ssl.create_default_context(cadata=ca)
    headers = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{cluster['server']}/api/v1/namespaces", ssl=context) as response:
            assert response.status == 200
            assert next(n["metadata"]["name"] for n in (await response.json())["items"]) == "default"
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(f"{cluster['server']}/version", ssl=ssl.create_default_context()):
                pass
