"""`sink.tls`: PEM loaded into OpenSSL when written, https only, the client key write-only.

Real certificates made with the openssl CLI (as the kube TLS tests do); nothing is mocked.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mic.cli.client import UsageError
from mic.cli.subscriptions import build_subscription
from mic.routing.spec import InvalidSubscriptionError, SinkTls, SubscriptionSpec, WebhookSink

URL = "https://lb.example/hook"


@dataclass(frozen=True)
class Pems:
    ca: str
    client_cert: str
    client_key: str
    other_key: str  # matches no certificate
    encrypted_key: str
    dir: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Pems:
    cwd = tmp_path_factory.mktemp("sink-tls")
    ec = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    _openssl(*ec, "-out", "ca.key", cwd=cwd)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=sink-test-ca", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-out", "ca.crt", cwd=cwd,
    )  # fmt: skip
    _openssl(*ec, "-out", "client.key", cwd=cwd)
    _openssl("req", "-new", "-key", "client.key", "-subj", "/CN=mic", "-out", "client.csr", cwd=cwd)
    (cwd / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "client.ext", "-out", "client.crt", cwd=cwd,
    )  # fmt: skip
    _openssl(*ec, "-out", "other.key", cwd=cwd)
    _openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:pw", "-out", "enc.key", cwd=cwd)
    ca, cert, key, other, encrypted = (
        (cwd / name).read_text() for name in ("ca.crt", "client.crt", "client.key", "other.key", "enc.key")
    )
    return Pems(ca, cert, key, other, encrypted, cwd)


def sink_json(**tls: Any) -> dict[str, Any]:
    return {"url": URL, "tls": tls}


def refused(data: dict[str, Any]) -> InvalidSubscriptionError:
    with pytest.raises(InvalidSubscriptionError) as caught:
        WebhookSink.from_json(data)
    return caught.value


def test_full_tls_settings_round_trip_through_the_store_form(pems: Pems) -> None:
    sink = WebhookSink.from_json(
        sink_json(
            caData=pems.ca,
            clientCertificateData=pems.client_cert,
            clientKeyData=pems.client_key,
            serverName="lb.internal.example",
        )
    )
    assert sink.tls == SinkTls(pems.ca, pems.client_cert, pems.client_key, "lb.internal.example")
    data = sink.to_json()
    assert data["tls"] == {
        "caData": pems.ca,
        "clientCertificateData": pems.client_cert,
        "clientKeyData": pems.client_key,
        "serverName": "lb.internal.example",
    }
    assert WebhookSink.from_json(data) == sink
    assert hash(WebhookSink.from_json(data)) == hash(sink)
    spec = SubscriptionSpec.from_json({"name": "lb", "filter": {"resources": ["ingresses"]}, "sink": data})
    assert SubscriptionSpec.from_json(spec.to_json()) == spec


def test_a_sink_without_tls_is_stored_as_before_and_empty_tls_means_none(pems: Pems) -> None:
    assert "tls" not in WebhookSink(URL).to_json()
    assert WebhookSink.from_json({"url": URL, "tls": {}}).tls is None
    assert WebhookSink.from_json({"url": URL, "tls": {"caData": None}}).tls is None
    assert WebhookSink(URL, tls={"caData": pems.ca}) == WebhookSink(URL, tls=SinkTls(ca_data=pems.ca))  # type: ignore[arg-type]


def test_the_client_key_stays_out_of_repr(pems: Pems) -> None:
    sink = WebhookSink(URL, tls=SinkTls(pems.ca, pems.client_cert, pems.client_key, "lb.example"))
    text = repr(sink) + repr(sink.tls) + str(sink.tls)
    assert "PRIVATE KEY" not in text
    assert pems.client_key.splitlines()[1] not in text
    assert "lb.example" in text


def test_ca_data_replaces_the_system_cas(pems: Pems) -> None:
    context = SinkTls(ca_data=pems.ca).client_context()
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "sink-test-ca"),),)]
    assert context.check_hostname is True


@pytest.mark.parametrize(
    ("tls", "field", "words"),
    [
        ({"caData": ""}, "sink.tls.caData", "empty"),
        ({"caData": "not a certificate"}, "sink.tls.caData", "not PEM text"),
        (
            {"caData": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "sink.tls.caData",
            "OpenSSL",
        ),
        ({"caData": 42}, "sink.tls.caData", "must be a string"),
        ({"serverName": "lb.example:443"}, "sink.tls.serverName", "not a host name"),
        ({"serverName": "https://lb.example"}, "sink.tls.serverName", "not a host name"),
        ({"serverName": "*.example"}, "sink.tls.serverName", "not a host name"),
        ({"serverName": "a..b"}, "sink.tls.serverName", "not a valid domain name"),
        ({"serverName": "bad!name"}, "sink.tls.serverName", "not a valid host name"),
        ({"insecureSkipVerify": True}, "sink.tls.insecureSkipVerify", "unknown field"),
    ],
)
def test_bad_settings_name_their_field(tls: dict[str, Any], field: str, words: str) -> None:
    error = refused(sink_json(**tls))
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert words in error.problem


def test_base64_of_pem_is_refused_with_the_fix(pems: Pems) -> None:
    encoded = base64.b64encode(pems.ca.encode()).decode()
    error = refused(sink_json(caData=encoded))
    assert error.field == "sink.tls.caData"
    assert "base64" in error.problem
    assert "PEM text" in error.problem


def test_a_private_key_in_a_shown_field_is_refused_without_echoing_it(pems: Pems) -> None:
    for key in ("caData", "clientCertificateData"):
        value = pems.client_cert + pems.client_key
        tls = (
            {key: value, "clientKeyData": pems.client_key} if key == "clientCertificateData" else {key: value}
        )
        error = refused(sink_json(**tls))
        assert error.field == f"sink.tls.{key}"
        assert "clientKeyData" in error.problem
        assert pems.client_key.splitlines()[1] not in str(error)


def test_certificate_and_key_go_together(pems: Pems) -> None:
    assert refused(sink_json(clientCertificateData=pems.client_cert)).field == "sink.tls.clientKeyData"
    assert refused(sink_json(clientKeyData=pems.client_key)).field == "sink.tls.clientCertificateData"


def test_a_key_that_does_not_match_the_certificate_is_refused(pems: Pems) -> None:
    error = refused(sink_json(clientCertificateData=pems.client_cert, clientKeyData=pems.other_key))
    assert error.field == "sink.tls.clientKeyData"
    assert "not the key" in error.problem
    assert pems.other_key.splitlines()[1] not in str(error)


def test_bad_client_certificate_and_key_pem_name_their_field(pems: Pems) -> None:
    broken_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    error = refused(sink_json(clientCertificateData=broken_cert, clientKeyData=pems.client_key))
    assert error.field == "sink.tls.clientCertificateData"
    broken_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    error = refused(sink_json(clientCertificateData=pems.client_cert, clientKeyData=broken_key))
    assert error.field == "sink.tls.clientKeyData"
    assert "OpenSSL" in error.problem
    error = refused(sink_json(clientCertificateData=pems.client_cert, clientKeyData=pems.client_cert))
    assert (error.field, "no private key" in error.problem) == ("sink.tls.clientKeyData", True)


def test_an_encrypted_key_is_refused(pems: Pems) -> None:
    error = refused(sink_json(clientCertificateData=pems.client_cert, clientKeyData=pems.encrypted_key))
    assert error.field == "sink.tls.clientKeyData"
    assert "encrypted" in error.problem


def test_tls_settings_need_an_https_url(pems: Pems) -> None:
    error = refused({"url": "http://lb.example/hook", "tls": {"caData": pems.ca}})
    assert error.field == "sink.tls"
    assert "https://" in error.problem


def test_server_names_are_kept_in_their_wire_form() -> None:
    assert SinkTls(server_name="LB.Internal.example").server_name == "LB.Internal.example"
    assert SinkTls(server_name="bücher.example").server_name == "xn--bcher-kva.example"
    assert SinkTls(server_name="10.0.0.7").server_name == "10.0.0.7"
    assert SinkTls(server_name="::1").server_name == "::1"


def test_digest_tells_settings_apart_without_showing_them(pems: Pems) -> None:
    a = SinkTls(pems.ca, pems.client_cert, pems.client_key)
    assert a.digest == SinkTls(pems.ca, pems.client_cert, pems.client_key).digest
    assert a.digest != SinkTls(pems.ca).digest
    assert a.digest != SinkTls(pems.ca, pems.client_cert, pems.client_key, "other.example").digest
    assert len(a.digest) == 64  # hex SHA-256


def test_loading_the_key_leaves_no_file_behind(
    pems: Pems, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    SinkTls(pems.ca, pems.client_cert, pems.client_key).client_context()
    assert list(tmp_path.iterdir()) == []


def _cli_body(**tls_files: str | None) -> dict[str, Any]:
    return build_subscription(
        "lb", url=URL, resources=["ingresses"], clusters=[], cluster_selector=None, namespaces=[],
        exclude_namespaces=None, label_selector=None, types=[], cel=None, format_=None, signing_secret=None,
        headers=[], batch_max_events=None, coalesce=False, initial_state=True, **tls_files,
    )  # fmt: skip


def test_the_cli_sends_the_files_contents_as_a_valid_spec(pems: Pems) -> None:
    body = _cli_body(
        ca_file=str(pems.dir / "ca.crt"),
        client_cert_file=str(pems.dir / "client.crt"),
        client_key_file=str(pems.dir / "client.key"),
        tls_server_name="lb.internal.example",
    )
    spec = SubscriptionSpec.from_json(body)
    assert spec.sink.tls == SinkTls(pems.ca, pems.client_cert, pems.client_key, "lb.internal.example")
    assert "tls" not in _cli_body()["sink"]
    with pytest.raises(UsageError, match="go together"):
        _cli_body(client_cert_file=str(pems.dir / "client.crt"))
