"""`sink.tls` against real HTTPS recipients: a private CA, mTLS, another name to verify.

The recipients are aiohttp servers on 127.0.0.1 with certificates made by the openssl CLI; MIC's
side is the real `WebhookClient` (pool, TLS, classification) posting with the sink's settings,
and the real API app on SQLite for what is stored and shown. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from mic.api.app import create_app
from mic.delivery.sink import Outcome, SendResult, WebhookClient
from mic.routing.spec import WebhookSink
from mic.service.settings import ServiceSettings
from mic.testing.objects import configmap

pytestmark = pytest.mark.integration

TOKEN = "admin-token-s3cr3t-0123456789"
NAME_ONLY = "recipient.test"  # the only name in the `named` server certificate (no IP)


# -- certificates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    cert: str
    key: str
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class Pki:
    server_ca: str
    server_ip: Pair  # for 127.0.0.1, signed by server_ca
    server_named: Pair  # for recipient.test only, signed by server_ca
    client_ca: str
    client_a: Pair  # CN=sink-a, signed by client_ca
    client_b: Pair  # CN=sink-b, signed by client_ca
    stranger: Pair  # CN=stranger, signed by a CA the recipients do not trust


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(name: str, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=cwd)


def _ca(name: str, cwd: Path) -> str:
    _key(f"{name}.key", cwd)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-out", f"{name}.crt", cwd=cwd,
    )  # fmt: skip
    return (cwd / f"{name}.crt").read_text()


def _leaf(name: str, ca: str, extensions: str, cwd: Path) -> Pair:
    _key(f"{name}.key", cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd,
    )  # fmt: skip
    cert, key = cwd / f"{name}.crt", cwd / f"{name}.key"
    return Pair(cert.read_text(), key.read_text(), cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    cwd = tmp_path_factory.mktemp("pki")
    server = "extendedKeyUsage=serverAuth\nsubjectAltName="
    client = "extendedKeyUsage=clientAuth\n"
    server_ca, client_ca = _ca("server-ca", cwd), _ca("client-ca", cwd)
    _ca("other-ca", cwd)
    return Pki(
        server_ca=server_ca,
        server_ip=_leaf("server-ip", "server-ca", server + "IP:127.0.0.1\n", cwd),
        server_named=_leaf("server-named", "server-ca", server + f"DNS:{NAME_ONLY}\n", cwd),
        client_ca=client_ca,
        client_a=_leaf("sink-a", "client-ca", client, cwd),
        client_b=_leaf("sink-b", "client-ca", client, cwd),
        stranger=_leaf("stranger", "other-ca", client, cwd),
    )


# -- an HTTPS recipient that records who called on which connection --------------------------------


@dataclass(frozen=True)
class Seen:
    client_cn: str | None  # the client certificate's common name (mTLS), None without one
    connection: tuple[Any, ...]  # the client's (address, port): one per TCP connection
    host: str  # the Host header


@dataclass
class HttpsRecipient:
    server: Pair
    client_ca: str | None = None  # set: a client certificate signed by it is required
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> HttpsRecipient:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server.cert_file, self.server.key_file)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.client_ca)
        context.sni_callback = self._record_sni
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        self.url = f"https://127.0.0.1:{runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _record_sni(self, _socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.sni.append(name)

    async def _handle(self, request: web.Request) -> web.Response:
        transport = request.transport
        assert transport is not None
        peer_cert = transport.get_extra_info("peercert")
        cn = dict(rdn[0] for rdn in peer_cert["subject"])["commonName"] if peer_cert else None
        self.seen.append(Seen(cn, tuple(transport.get_extra_info("peername")), request.host))
        return web.Response(status=204)


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    running = WebhookClient()
    try:
        yield running
    finally:
        await running.close()


async def deliver(client: WebhookClient, url: str, **tls: Any) -> SendResult:
    """Post the way a lane posts for a sink built from this JSON (`tls` as the API takes it)."""
    sink = WebhookSink.from_json({"url": url, "tls": tls} if tls else {"url": url})
    return await client.post(sink.url, b"{}", {"Content-Type": "application/json"}, 5.0, tls=sink.tls)


def a_certificate_problem(result: SendResult) -> bool:
    return result.outcome is Outcome.RETRY and result.error is not None and "certificate" in result.error


# -- delivery -------------------------------------------------------------------------------------


async def test_a_private_ca_recipient_is_reached_with_ca_data_only(pki: Pki, client: WebhookClient) -> None:
    async with HttpsRecipient(pki.server_ip) as recipient:
        trusted = await deliver(client, recipient.url, caData=pki.server_ca)
        assert (trusted.outcome, trusted.status_code) == (Outcome.DELIVERED, 204), trusted.error
        # Same origin, default settings: the connection verified against the sink's CA is not
        # reused, and the system CAs do not trust the recipient.
        untrusted = await deliver(client, recipient.url)
        assert a_certificate_problem(untrusted), untrusted
        assert "sink.tls.caData" in str(untrusted.error)
        other_ca = await deliver(client, recipient.url, caData=pki.client_ca)
        assert a_certificate_problem(other_ca), other_ca
        assert len(recipient.seen) == 1


async def test_an_mtls_recipient_accepts_the_client_certificate_and_refuses_without(
    pki: Pki, client: WebhookClient
) -> None:
    async with HttpsRecipient(pki.server_ip, client_ca=pki.client_ca) as recipient:
        with_cert = await deliver(
            client,
            recipient.url,
            caData=pki.server_ca,
            clientCertificateData=pki.client_a.cert,
            clientKeyData=pki.client_a.key,
        )
        assert (with_cert.outcome, with_cert.status_code) == (Outcome.DELIVERED, 204), with_cert.error
        assert [seen.client_cn for seen in recipient.seen] == ["sink-a"]
        without = await deliver(client, recipient.url, caData=pki.server_ca)
        assert a_certificate_problem(without), without
        stranger = await deliver(
            client,
            recipient.url,
            caData=pki.server_ca,
            clientCertificateData=pki.stranger.cert,
            clientKeyData=pki.stranger.key,
        )
        assert stranger.outcome is Outcome.RETRY, stranger
        assert len(recipient.seen) == 1


@pytest.fixture
def alerting_recipient(pki: Pki) -> Iterator[str]:
    """An mTLS server that, like nginx or a load balancer, answers a bad client certificate with
    a TLS alert (asyncio servers just drop the connection); its URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_ip.cert_file, pki.server_ip.key_file)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=pki.client_ca)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            with raw:
                raw.settimeout(5)
                tls = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                try:
                    tls.do_handshake()
                    tls.recv(65536)  # with TLS 1.3 the client certificate is checked here
                except (OSError, ssl.SSLError):
                    pass
                try:  # close as nginx does (lingering): the alert is not lost to a reset
                    raw.shutdown(socket.SHUT_WR)
                    while raw.recv(65536):
                        pass
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def test_a_refused_client_certificate_reads_as_such(
    pki: Pki, client: WebhookClient, alerting_recipient: str
) -> None:
    result = await deliver(
        client,
        alerting_recipient,
        caData=pki.server_ca,
        clientCertificateData=pki.stranger.cert,
        clientKeyData=pki.stranger.key,
    )
    assert a_certificate_problem(result), result
    assert "refused MIC's client certificate" in str(result.error)


