"""An exec plugin that rotates its client certificate: MIC stops using connections that still
present the old one (a real TLS server that authenticates each request by the certificate its
connection shook hands with, as kube-apiserver does)."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from mic.kube.client import KubeClient
from mic.kube.connection import ClusterConnection
from mic.kube.errors import ApiError, ConnectionFailure
from mic.kube.exec_plugin import ExecPlugin
from mic.kube.kubeconfig import load_kubeconfig

Certs = Any  # conftest.Certs
Kubeconfig = Callable[..., dict[str, Any]]

ROTATING_PLUGIN = """\
#!{python}
# Prints the client certificate and key whose paths the file `current` names.
import json, pathlib
crt, key = pathlib.Path({current!r}).read_text().split()
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {{"clientCertificateData": pathlib.Path(crt).read_text(),
                             "clientKeyData": pathlib.Path(key).read_text()}}}}))
"""


@dataclass
class CertificateServer:
    """Answers GET /api with who the connection's certificate says the client is, or 401 for a
    common name in `revoked`; `seen` lists the name of each request, `ports` the client port of
    its connection."""

    url: str = ""
    revoked: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)


@pytest_asyncio.fixture
async def server(certs: Certs) -> AsyncIterator[CertificateServer]:
    state = CertificateServer()

    async def api(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        name = next((v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"), "")
        state.seen.append(name)
        state.ports.append(request.transport.get_extra_info("peername")[1] if request.transport else 0)
        if name in state.revoked:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized",
                      "message": "Unauthorized", "code": 401}  # fmt: skip
            return web.json_response(status, status=401)
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "user": name})

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1"}}}\n')
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)  # the stream stays open until the client goes
        return response

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_crt, certs.server_key)
    context.load_verify_locations(certs.ca_crt)
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get("/api", api)
    app.router.add_get("/api/v1/configmaps", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"https://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@dataclass
class Rotating:
    """A `KubeClient` whose exec plugin hands out alice's certificate until `rotate()`."""

    client: KubeClient
    connection: ClusterConnection
    current: Path
    certs: Certs

    def rotate(self) -> None:
        """From now on the plugin hands out bob's certificate."""
        self.current.write_text(f"{self.certs.bob_crt} {self.certs.bob_key}")


@pytest_asyncio.fixture
async def rotating(
    server: CertificateServer, certs: Certs, kubeconfig: Kubeconfig, tmp_path: Path
) -> AsyncIterator[Rotating]:
    current = tmp_path / "current"
    current.write_text(f"{certs.client_crt} {certs.client_key}")
    plugin = tmp_path / "plugin"
    plugin.write_text(ROTATING_PLUGIN.format(python=sys.executable, current=str(current)))
    plugin.chmod(0o755)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                     "interactiveMode": "Never"}}  # fmt: skip
    cluster = {"server": server.url, "certificate-authority": str(certs.ca_crt),
               "tls-server-name": "kubernetes.test"}  # fmt: skip
    connection = load_kubeconfig(kubeconfig(cluster=cluster, user=user))
    client = KubeClient(connection)
    yield Rotating(client, connection, current, certs)
    await client.close()


async def after_refresh_grace() -> None:
    """A 401 within a second of a plugin run is taken for a request sent before that run, and
    does not run the plugin again."""
    await asyncio.sleep(1.05)


async def test_a_rotated_certificate_is_not_sent_over_old_connections(
    server: CertificateServer, rotating: Rotating
) -> None:
    client = rotating.client
    assert (await client.get_json("/api"))["user"] == "alice"
    assert (await client.get_json("/api"))["user"] == "alice"  # over the pooled connection
    await after_refresh_grace()
    rotating.rotate()
    server.revoked.add("alice")
    assert (await client.get_json("/api"))["user"] == "bob"
    assert server.seen == ["alice", "alice", "alice", "bob"]
    assert server.ports[3] not in server.ports[:3]  # a new connection
    assert (await client.get_json("/api"))["user"] == "bob"


async def test_a_rotation_ends_watches_opened_with_the_old_certificate(
    server: CertificateServer, rotating: Rotating
) -> None:
    """The informer then watches again from its last resourceVersion, with the new certificate."""
    client = rotating.client
    async with client.watch("/api/v1/configmaps", {}) as stream:
        assert [event["type"] for event in await stream.next_batch() or []] == ["BOOKMARK"]
        await after_refresh_grace()
        rotating.rotate()
        server.revoked.add("alice")
        assert (await client.get_json("/api"))["user"] == "bob"
        try:
            ended = await asyncio.wait_for(stream.next_batch(), timeout=5)
        except ConnectionFailure:
            ended = None
        assert ended is None


async def test_the_same_certificate_again_keeps_the_connections(
    server: CertificateServer, rotating: Rotating
) -> None:
    """A plugin run that returns the certificate already in use (a 401 for another reason, an
    expiry refresh) does not cut open watches."""
    authenticator = rotating.connection.authenticator
    assert isinstance(authenticator, ExecPlugin)
    await rotating.client.get_json("/api")
    generation = authenticator.certificate_generation
    await after_refresh_grace()
    server.revoked.add("alice")
    with pytest.raises(ApiError) as caught:
        await rotating.client.get_json("/api")  # 401, the plugin runs again, same certificate: 401
    assert caught.value.status == 401
    assert authenticator.certificate_generation == generation
    assert server.seen == ["alice", "alice", "alice"]
    assert len(set(server.ports)) == 1  # one connection throughout
