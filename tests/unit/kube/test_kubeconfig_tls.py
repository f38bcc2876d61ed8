"""TLS settings from kubeconfigs and `from_token`, proven with real certificates and handshakes."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mic.kube.direct import from_token
from mic.kube.errors import ConfigError
from mic.kube.kubeconfig import from_kubeconfig_text, load_kubeconfig
from mic.kube.tls import load_client_certificate, new_context

Certs = Any  # conftest.Certs
Kubeconfig = Callable[..., dict[str, Any]]
Handshake = Callable[..., Awaitable[str]]


async def test_ca_and_client_certificate_from_data(
    certs: Certs, kubeconfig: Kubeconfig, handshake: Handshake
) -> None:
    document = kubeconfig(
        cluster={"certificate-authority-data": certs.b64(certs.ca_crt), "tls-server-name": "kubernetes.test"},
        user={
            "client-certificate-data": certs.b64(certs.client_crt),
            "client-key-data": certs.b64(certs.client_key),
        },
    )
    connection = load_kubeconfig(document)
    assert connection.authenticator is None  # the certificate is the credential
    assert await handshake(connection, certs) == "alice"


async def test_ca_and_client_certificate_from_files(
    certs: Certs, kubeconfig: Kubeconfig, handshake: Handshake
) -> None:
    document = kubeconfig(
        cluster={"certificate-authority": str(certs.ca_crt), "tls-server-name": "kubernetes.test"},
        user={"client-certificate": "client.crt", "client-key": "client.key"},  # relative to base_dir
    )
    connection = load_kubeconfig(document, base_dir=certs.dir)
    assert await handshake(connection, certs) == "alice"


async def test_without_tls_server_name_the_ip_does_not_match(
    certs: Certs, kubeconfig: Kubeconfig, handshake: Handshake
) -> None:
    connection = load_kubeconfig(kubeconfig(cluster={"certificate-authority": str(certs.ca_crt)}, user={}))
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        await handshake(connection, certs, require_client_cert=False)


async def test_custom_ca_replaces_system_roots(
    certs: Certs, kubeconfig: Kubeconfig, tmp_path: Path, handshake: Handshake
) -> None:
    # A CA that did not sign the server's certificate: verification must fail.
    (tmp_path / "other-ca.crt").write_bytes(certs.server_crt.read_bytes())
    document = kubeconfig(cluster={"certificate-authority": str(tmp_path / "other-ca.crt")}, user={})
    connection = load_kubeconfig(document)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(connection, certs, require_client_cert=False)


async def test_insecure_skips_verification(
    certs: Certs, kubeconfig: Kubeconfig, handshake: Handshake
) -> None:
    connection = load_kubeconfig(kubeconfig(cluster={"insecure-skip-tls-verify": True}, user={}))
    assert connection.ssl_context is not None
    assert connection.ssl_context.verify_mode == ssl.CERT_NONE
    assert connection.ssl_context.check_hostname is False
    assert "tls=insecure" in repr(connection)
    assert await handshake(connection, certs, require_client_cert=False) == ""


def test_insecure_with_ca_is_refused(certs: Certs, kubeconfig: Kubeconfig) -> None:
    cluster = {"insecure-skip-tls-verify": True, "certificate-authority-data": certs.b64(certs.ca_crt)}
    with pytest.raises(ConfigError, match="insecure-skip-tls-verify together with a certificate authority"):
        load_kubeconfig(kubeconfig(cluster=cluster))


def test_without_ca_the_system_roots_are_trusted(kubeconfig: Kubeconfig) -> None:
    connection = load_kubeconfig(kubeconfig())
    assert connection.ssl_context is not None
    assert connection.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("cluster", "user", "expected"),
    [
        (
            {"certificate-authority-data": "not base64!"},
            {},
            r"clusters\['c1'\].cluster.certificate-authority-data is not valid base64",
        ),
        (
            {},
            {"client-certificate-data": "@@@", "client-key-data": "AAAA"},
            r"users\['u1'\].user.client-certificate-data is not valid base64",
        ),
        (
            {"certificate-authority-data": base64.b64encode(b"hello").decode()},
            {},
            r"certificate-authority\(-data\) is not a PEM-encoded CA certificate",
        ),
    ],
)
def test_bad_data_fields_are_named(
    cluster: dict[str, Any], user: dict[str, Any], expected: str, kubeconfig: Kubeconfig
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_kubeconfig(kubeconfig(cluster=cluster, user=user))


def test_key_that_does_not_match_the_certificate(certs: Certs, kubeconfig: Kubeconfig) -> None:
    key = certs.other_key.read_bytes()
    user = {
        "client-certificate-data": certs.b64(certs.client_crt),
        "client-key-data": base64.b64encode(key).decode(),
    }
    with pytest.raises(ConfigError) as caught:
        load_kubeconfig(kubeconfig(user=user))
    message = str(caught.value)
    assert "users['u1'].user.client-certificate/client-key" in message
    assert "belong together" in message
    assert "PRIVATE KEY" not in message


def test_client_certificate_without_key(certs: Certs, kubeconfig: Kubeconfig) -> None:
    user = {"client-certificate-data": certs.b64(certs.client_crt)}
    with pytest.raises(
        ConfigError, match="client-key-data or client-key is required with a client certificate"
    ):
        load_kubeconfig(kubeconfig(user=user))


def test_key_material_does_not_outlive_loading(
    certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # make tempfile re-read TMPDIR
    context = new_context()
    load_client_certificate(
        context, cert_data=certs.client_crt.read_bytes(), key_data=certs.client_key.read_bytes()
    )
    assert os.listdir(tmp_path) == []


def test_encrypted_key_is_refused_without_prompting(certs: Certs, tmp_path: Path) -> None:
    encrypted = tmp_path / "enc.key"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(certs.client_key),
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            str(encrypted),
        ],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ConfigError, match="encrypted private keys are not supported"):
        load_client_certificate(new_context(), cert_file=certs.client_crt, key_file=encrypted)


async def test_from_token_with_ca_data_pem_or_base64(certs: Certs, handshake: Handshake) -> None:
    pem = certs.ca_crt.read_text()
    for ca_data in (pem, certs.b64(certs.ca_crt)):
        connection = from_token(
            "https://127.0.0.1:6443", token="t", ca_data=ca_data, tls_server_name="kubernetes.test"
        )
        assert await handshake(connection, certs, require_client_cert=False) == ""


def test_from_token_bad_ca_data() -> None:
    with pytest.raises(ConfigError, match=r"ca_data \(neither PEM nor base64 of PEM\) is not valid base64"):
        from_token("https://h:6443", ca_data="%%%")


def test_text_form_accepts_embedded_certificates(certs: Certs, kubeconfig: Kubeconfig) -> None:
    document = kubeconfig(
        cluster={"certificate-authority-data": certs.b64(certs.ca_crt)},
        user={
            "client-certificate-data": certs.b64(certs.client_crt),
            "client-key-data": certs.b64(certs.client_key),
        },
    )
    connection = from_kubeconfig_text(yaml.safe_dump(document))
    assert connection.description == "kubeconfig text (context main)"