async def test_server_name_is_verified_and_sent_instead_of_the_url_host(
    pki: Pki, client: WebhookClient
) -> None:
    async with HttpsRecipient(pki.server_named) as recipient:
        by_ip = await deliver(client, recipient.url, caData=pki.server_ca)
        assert a_certificate_problem(by_ip), by_ip
        assert "sink.tls.serverName" in str(by_ip.error)
        named = await deliver(client, recipient.url, caData=pki.server_ca, serverName=NAME_ONLY)
        assert (named.outcome, named.status_code) == (Outcome.DELIVERED, 204), named.error
        assert recipient.sni[-1] == NAME_ONLY
        assert recipient.seen[-1].host == recipient.url.split("/")[2]  # Host stays the URL's


async def test_two_sinks_with_different_client_certificates_never_share_a_connection(
    pki: Pki, client: WebhookClient
) -> None:
    sinks = {
        pair_name: {"caData": pki.server_ca, "clientCertificateData": pair.cert, "clientKeyData": pair.key}
        for pair_name, pair in (("sink-a", pki.client_a), ("sink-b", pki.client_b))
    }
    async with HttpsRecipient(pki.server_ip, client_ca=pki.client_ca) as recipient:
        sent: list[str] = []
        for name in ["sink-a", "sink-b"] * 4:
            result = await deliver(client, recipient.url, **sinks[name])
            assert result.outcome is Outcome.DELIVERED, result.error
            sent.append(name)
        assert [seen.client_cn for seen in recipient.seen] == sent
        by_connection: dict[tuple[Any, ...], set[str | None]] = {}
        for seen in recipient.seen:
            by_connection.setdefault(seen.connection, set()).add(seen.client_cn)
        assert all(len(names) == 1 for names in by_connection.values()), by_connection
        # ... and each sink's connection is kept alive and reused (one handshake per sink).
        assert len(by_connection) == 2
        assert len(recipient.sni) == 2
    assert len(client._pool._contexts) == 2  # one SSL context per distinct settings, not per request


