"""How a cluster is reached, as users submit it, and how it becomes a `ClusterConnection`.

The four connection kinds are pydantic models because they are both the API's request bodies
(documented in OpenAPI) and what the store keeps (`model_dump(by_alias=True)`, camelCase). The
credential fields are excluded from `repr` so a logged spec never leaks them; `public_view`
is the only shape that ever leaves the service.

Security: a kubeconfig submitted as text comes from an API user, who must not be able to run
programs (exec plugins) or read files on the MIC host, so both are refused unless the operator
allows them. A `kubeconfigFile` connection may only name a file inside the operator's
`MIC_KUBECONFIG_DIR`, checked after resolving `..` and symlinks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from mic.kube.connection import ClusterConnection, redact_url
from mic.kube.direct import from_token
from mic.kube.errors import ConfigError
from mic.kube.incluster import in_cluster
from mic.kube.kubeconfig import API_RESTRICTIONS, Restrictions, from_kubeconfig_file, from_kubeconfig_text


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
    )


class KubeconfigConnection(_Spec):
    """A kubeconfig pasted as YAML or JSON text; `context` defaults to its current-context."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "kubeconfig", "kubeconfig": "apiVersion: v1\nkind: Config\n...", "context": None}
            ]
        }
    )

    type: Literal["kubeconfig"]
    kubeconfig: str = Field(min_length=1, repr=False, description="kubeconfig YAML or JSON text (write-only)")
    context: str | None = Field(default=None, description="context to use; default: current-context")


EXAMPLE_CA_PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBgTCCASegAwIBAgIUNX8ZmZJctKb5A6BFov3UlJGePWcwCgYIKoZIzj0EAwIw\n"
    "FTETMBEGA1UEAwwKa3ViZXJuZXRlczAgFw0yNjEyMDMwODE4MDJaGA8yMTI2MTEw\n"
    "OTA4MTgwMlowFTETMBEGA1UEAwwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG\n"
    "SM49AwEHA0IABNSHQVK91AswcDmLq/4pi5uzE9Vlpohapv5HL2Apq5VlBVHlUHR6\n"
    "nhU+Q/hOCRwrdwHWSwLfrHsHOR8FnkjK6kOjUzBRMB0GA1UdDgQWBBQxxibgWLUM\n"
    "3d9R4n/IpPmAGsZEaTAfBgNVHSMEGDAWgBQxxibgWLUM3d9R4n/IpPmAGsZEaTAP\n"
    "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQCMgcvPgQb+ks9l0OTd\n"
    "pF0l5sb5TdFWCaOBk+fgRBb8hwIgLbtXFzcmZ9ROSsv40SCaQEoivqrjiFtcT21k\n"
    "F7IUf3o=\n"
    "-----END CERTIFICATE-----\n"
)
"""A real (self-signed, `CN=kubernetes`) CA certificate, so that the examples pass MIC's checks
when tried in Swagger: a truncated `...` PEM is refused with 422. Its key was thrown away."""


class TokenConnection(_Spec):
    """An API server URL with a bearer token and the CA that signed the server's certificate."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "token",
                    "server": "https://203.0.113.10:6443",
                    "token": "eyJhbGciOi...",
                    "caData": EXAMPLE_CA_PEM,
                    "insecureSkipTlsVerify": False,
                    "tlsServerName": None,
                }
            ]
        }
    )

    type: Literal["token"]
    server: str = Field(min_length=1, max_length=2048, description="API server URL, https://host:port")
    token: str | None = Field(default=None, repr=False, description="bearer token (write-only)")
    ca_data: str | None = Field(
        default=None, repr=False, description="CA certificate: PEM, or base64 of PEM (write-only)"
    )
    insecure_skip_tls_verify: bool = Field(default=False, description="do not verify the server certificate")
    tls_server_name: str | None = Field(default=None, description="name to verify the certificate against")


class InClusterConnection(_Spec):
    """The cluster MIC itself runs in, through its pod's service account."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"type": "inCluster"}]})

    type: Literal["inCluster"]


