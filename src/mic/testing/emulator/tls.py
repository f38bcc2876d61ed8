"""A throw-away certificate authority and server certificate, made with the openssl CLI.

Python's ssl module can load certificates but not make them, and the project takes no new
dependency for this; `openssl` is on every machine the tests run on. EC P-256 keys keep
generation in the tens of milliseconds.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerCertificate:
    """PEM text of the CA certificate (for kubeconfigs) and the server's cert chain and key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="mic-emu-tls-") as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            ctx.load_cert_chain(cert, key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (what a kubeconfig's CA data gives)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _run(*args: str, cwd: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _san(hosts: list[str]) -> str:
    entries = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            entries.append(f"IP:{host}")
        except ValueError:
            entries.append(f"DNS:{host}")
    return ",".join(entries)


def make_server_certificate(hosts: list[str], name: str = "mic-emulator") -> ServerCertificate:
    """Generate a CA and a server certificate valid for `hosts` (IPs and DNS names)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("TLS emulation needs the openssl command line tool on PATH")
    hosts = list(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))
    with tempfile.TemporaryDirectory(prefix="mic-emu-ca-") as tmp:
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", f"/CN={name}-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp)  # fmt: skip
        _run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={name}", cwd=tmp)
        Path(tmp, "ext.cnf").write_text(
            f"subjectAltName={_san(hosts)}\nextendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n"
        )
        _run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=tmp)  # fmt: skip
        ca = Path(tmp, "ca.crt").read_bytes()
        return ServerCertificate(
            ca, Path(tmp, "server.crt").read_bytes() + ca, Path(tmp, "server.key").read_bytes()
        )