# -- the API ---------------------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}",
        admin_token=TOKEN,
        resource_sync_timeout=5.0,
        announce_generated_token=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://mic", headers=headers) as http:
            yield http, app.state.service


def subscription(url: str = "https://127.0.0.1:9/hook", **tls: Any) -> dict[str, Any]:
    return {"name": "lb", "filter": {"resources": ["ingresses"]}, "sink": {"url": url, "tls": tls}}


@pytest.mark.parametrize(
    ("tls", "field", "words"),
    [
        ({"caData": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "caData", "OpenSSL"),
        ({"caData": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}, "caData", "base64"),
        ({"clientCertificateData": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
          "clientKeyData": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
         "clientCertificateData", "OpenSSL"),
        ({"serverName": "lb.example:443"}, "serverName", "host name"),
        ({"insecureSkipVerify": True}, "insecureSkipVerify", "Extra inputs"),
    ],
)  # fmt: skip
async def test_bad_tls_settings_are_a_4xx_naming_the_field(
    api: tuple[httpx.AsyncClient, Any], tls: dict[str, Any], field: str, words: str
) -> None:
    http, _ = api
    response = await http.post("/v1/subscriptions", json=subscription(**tls))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"sink.tls.{field}" in detail
    assert words in detail


async def test_a_mismatched_key_and_an_http_url_are_refused(
    api: tuple[httpx.AsyncClient, Any], pki: Pki
) -> None:
    http, _ = api
    mismatched = subscription(clientCertificateData=pki.client_a.cert, clientKeyData=pki.client_b.key)
    response = await http.post("/v1/subscriptions", json=mismatched)
    assert response.status_code == 422
    assert "sink.tls.clientKeyData" in response.json()["detail"]
    assert pki.client_b.key.splitlines()[1] not in response.text
    plain = await http.post(
        "/v1/subscriptions", json=subscription("http://127.0.0.1:9/hook", caData=pki.server_ca)
    )
    assert plain.status_code == 422
    assert plain.json()["detail"].startswith("sink.tls: ")


async def test_the_client_key_is_write_only(
    api: tuple[httpx.AsyncClient, Any], pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mic")
    http, service = api
    key_line = pki.client_a.key.splitlines()[1]

    async def stored_key() -> str | None:
        tls = (await service.store.get_subscription("lb")).spec["sink"].get("tls") or {}
        return tls.get("clientKeyData")

    body = subscription(
        caData=pki.server_ca,
        clientCertificateData=pki.client_a.cert,
        clientKeyData=pki.client_a.key,
        serverName=NAME_ONLY,
    )
    created = await http.post("/v1/subscriptions", json=body)
    assert created.status_code == 201, created.text
    shown = [created, await http.get("/v1/subscriptions/lb"), await http.get("/v1/subscriptions")]
    for response in shown:
        assert key_line not in response.text
        assert "clientKeyData" not in response.text
    assert shown[1].json()["sink"]["tls"] == {
        "caData": pki.server_ca,
        "clientCertificateData": pki.client_a.cert,
        "hasClientKey": True,
        "serverName": NAME_ONLY,
    }
    assert await stored_key() == pki.client_a.key

    # A new URL needs the key sent again, by PATCH and by PUT.
    elsewhere = "https://elsewhere.example/hook"
    moved = await http.patch("/v1/subscriptions/lb", json={"sink": {"url": elsewhere}})
    assert moved.status_code == 422
    assert "send sink.tls.clientKeyData again" in moved.json()["detail"]
    as_shown = {key: value for key, value in shown[1].json()["sink"]["tls"].items() if key != "hasClientKey"}
    put_moved = {"filter": {"resources": ["ingresses"]}, "sink": {"url": elsewhere, "tls": as_shown}}
    refused_put = await http.put("/v1/subscriptions/lb", json=put_moved)
    assert refused_put.status_code == 422
    assert "sink.tls.clientKeyData" in refused_put.json()["detail"]
    resent = await http.patch(
        "/v1/subscriptions/lb",
        json={"sink": {"url": elsewhere, "tls": {"clientKeyData": pki.client_a.key}}},
    )
    assert resent.status_code == 200, resent.text
    assert key_line not in resent.text

    # Now that URL is stored: a PUT of the TLS settings as shown keeps the stored key.
    replaced = await http.put("/v1/subscriptions/lb", json=put_moved)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["sink"]["tls"]["hasClientKey"] is True
    assert await stored_key() == pki.client_a.key
    # ... and a PUT without tls removes the settings, key included.
    without_tls = {"filter": {"resources": ["ingresses"]}, "sink": {"url": elsewhere}}
    cleared = await http.put("/v1/subscriptions/lb", json=without_tls)
    assert cleared.status_code == 200, cleared.text
    assert "tls" not in cleared.json()["sink"]
    assert await stored_key() is None
    assert key_line not in caplog.text


async def test_a_new_trusted_ca_or_name_needs_the_stored_credentials_again(
    api: tuple[httpx.AsyncClient, Any], pki: Pki
) -> None:
    # Trusting another CA (or verifying another name) picks which server gets the stored
    # Authorization header as surely as a new URL does.
    http, _ = api
    body = subscription(caData=pki.server_ca)
    body["sink"]["headers"] = {"Authorization": "Bearer recipient-secret"}
    created = await http.post("/v1/subscriptions", json=body)
    assert created.status_code == 201, created.text
    for change in ({"caData": pki.client_ca}, {"serverName": NAME_ONLY}):
        moved = await http.patch("/v1/subscriptions/lb", json={"sink": {"tls": change}})
        assert moved.status_code == 422, moved.text
        assert "send sink.headers again" in moved.json()["detail"]
    resent = await http.patch(
        "/v1/subscriptions/lb",
        json={
            "sink": {
                "tls": {"caData": pki.client_ca},
                "headers": {"Authorization": "Bearer recipient-secret"},
            }
        },
    )
    assert resent.status_code == 200, resent.text


# -- through the engine: lanes and the ping use the sink's settings --------------------------------


async def test_changes_and_the_ping_reach_an_mtls_recipient_through_the_engine(
    pki: Pki, pipeline: Any, kube_emulator: Any
) -> None:
    async with HttpsRecipient(pki.server_ip, client_ca=pki.client_ca) as recipient:
        kube_emulator.create(configmap("web", v="0"))
        await pipeline.add_cluster(kube_emulator)
        await pipeline.subscribe(
            "lb",
            recipient,  # only its url is read
            sink={
                "tls": {
                    "caData": pki.server_ca,
                    "clientCertificateData": pki.client_a.cert,
                    "clientKeyData": pki.client_a.key,
                },
            },
        )
        async with asyncio.timeout(10):
            while not recipient.seen:  # the first list's ADDED
                await asyncio.sleep(0.02)
            kube_emulator.patch("configmaps", "web", {"data": {"v": "1"}})
            while len(recipient.seen) < 2:  # then the MODIFIED
                await asyncio.sleep(0.02)
        assert {seen.client_cn for seen in recipient.seen} == {"sink-a"}
        ping = await pipeline.engine.test("lb")
        assert ping.ok, ping.error
        assert recipient.seen[-1].client_cn == "sink-a"
