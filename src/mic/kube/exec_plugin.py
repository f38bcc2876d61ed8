"""Exec credential plugins (`users[].user.exec` in a kubeconfig), as client-go runs them.

A plugin is a program (aws eks get-token, gke-gcloud-auth-plugin, kubelogin, tsh...) that
prints an `ExecCredential` JSON object with a bearer token and/or a client certificate. MIC
runs it without a terminal (stdin is not attached, `spec.interactive` is false), passes
`KUBERNETES_EXEC_INFO`, caches the credential until shortly before `expirationTimestamp`, and
runs the plugin again after a 401. Concurrent requests share one run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mic.kube.auth import check_token
from mic.kube.errors import ConfigError
from mic.kube.tls import load_client_certificate

log = logging.getLogger(__name__)

API_V1 = "client.authentication.k8s.io/v1"
API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
SUPPORTED_API_VERSIONS = (API_V1, API_V1BETA1)
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


class ExecPluginError(ConfigError):
    """The plugin could not be run or printed something unusable.

    A `ConfigError` because the fix is on the user's side: install the plugin, log in again,
    repair its configuration. The message carries the plugin's stderr tail, never its stdout
    (which holds the credential).
    """


@dataclass(frozen=True)
class ExecConfig:
    """What to run and how, from `users[].user.exec` (already validated by the loader).

    `user` only names the kubeconfig user in messages. `cluster` is the ExecCredential
    `spec.cluster` object, sent only when `provide_cluster_info` is set.
    """

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold secrets
    api_version: str = API_V1
    install_hint: str = ""
    provide_cluster_info: bool = False
    cluster: dict[str, Any] | None = field(default=None, repr=False)
    interactive_mode: str = "Never"
    user: str = ""

    def __post_init__(self) -> None:
        if self.api_version not in SUPPORTED_API_VERSIONS:
            raise ConfigError(
                f"{self.name} uses apiVersion {self.api_version!r}; MIC supports "
                f"{' and '.join(SUPPORTED_API_VERSIONS)} (v1alpha1 was removed from Kubernetes)"
            )
        if self.interactive_mode == "Always":
            raise ConfigError(
                f"{self.name} has interactiveMode Always, but MIC runs plugins without a terminal; "
                "set interactiveMode to Never or IfAvailable if the plugin can work without one"
            )
        if self.interactive_mode not in INTERACTIVE_MODES:
            raise ConfigError(
                f"{self.name} has interactiveMode {self.interactive_mode!r}; "
                f"use one of {', '.join(INTERACTIVE_MODES)}"
            )

    @property
    def name(self) -> str:
        """`exec plugin 'aws' of kubeconfig user 'u'`, to start messages with."""
        user = f" of kubeconfig user {self.user!r}" if self.user else ""
        return f"exec plugin {self.command!r}{user}"

    def resolve_command(self) -> str:
        """The executable's path: looked up in PATH when the command is a bare name.

        Raises with the plugin's `installHint` (what kubectl shows) when it is not installed.
        """
        found = shutil.which(self.command)
        if found is None:
            hint = f"\n{self.install_hint.strip()}" if self.install_hint.strip() else ""
            where = "was not found in PATH"
            if os.sep in self.command:
                where = "does not exist or is not executable"
            raise ExecPluginError(f"{self.name} {where}; install it or fix users[].user.exec.command{hint}")
        return found


@dataclass(frozen=True)
class _Credential:
    token: str | None
    has_certificate: bool
    expires_at: float | None  # wall-clock seconds since the epoch
    fetched_at: float  # monotonic


class ExecPlugin:
    """Authenticator backed by an exec credential plugin.

    `timeout` bounds one plugin run (a plugin waiting for a browser login would otherwise hang
    every request). `expiry_skew` refreshes that long before `expirationTimestamp`, so a token
    does not expire in flight. `refresh_grace`: a 401 that arrives within that many seconds of
    a fresh run is taken to be from a request sent with the previous credential, so it does not
    run the plugin again (many requests failing at once cost one run, as in client-go).

    When the plugin returns a client certificate it is loaded into `ssl_context`, which
    affects connections opened afterwards only: a TLS connection keeps the certificate it shook
    hands with. A different certificate bumps `certificate_generation`, and the HTTP client
    then closes every connection it opened before (as client-go's exec authenticator closes its
    tracked connections on rotation), so neither the retry of a 401 nor a re-opened watch goes
    out over a connection that still presents the old certificate.
    """

    def __init__(
        self,
        config: ExecConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 60.0,
        expiry_skew: float = 10.0,
        refresh_grace: float = 1.0,
    ) -> None:
        self.config = config
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._expiry_skew = expiry_skew
        self._refresh_grace = refresh_grace
        self._credential: _Credential | None = None
        self._lock = asyncio.Lock()
        self._certificate: tuple[str, str] | None = None
        self._certificate_generation = 0

    @property
    def certificate_generation(self) -> int:
        """How many different client certificates the plugin has returned (see the class doc)."""
        return self._certificate_generation

    async def authorization(self) -> str | None:
        credential = self._credential
        if credential is None or not self._fresh(credential):
            async with self._lock:
                credential = self._credential
                if credential is None or not self._fresh(credential):
                    credential = self._credential = await self._run()
        return f"Bearer {credential.token}" if credential.token else None

    def invalidate(self) -> bool:
        """Forget the credential so the next request runs the plugin again (always worth a retry)."""
        credential = self._credential
        if credential is not None and time.monotonic() - credential.fetched_at >= self._refresh_grace:
            self._credential = None
        return True

    def _fresh(self, credential: _Credential) -> bool:
        return credential.expires_at is None or time.time() < credential.expires_at - self._expiry_skew

    def _exec_info(self) -> str:
        spec: dict[str, Any] = {"interactive": False}
        if self.config.provide_cluster_info and self.config.cluster is not None:
            spec["cluster"] = self.config.cluster
        return json.dumps({"apiVersion": self.config.api_version, "kind": "ExecCredential", "spec": spec})

    async def _run(self) -> _Credential:
        command = self.config.resolve_command()
        env = dict(os.environ)
        env.update(self.config.env)
        env["KUBERNETES_EXEC_INFO"] = self._exec_info()
        name = self.config.name
        try:
            process = await asyncio.create_subprocess_exec(
                command,
                *self.config.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as error:
            raise ExecPluginError(f"{name} could not be started: {error.strerror}") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError:
            raise ExecPluginError(
                f"{name} did not finish within {self._timeout:g}s; MIC runs plugins without a "
                "terminal, so a plugin waiting for an interactive login never finishes: log in "
                "outside MIC first or configure the plugin to work non-interactively"
            ) from None
        finally:
            if process.returncode is None:  # timed out or cancelled: don't leave it running
                process.kill()
                await asyncio.shield(process.wait())
        if stderr:
            log.debug("%s wrote to stderr: %s", name, _tail(stderr))
        if process.returncode != 0:
            detail = f": {_tail(stderr)}" if stderr.strip() else ""
            raise ExecPluginError(f"{name} failed with exit code {process.returncode}{detail}")
        return self._parse(stdout, name)

    def _parse(self, stdout: bytes, name: str) -> _Credential:
        try:
            document = json.loads(stdout)
        except ValueError:
            raise ExecPluginError(f"{name} did not print an ExecCredential JSON object") from None
        if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
            raise ExecPluginError(f"{name} printed JSON that is not an ExecCredential (kind missing)")
        if document.get("apiVersion") != self.config.api_version:
            raise ExecPluginError(
                f"{name} is configured for apiVersion {self.config.api_version!r} but returned "
                f"{document.get('apiVersion')!r}; set users[].user.exec.apiVersion to what the plugin speaks"
            )
        status = document.get("status")
        if not isinstance(status, dict):
            raise ExecPluginError(f"{name} returned an ExecCredential without status")
        token = status.get("token") or None
        cert = status.get("clientCertificateData") or None
        key = status.get("clientKeyData") or None
        if (cert is None) != (key is None):
            raise ExecPluginError(
                f"{name} returned only one of status.clientCertificateData and status.clientKeyData"
            )
        if token is None and cert is None:
            raise ExecPluginError(f"{name} returned neither status.token nor a client certificate")
        if token is not None:
            if not isinstance(token, str):
                raise ExecPluginError(f"{name} returned a status.token that is not a string")
            token = check_token(token, f"status.token from {name}")
        if cert is not None:
            self._load_certificate(cert, key, name)
        expires_at = _parse_expiration(status.get("expirationTimestamp"), name)
        if expires_at is not None and expires_at <= time.time():
            log.warning("%s returned a credential that has already expired", name)
        return _Credential(token, cert is not None, expires_at, time.monotonic())

    def _load_certificate(self, cert: object, key: object, name: str) -> None:
        if self._ssl_context is None:
            raise ExecPluginError(f"{name} returned a client certificate, but the server is not https")
        if not isinstance(cert, str) or not isinstance(key, str):
            raise ExecPluginError(f"{name} returned client certificate data that is not PEM text")
        if (cert, key) == self._certificate:
            return  # the same pair again: connections already present it
        load_client_certificate(
            self._ssl_context,
            cert_data=cert.encode(),
            key_data=key.encode(),
            what=f"client certificate from {name}",
        )
        self._certificate = (cert, key)
        self._certificate_generation += 1

    def __repr__(self) -> str:
        return f"ExecPlugin(command={self.config.command!r}, api_version={self.config.api_version!r})"


def cluster_info(
    *,
    server: str,
    tls_server_name: str | None,
    insecure: bool,
    ca_data: bytes | None,
    proxy_url: str | None,
    disable_compression: bool,
    config: Any = None,
) -> dict[str, Any]:
    """The ExecCredential `spec.cluster` object (CA as base64 data even when given as a file)."""
    info: dict[str, Any] = {"server": server}
    if tls_server_name:
        info["tls-server-name"] = tls_server_name
    if insecure:
        info["insecure-skip-tls-verify"] = True
    if ca_data:
        info["certificate-authority-data"] = base64.b64encode(ca_data).decode("ascii")
    if proxy_url:
        info["proxy-url"] = proxy_url
    if disable_compression:
        info["disable-compression"] = True
    if config is not None:
        info["config"] = config
    return info


def _parse_expiration(value: object, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError
    except ValueError:
        raise ExecPluginError(
            f"{name} returned status.expirationTimestamp {value!r}, which is not an RFC 3339 time"
        ) from None
    return parsed.timestamp()


def _tail(stderr: bytes, limit: int = 500) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else "..." + text[-limit:]
