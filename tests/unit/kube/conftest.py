"""Shared fixtures for the connection-config tests: real certificates, kubeconfig files, plugins."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mic.kube.connection import ClusterConnection

SECRET_TOKEN = "s3cr3t-t0ken-value-never-shown"


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for kubernetes.test only (no IP SAN) and a client certificate."""

    dir: Path
    ca_crt: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path
    other_key: Path  # a key that matches no certificate
    bob_crt: Path  # a second client certificate (CN bob), for rotations
    bob_key: Path

    @staticmethod
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _new_key(name: str, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=cwd)


def _signed(name: str, subject: str, extensions: str, cwd: Path) -> None:
    _new_key(f"{name}.key", cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    _new_key("ca.key", directory)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=mic-test-ca", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-out", "ca.crt", cwd=directory,
    )  # fmt: skip
    _signed("server", "/CN=kubernetes.test", "subjectAltName=DNS:kubernetes.test\n", directory)
    _signed("client", "/CN=alice/O=system:masters", "extendedKeyUsage=clientAuth\n", directory)
    _signed("bob", "/CN=bob", "extendedKeyUsage=clientAuth\n", directory)
    _new_key("other.key", directory)
    return Certs(
        dir=directory,
        ca_crt=directory / "ca.crt",
        server_crt=directory / "server.crt",
        server_key=directory / "server.key",
        client_crt=directory / "client.crt",
        client_key=directory / "client.key",
        other_key=directory / "other.key",
        bob_crt=directory / "bob.crt",
        bob_key=directory / "bob.key",
    )


def kubeconfig(
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    namespace: str | None = None,
    extra_contexts: tuple[str, ...] = (),
    current: str | None = "main",
) -> dict[str, Any]:
    """A one-cluster kubeconfig mapping; `cluster`/`user` fields are merged over defaults."""
    context: dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if namespace is not None:
        context["namespace"] = namespace
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://kubernetes.test:6443", **(cluster or {})}}
        ],
        "users": [{"name": "u1", "user": user if user is not None else {"token": SECRET_TOKEN}}],
        "contexts": [{"name": "main", "context": context}]
        + [{"name": name, "context": {"cluster": "c1", "user": "u1"}} for name in extra_contexts],
    }
    if current is not None:
        document["current-context"] = current
    return document


@pytest.fixture
def secret_token() -> str:
    """The token the default kubeconfig user carries; no message or repr may contain it."""
    return SECRET_TOKEN


@pytest.fixture(name="kubeconfig")
def kubeconfig_builder() -> Callable[..., dict[str, Any]]:
    """The `kubeconfig` builder, as a fixture: test modules must not import conftest, since
    pytest may have loaded another directory's conftest under that name."""
    return kubeconfig


@pytest.fixture
def write_kubeconfig(tmp_path: Path) -> Callable[..., Path]:
    """Write a kubeconfig mapping (as YAML) to tmp_path/<name> and return its path."""

    def write(document: dict[str, Any], name: str = "config") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))
        return path

    return write


async def _handshake(connection: ClusterConnection, certs: Certs, *, require_client_cert: bool = True) -> str:
    """Open a real TLS connection to a loopback server with the kubernetes.test certificate.

    Returns the client certificate's CN as the server saw it ("" if none was sent).
    """
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certs.server_crt, certs.server_key)
    server_context.load_verify_locations(certs.ca_crt)
    server_context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        seen.append(next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), ""))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=connection.ssl_context, server_hostname=connection.tls_server_name
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


@pytest.fixture
def handshake() -> Callable[..., Any]:
    """`await handshake(connection, certs)`: a real TLS handshake with a loopback server."""
    return _handshake


PLUGIN = textwrap.dedent(
    """\
    #!{python}
    # A test exec credential plugin: counts its runs and records what it was given.
    import json, os, sys, time
    from datetime import datetime, timezone
    state = {state!r}
    count_file = os.path.join(state, "count")
    count = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
    open(count_file, "w").write(str(count))
    json.dump(
        {{"argv": sys.argv[1:], "exec_info": os.environ.get("KUBERNETES_EXEC_INFO"),
          "stdin": sys.stdin.read() if sys.stdin is not None else None,
          "env": {{k: v for k, v in os.environ.items() if k.startswith("MIC_TEST_")}}}},
        open(os.path.join(state, "last.json"), "w"),
    )
    time.sleep({delay})
    if {exit_code}:
        sys.stderr.write("login required: run `sso login` first\\n")
        sys.exit({exit_code})
    status = {status!r}
    if "token" in status:
        status["token"] = status["token"] + "-" + str(count)
    if {expires_in} is not None:
        status["expirationTimestamp"] = datetime.fromtimestamp(
            time.time() + {expires_in}, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print({output!r} if {output!r} is not None else json.dumps(
        {{"apiVersion": {api_version!r}, "kind": "ExecCredential", "status": status}}))
    """
)


@dataclass
class Plugin:
    """A plugin script on disk and where it records its runs."""

    path: Path
    state: Path

    @property
    def runs(self) -> int:
        count = self.state / "count"
        return int(count.read_text()) if count.exists() else 0

    @property
    def last(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.state / "last.json").read_text())
        return result


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Plugin]:
    """Write an executable Python exec plugin into tmp_path (see PLUGIN for its parameters)."""
    made = 0

    def make(
        *,
        status: dict[str, Any] | None = None,
        expires_in: float | None = None,
        exit_code: int = 0,
        delay: float = 0.0,
        api_version: str = "client.authentication.k8s.io/v1",
        output: str | None = None,
        name: str | None = None,
    ) -> Plugin:
        nonlocal made
        made += 1
        state = tmp_path / f"plugin-state-{made}"
        state.mkdir()
        path = tmp_path / (name or f"plugin-{made}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            PLUGIN.format(
                python=sys.executable,
                state=str(state),
                status=status if status is not None else {"token": "exec-token"},
                expires_in=expires_in,
                exit_code=exit_code,
                delay=delay,
                api_version=api_version,
                output=output,
            )
        )
        path.chmod(0o755)
        return Plugin(path, state)

    return make
