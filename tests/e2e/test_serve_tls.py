"""`mic serve` over HTTPS: tokens never cross the network in clear text when MIC is remote."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mic_process import ADMIN_TOKEN, MicServer, mic

from mic.testing.emulator.tls import make_server_certificate

pytestmark = pytest.mark.e2e


async def test_the_api_and_the_cli_work_over_https(mic_server: MicServer, tmp_path: Path) -> None:
    certificate = make_server_certificate(["127.0.0.1"], name="mic-api")
    (tmp_path / "tls.crt").write_bytes(certificate.cert_pem)
    (tmp_path / "tls.key").write_bytes(certificate.key_pem)
    (tmp_path / "ca.crt").write_bytes(certificate.ca_pem)
    mic_server.env["MIC_TLS_CERT_FILE"] = str(tmp_path / "tls.crt")
    mic_server.env["MIC_TLS_KEY_FILE"] = str(tmp_path / "tls.key")
    mic_server.url = mic_server.url.replace("http://", "https://")
    mic_server.verify = certificate.client_context()

    await mic_server.start()

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=mic_server.url, verify=mic_server.verify, headers=headers) as http:
        assert (await http.get("/v1/clusters")).json() == {"items": []}
    plain = mic_server.url.replace("https://", "http://")
    async with httpx.AsyncClient(base_url=plain) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get("/healthz")  # no plain-HTTP answer on the TLS port

    trusted = await mic(
        mic_server, "clusters", "list", "-o", "json", env={"SSL_CERT_FILE": str(tmp_path / "ca.crt")}
    )
    assert trusted.json() == {"items": []}
    untrusted = await mic(mic_server, "clusters", "list")
    assert untrusted.code == 1
    assert "certificate verify failed" in untrusted.stderr, untrusted.stderr
    assert untrusted.stderr.rstrip("\n").endswith("set SSL_CERT_FILE to that CA's PEM file")
