"""An API server URL with a query, a fragment or user info is refused, whatever brings it.

API paths are appended to the server URL as text: `http://h/x#` made MIC send `GET /x` (the
rest became a fragment) and `http://h/x?q=` sent `/x?q=/version`, so whoever sets a cluster's
server could point MIC's requests at any path of any host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from mic.api.app import create_app
from mic.kube.client import KubeClient
from mic.kube.direct import from_token
from mic.kube.errors import ConfigError
from mic.kube.kubeconfig import from_kubeconfig_text
from mic.service.settings import ServiceSettings

QUERY_OR_FRAGMENT = (
    "must not contain a query (?...) or a fragment (#...): API paths are appended to the server "
    "URL; remove everything from the first ? or #"
)
USER_INFO = "must not contain a user name or password (user:password@host)"

REFUSED = [
    ("http://127.0.0.1:19002/x#", QUERY_OR_FRAGMENT),
    ("http://127.0.0.1:19002/x?q=", QUERY_OR_FRAGMENT),
    ("http://127.0.0.1:19002/x?", QUERY_OR_FRAGMENT),
    ("https://h:6443#frag", QUERY_OR_FRAGMENT),
    ("https://h:6443/?a=b", QUERY_OR_FRAGMENT),
    ("https://h:6443?@evil.example", QUERY_OR_FRAGMENT),
    ("https://admin:hunter2@h:6443", USER_INFO),
    ("https://token@h:6443/x#", USER_INFO),
]


def kubeconfig(server: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "k", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "t0k3n"}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "current-context": "c",
        }
    )


@pytest.mark.parametrize(("server", "expected"), REFUSED)
def test_token_connection_refuses(server: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_token(server, token="t0k3n")
    assert str(caught.value).startswith(f"server {expected}")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("server", "expected"), REFUSED)
def test_kubeconfig_refuses(server: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_kubeconfig_text(kubeconfig(server))
    assert str(caught.value).startswith(f"clusters['k'].cluster.server {expected}")
    assert "hunter2" not in str(caught.value)


def test_kubeconfig_server_without_scheme_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"clusters\['k'\].cluster.server must not contain a query"):
        from_kubeconfig_text(kubeconfig("h:6443/x?q="))


@pytest.mark.parametrize(
    "server",
    ["https://h:6443", "https://h:6443/", "https://rancher.example/k8s/clusters/c-1", "http://[::1]:8080"],
)
def test_a_path_prefix_is_still_accepted(server: str) -> None:
    assert from_token(server, token="t0k3n").server == server.rstrip("/")
    assert from_kubeconfig_text(kubeconfig(server)).server == server.rstrip("/")


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server that records the path and query of each request."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.json_response({"gitVersion": "v1.30.0"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def test_requests_go_under_the_server_path(recorder: tuple[str, list[str]]) -> None:
    base, seen = recorder
    client = KubeClient(from_token(f"{base}/x", token="t0k3n"))
    try:
        await client.server_version()
    finally:
        await client.close()
    assert seen == ["/x/version"]
    for server in (f"{base}/x#", f"{base}/x?q="):
        with pytest.raises(ConfigError):
            from_token(server, token="t0k3n")
    assert seen == ["/x/version"]  # nothing sent for the refused ones


async def test_the_rest_api_answers_422_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "kubeconfigs").mkdir()
    admin_token = "admin-token-s3cr3t-0123456789"
    settings = ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}",
        kubeconfig_dir=tmp_path / "kubeconfigs",
        admin_token=admin_token,
        viewer_token="viewer-token-s3cr3t-0123456789",
        announce_generated_token=False,
    )
    server = "http://127.0.0.1:19002/x#"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "token", "server": server, "token": "t0k3n"}, "server"),
        ({"type": "kubeconfig", "kubeconfig": kubeconfig(server)}, "clusters['k'].cluster.server"),
    ]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://mic",
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as api,
    ):
        for connection, field in cases:
            response = await api.post("/v1/clusters", json={"name": "c", "connection": connection})
            assert response.status_code == 422, response.text
            assert f"{field} {QUERY_OR_FRAGMENT}" in response.json()["detail"], response.text
        assert (await api.get("/v1/clusters")).json()["items"] == []