class KubeconfigFileConnection(_Spec):
    """A kubeconfig file on the MIC host, inside the operator's `MIC_KUBECONFIG_DIR`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "kubeconfigFile", "path": "eu-1.yaml", "context": None}]}
    )

    type: Literal["kubeconfigFile"]
    path: str = Field(min_length=1, max_length=4096, description="file path relative to MIC_KUBECONFIG_DIR")
    context: str | None = Field(default=None, description="context to use; default: current-context")


ConnectionSpec = Annotated[
    KubeconfigConnection | TokenConnection | InClusterConnection | KubeconfigFileConnection,
    Field(discriminator="type"),
]
CONNECTION_ADAPTER: TypeAdapter[ConnectionSpec] = TypeAdapter(ConnectionSpec)


def parse_connection(stored: Any) -> ConnectionSpec:
    """The spec of a stored connection mapping (raises pydantic's ValidationError)."""
    return CONNECTION_ADAPTER.validate_python(stored)


def dump_connection(spec: ConnectionSpec) -> dict[str, Any]:
    """The mapping the store keeps: camelCase, credentials included (the store marks it secret)."""
    return spec.model_dump(by_alias=True, mode="json")


def public_view(stored: Any, server: str | None = None) -> dict[str, Any]:
    """The parts of a connection that may be shown: type, server, context, path; never credentials.

    `server` is the URL the supervisor actually connects to, for kinds whose spec does not
    say it in plain sight (kubeconfig text and files). A password in it is masked: such URLs
    are refused now, but a cluster stored before that still has one.
    """
    mapping = stored if isinstance(stored, dict) else {}
    kind = mapping.get("type")
    shown = (mapping.get("server") if kind == "token" else None) or server
    return {
        "type": kind if isinstance(kind, str) else "unknown",
        "server": shown_url(shown) if isinstance(shown, str) else None,
        "context": mapping.get("context"),
        "path": mapping.get("path") if kind == "kubeconfigFile" else None,
        "insecureSkipTlsVerify": mapping.get("insecureSkipTlsVerify") is True if kind == "token" else None,
    }


def shown_url(url: str) -> str:
    """A stored URL as it may be shown: any password masked (`redact_url`), or a placeholder
    when it is so malformed that urllib cannot split it."""
    try:
        return redact_url(url)
    except ValueError:
        return "<invalid URL>"


@dataclass(frozen=True)
class ConnectionPolicy:
    """What the operator allows connections submitted over the API to do."""

    kubeconfig_dir: Path | None = None
    allow_exec: bool = False
    allow_files: bool = False


_FILE_RESTRICTIONS = Restrictions(
    origin="kubeconfig files named over the API",
    exec_fix="start MIC with --allow-kubeconfig-exec to allow it",
    files_fix="",
)


def build_connection(spec: ConnectionSpec, policy: ConnectionPolicy) -> ClusterConnection:
    """Turn a spec into a connection, applying the operator's policy; raises ConfigError.

    Builds only (TLS context, authenticator): it never contacts the cluster, so an unreachable
    cluster is accepted and reported later in its status.
    """
    if isinstance(spec, KubeconfigConnection):
        return from_kubeconfig_text(
            spec.kubeconfig,
            spec.context,
            allow_exec=policy.allow_exec,
            allow_files=policy.allow_files,
            restrictions=API_RESTRICTIONS,
        )
    if isinstance(spec, TokenConnection):
        return from_token(
            spec.server,
            token=spec.token or None,
            ca_data=spec.ca_data or None,
            insecure=spec.insecure_skip_tls_verify,
            tls_server_name=spec.tls_server_name,
        )
    if isinstance(spec, InClusterConnection):
        return in_cluster()
    # The operator put the file there, so it may refer to files next to it (certificates);
    # running a program is still the operator's explicit choice.
    path = resolve_kubeconfig_path(spec.path, policy.kubeconfig_dir)
    return from_kubeconfig_file(
        path, spec.context, allow_exec=policy.allow_exec, allow_files=True, restrictions=_FILE_RESTRICTIONS
    )


def source_fingerprint(spec: ConnectionSpec, policy: ConnectionPolicy) -> str | None:
    """A digest of the host files a connection is built from, or None if it uses none.

    A `kubeconfigFile` connection's stored record never changes when the operator rewrites
    the file (a rotated token or client certificate, a new server or CA), nor when a file it
    names is replaced (cert-manager renewing `client-certificate`/`client-key`); the
    supervisor compares this digest to rebuild the connection then. Unreadable files count
    as changed content, so a file that comes back is picked up too.
    """
    if not isinstance(spec, KubeconfigFileConnection):
        return None
    digest = hashlib.sha256()
    try:
        path = resolve_kubeconfig_path(spec.path, policy.kubeconfig_dir)
        text = path.read_bytes()
    except (ConfigError, OSError, ValueError) as error:
        digest.update(f"unreadable: {type(error).__name__}".encode())
        return digest.hexdigest()
    digest.update(text)
    for referenced in _referenced_files(text, path.parent):
        digest.update(b"\0" + os.fsencode(referenced) + b"\0")
        try:
            digest.update(hashlib.sha256(referenced.read_bytes()).digest())
        except (OSError, ValueError) as error:
            digest.update(f"unreadable: {type(error).__name__}".encode())
    return digest.hexdigest()


_FILE_FIELDS = ("certificate-authority", "client-certificate", "client-key")


def _referenced_files(text: bytes, base: Path) -> list[Path]:
    """The certificate and key files a kubeconfig names (token files are re-read anyway)."""
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return []
    found: list[Path] = []
    if not isinstance(document, dict):
        return found
    for section, item in (("clusters", "cluster"), ("users", "user")):
        entries = document.get(section)
        for entry in entries if isinstance(entries, list) else []:
            fields = entry.get(item) if isinstance(entry, dict) else None
            for key in _FILE_FIELDS:
                value = fields.get(key) if isinstance(fields, dict) else None
                if isinstance(value, str) and value and "\0" not in value:
                    candidate = Path(value).expanduser()
                    found.append(candidate if candidate.is_absolute() else base / candidate)
    return sorted(set(found))


def resolve_kubeconfig_path(path: str, kubeconfig_dir: Path | None) -> Path:
    """`path` (relative ones inside `kubeconfig_dir`) if its real path lies inside the
    directory; raises ConfigError otherwise.

    `..` segments and symlinks are resolved for the check, so neither can escape the
    directory; the message never reveals where a symlink points. The path returned is the
    one given, not the resolved one: files a kubeconfig names relative to itself must be
    found through the same links. In a Kubernetes secret volume `kubeconfig` and `token` link
    through `..data` to a timestamped directory that is replaced on every update; resolved,
    a relative `tokenFile` would point into the old directory, deleted right after.
    """
    if kubeconfig_dir is None:
        raise ConfigError(
            "kubeconfigFile connections are disabled: the operator must set MIC_KUBECONFIG_DIR "
            "(mic serve --kubeconfig-dir) to the directory holding the kubeconfig files; "
            "or submit the kubeconfig text instead (type kubeconfig)"
        )
    if "\0" in path:
        raise ConfigError("path contains a NUL character; name a file inside MIC_KUBECONFIG_DIR")
    base = Path(os.path.realpath(kubeconfig_dir))
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(os.path.abspath(kubeconfig_dir)) / candidate
    real = Path(os.path.realpath(candidate))
    if real == base or not real.is_relative_to(base):
        raise ConfigError(
            f"path {path!r} is outside MIC_KUBECONFIG_DIR ({kubeconfig_dir}); name a file inside that "
            "directory (after resolving '..' and symlinks)"
        )
    if not real.is_file():
        raise ConfigError(f"no kubeconfig file {path!r} in MIC_KUBECONFIG_DIR ({kubeconfig_dir})")
    return candidate
