"""Turn a kubeconfig (file, text or parsed mapping) into a `ClusterConnection`, like kubectl.

Follows client-go's rules: the current or a chosen context picks a cluster, a user and a
namespace; relative file paths are resolved against the kubeconfig's own directory; `$KUBECONFIG`
may list several files, merged so that the first file to define a name wins; `*-data` fields
beat their file twins; a static token, basic auth or client certificate takes precedence over
an exec plugin. Deliberate differences: auth-providers and impersonation are refused (the
former are gone from client-go, the latter would silently act with more rights than the user
asked for), and a server without a scheme means https.

Kubeconfigs from untrusted sources (the service's API) are loaded with exec plugins and file
references disabled: both would let whoever submits one run programs or read files on the MIC
host. `Restrictions` words the refusal so the message says how to allow it.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mic.kube.auth import BasicAuth, StaticToken, TokenFile
from mic.kube.connection import Authenticator, ClusterConnection
from mic.kube.direct import check_server_url, split_url
from mic.kube.errors import ConfigError
from mic.kube.exec_plugin import API_V1, ExecConfig, ExecPlugin, cluster_info
from mic.kube.tls import decode_base64, load_ca, load_client_certificate, new_context, read_file

log = logging.getLogger(__name__)

EXEC_EXTENSION = "client.authentication.k8s.io/exec"


@dataclass(frozen=True)
class Restrictions:
    """How to word the refusal of a disabled exec plugin or file reference.

    `origin` completes "which is disabled for ..."; the fixes say how to allow it.
    """

    origin: str = "this kubeconfig"
    exec_fix: str = "pass allow_exec=True to allow it"
    files_fix: str = (
        "embed the contents instead (certificate-authority-data, client-certificate-data, "
        "client-key-data, token; `kubectl config view --flatten --minify` does it) or pass allow_files=True"
    )


API_RESTRICTIONS = Restrictions(
    origin="kubeconfigs submitted over the API",
    exec_fix="start MIC with --allow-kubeconfig-exec to allow it",
    files_fix=(
        "embed the contents instead (certificate-authority-data, client-certificate-data, "
        "client-key-data, token; `kubectl config view --flatten --minify` does it) or start MIC "
        "with --allow-kubeconfig-files to allow it"
    ),
)


def default_kubeconfig_paths() -> list[Path]:
    """The files kubectl reads without `--kubeconfig`: `$KUBECONFIG`'s list, else ~/.kube/config."""
    listed = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path.home() / ".kube" / "config"]


def load_kubeconfig(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    context: str | None = None,
    allow_exec: bool = True,
    allow_files: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    restrictions: Restrictions = Restrictions(),
) -> ClusterConnection:
    """Connection for `context` (default: current-context) of a kubeconfig.

    `source` is a file path, an already parsed kubeconfig mapping (relative paths then resolve
    against `base_dir`, default the working directory), or None for kubectl's default files.
    """
    if source is None:
        return _load_default(context, allow_exec, allow_files, restrictions)
    if isinstance(source, Mapping):
        base = Path(base_dir) if base_dir is not None else None
        document = _Document.from_mapping(source, base)
        return _build(document, "kubeconfig", context, allow_exec, allow_files, restrictions)
    return from_kubeconfig_file(
        source, context=context, allow_exec=allow_exec, allow_files=allow_files, restrictions=restrictions
    )


def from_kubeconfig_file(
    path: str | os.PathLike[str],
    context: str | None = None,
    *,
    allow_exec: bool = True,
    allow_files: bool = True,
    restrictions: Restrictions = Restrictions(),
) -> ClusterConnection:
    """Connection from a kubeconfig file; relative paths in it resolve against its directory."""
    if "\n" in os.fspath(path):
        # Kubeconfig text passed by mistake: echoing it as a "missing file" would leak its tokens.
        raise ConfigError(
            "the kubeconfig path contains a newline; pass kubeconfig text to from_kubeconfig_text"
        )
    path = Path(path).expanduser()
    document = _Document.from_text(_read_kubeconfig(path), path.parent.absolute())
    return _build(document, f"kubeconfig {path}", context, allow_exec, allow_files, restrictions)


def from_kubeconfig_text(
    text: str | bytes,
    context: str | None = None,
    *,
    allow_exec: bool = False,
    allow_files: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
    restrictions: Restrictions = API_RESTRICTIONS,
) -> ClusterConnection:
    """Connection from kubeconfig YAML text, as the service receives it over its API.

    Exec plugins and file references are off by default because the text may come from
    someone who must not run programs or read files on this host.
    """
    base = Path(base_dir) if base_dir is not None else None
    document = _Document.from_text(text, base)
    return _build(document, "kubeconfig text", context, allow_exec, allow_files, restrictions)


def _read_kubeconfig(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"kubeconfig file {str(path)!r} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read kubeconfig file {str(path)!r}: {error.strerror}") from None
    except ValueError:  # a NUL in the path
        raise ConfigError(f"kubeconfig file {str(path)!r} is not a usable file path") from None


def _load_default(
    context: str | None, allow_exec: bool, allow_files: bool, restrictions: Restrictions
) -> ClusterConnection:
    paths = [p for p in default_kubeconfig_paths() if p.is_file()]
    if not paths:
        raise ConfigError(
            "no kubeconfig found: set KUBECONFIG or create ~/.kube/config, or configure the cluster "
            "by URL and token"
        )
    document = _Document.empty()
    for path in paths:
        document.merge(_Document.from_text(_read_kubeconfig(path), path.parent.absolute()))
    label = f"kubeconfig {os.pathsep.join(str(p) for p in paths)}"
    return _build(document, label, context, allow_exec, allow_files, restrictions)


# --- parsing -----------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One named cluster/user/context, with the directory its relative paths resolve against."""

    fields: Mapping[str, Any]
    base_dir: Path | None


@dataclass
class _Document:
    clusters: dict[str, _Entry]
    users: dict[str, _Entry]
    contexts: dict[str, _Entry]
    current_context: str

    @classmethod
    def empty(cls) -> _Document:
        return cls({}, {}, {}, "")

    @classmethod
    def from_text(cls, text: str | bytes, base_dir: Path | None) -> _Document:
        try:
            parsed = yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            # Only problem and position: str(error) would quote the offending line, which may
            # be a line holding a token or key.
            mark = error.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = error.problem or error.context
            raise ConfigError(f"kubeconfig is not valid YAML: {where}{problem}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"kubeconfig is not valid YAML: {type(error).__name__}") from None
        except RecursionError:
            # PyYAML builds nested collections recursively: `[[[[...` thousands deep exhausts
            # the stack. No kubeconfig nests more than a handful of levels.
            raise ConfigError("kubeconfig is nested too deeply to be a kubeconfig") from None
        if parsed is None:
            raise ConfigError("kubeconfig is empty")
        if not isinstance(parsed, Mapping):
            raise ConfigError("kubeconfig must be a YAML mapping with clusters, users and contexts")
        return cls.from_mapping(parsed, base_dir)

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any], base_dir: Path | None) -> _Document:
        current = document.get("current-context") or ""
        if not isinstance(current, str):
            raise ConfigError("current-context must be a string")
        return cls(
            clusters=_named(document, "clusters", "cluster", base_dir),
            users=_named(document, "users", "user", base_dir),
            contexts=_named(document, "contexts", "context", base_dir),
            current_context=current,
        )

    def merge(self, other: _Document) -> None:
        """Add `other`'s entries; like client-go, the first file to define a name wins."""
        for mine, theirs in (
            (self.clusters, other.clusters),
            (self.users, other.users),
            (self.contexts, other.contexts),
        ):
            for name, entry in theirs.items():
                mine.setdefault(name, entry)
        self.current_context = self.current_context or other.current_context


def _named(document: Mapping[str, Any], key: str, item: str, base_dir: Path | None) -> dict[str, _Entry]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{key} must be a list of {{name: ..., {item}: {{...}}}} entries")
    named: dict[str, _Entry] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}[{index}] must be a mapping with name and {item}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{key}[{index}].name is required")
        fields = entry.get(item) or {}
        if not isinstance(fields, Mapping):
            raise ConfigError(f"{key}[{name!r}].{item} must be a mapping")
        named[name] = _Entry(fields, base_dir)  # later duplicates win, as in client-go's decoding
    return named


class _Fields:
    """Typed access to one entry's fields, naming `path.field` in every error."""

    def __init__(self, entry: _Entry, path: str) -> None:
        self.fields = entry.fields
        self.base_dir = entry.base_dir
        self.path = path

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.path}.{key} must be a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.fields.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path}.{key} must be true or false")
        return value

    def data(self, key: str) -> bytes | None:
        value = self.fields.get(key)
        return None if value in (None, "") else decode_base64(value, f"{self.path}.{key}")

    def file(self, key: str) -> Path | None:
        value = self.text(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path


# --- building ----------------------------------------------------------------------------------


def _build(
    document: _Document,
    label: str,
    context: str | None,
    allow_exec: bool,
    allow_files: bool,
    restrictions: Restrictions,
) -> ClusterConnection:
    name = context or document.current_context
    available = ", ".join(sorted(document.contexts)) or "none"
    if not name:
        raise ConfigError(
            f"{label} has no current-context; choose a context (available contexts: {available})"
        )
    if name not in document.contexts:
        raise ConfigError(f"context {name!r} is not in {label}; available contexts: {available}")
    ctx = _Fields(document.contexts[name], f"contexts[{name!r}].context")
    cluster_name = ctx.text("cluster")
    if cluster_name is None:
        raise ConfigError(f"{ctx.path}.cluster is required")
    if cluster_name not in document.clusters:
        raise ConfigError(f"context {name!r} refers to cluster {cluster_name!r}, which is not in clusters")
    user_name = ctx.text("user")
    if user_name is not None and user_name not in document.users:
        raise ConfigError(f"context {name!r} refers to user {user_name!r}, which is not in users")
    policy = _Policy(allow_exec, allow_files, restrictions)
    cluster = _Fields(document.clusters[cluster_name], f"clusters[{cluster_name!r}].cluster")
    user = _Fields(document.users[user_name], f"users[{user_name!r}].user") if user_name else None
    return _Builder(cluster, cluster_name, user, user_name or "", policy).build(
        namespace=ctx.text("namespace") or "default", description=f"{label} (context {name})"
    )


@dataclass(frozen=True)
class _Policy:
    allow_exec: bool
    allow_files: bool
    restrictions: Restrictions

    def file(self, fields: _Fields, key: str, owner: str) -> Path | None:
        path = fields.file(key)
        if path is not None and not self.allow_files:
            raise ConfigError(
                f"kubeconfig {owner} refers to a file ({key}), which is disabled for "
                f"{self.restrictions.origin}; {self.restrictions.files_fix}"
            )
        return path


class _Builder:
    def __init__(
        self, cluster: _Fields, cluster_name: str, user: _Fields | None, user_name: str, policy: _Policy
    ) -> None:
        self.cluster = cluster
        self.cluster_name = cluster_name
        self.user = user
        self.user_name = user_name
        self.policy = policy

    def build(self, *, namespace: str, description: str) -> ClusterConnection:
        server = _server_url(self.cluster)
        proxy = _proxy_url(self.cluster)
        tls_server_name = self.cluster.text("tls-server-name")
        insecure = self.cluster.flag("insecure-skip-tls-verify")
        ca_data = self._ca_data(insecure)
        ssl_context = None
        if server.startswith("https://"):
            ssl_context = new_context(insecure=insecure)
            if not insecure:
                load_ca(ssl_context, data=ca_data, what=f"{self.cluster.path}.certificate-authority(-data)")
            self._load_client_certificate(ssl_context)
        authenticator = self._authenticator(
            ssl_context,
            lambda: cluster_info(
                server=server,
                tls_server_name=tls_server_name,
                insecure=insecure,
                ca_data=ca_data,
                proxy_url=proxy,
                disable_compression=self.cluster.flag("disable-compression"),
                config=_exec_extension(self.cluster),
            ),
        )
        return ClusterConnection(
            server=server,
            ssl_context=ssl_context,
            authenticator=authenticator,
            proxy=proxy,
            default_namespace=namespace,
            description=description,
            tls_server_name=tls_server_name,
        )

    def _ca_data(self, insecure: bool) -> bytes | None:
        owner = f"cluster {self.cluster_name!r}"
        data = self.cluster.data("certificate-authority-data")
        file = self.policy.file(self.cluster, "certificate-authority", owner)
        if insecure and (data is not None or file is not None):
            raise ConfigError(
                f"{self.cluster.path} sets insecure-skip-tls-verify together with a certificate "
                "authority; remove one of them (client-go refuses this too)"
            )
        if data is None and file is not None:
            data = read_file(file, f"{self.cluster.path}.certificate-authority")
        return data

    def _load_client_certificate(self, ssl_context: ssl.SSLContext) -> None:
        if self.user is None:
            return
        owner = f"user {self.user_name!r}"
        cert_data = self.user.data("client-certificate-data")
        key_data = self.user.data("client-key-data")
        cert_file = None if cert_data else self.policy.file(self.user, "client-certificate", owner)
        key_file = None if key_data else self.policy.file(self.user, "client-key", owner)
        has_cert, has_key = bool(cert_data or cert_file), bool(key_data or key_file)
        if not has_cert and not has_key:
            return
        if not has_key:
            raise ConfigError(
                f"{self.user.path}: client-key-data or client-key is required with a client certificate"
            )
        if not has_cert:
            raise ConfigError(
                f"{self.user.path}: client-certificate-data or client-certificate is required "
                "with a client key"
            )
        load_client_certificate(
            ssl_context,
            cert_data=cert_data,
            cert_file=cert_file,
            key_data=key_data,
            key_file=key_file,
            what=f"{self.user.path}.client-certificate/client-key",
        )

    def _has_client_certificate(self) -> bool:
        assert self.user is not None
        return any(
            self.user.fields.get(key)
            for key in ("client-certificate", "client-certificate-data", "client-key", "client-key-data")
        )

    def _authenticator(
        self, ssl_context: ssl.SSLContext | None, exec_cluster_info: Callable[[], dict[str, Any]]
    ) -> Authenticator | None:
        user = self.user
        if user is None:
            return None
        if user.fields.get("auth-provider"):
            provider = user.fields["auth-provider"]
            kind = provider.get("name") if isinstance(provider, Mapping) else None
            raise ConfigError(
                f"{user.path}.auth-provider ({kind or 'unnamed'}) is not supported (kubectl dropped "
                "auth providers); use an exec credential plugin instead, e.g. kubelogin for oidc/azure "
                "or gke-gcloud-auth-plugin for gcp"
            )
        impersonation = [k for k in ("as", "as-uid", "as-groups", "as-user-extra") if user.fields.get(k)]
        if impersonation:
            raise ConfigError(
                f"{user.path} uses impersonation ({', '.join(impersonation)}), which MIC does not "
                "support; give MIC a user with the needed rights directly"
            )
        token = user.text("token")
        token_file = self.policy.file(user, "tokenFile", f"user {self.user_name!r}")
        username, password = user.text("username"), user.text("password")
        candidates = (("token", token or token_file), ("basic auth", username or password))
        methods = [method for method, used in candidates if used]
        if len(methods) > 1:
            raise ConfigError(
                f"{user.path} has more than one authentication method ({' and '.join(methods)}); "
                "keep only one"
            )
        if token_file is not None:  # client-go: the file wins and is re-read, the token only seeds it
            return TokenFile(token_file, what=f"{user.path}.tokenFile")
        if token is not None:
            return StaticToken(token, what=f"{user.path}.token")
        if username is not None:
            return BasicAuth(username, password or "")
        if password is not None:
            raise ConfigError(f"{user.path}.username is required with a password")
        if user.fields.get("exec") is None:
            return None
        if self._has_client_certificate():
            log.debug("%s: client certificate set, exec plugin not used (client-go does the same)", user.path)
            return None
        return self._exec_plugin(user, ssl_context, exec_cluster_info())

    def _exec_plugin(
        self, user: _Fields, ssl_context: ssl.SSLContext | None, cluster: dict[str, Any]
    ) -> ExecPlugin:
        if not self.policy.allow_exec:
            raise ConfigError(
                f"kubeconfig user {self.user_name!r} uses an exec credential plugin, which is disabled "
                f"for {self.policy.restrictions.origin}; {self.policy.restrictions.exec_fix}"
            )
        spec = user.fields["exec"]
        path = f"{user.path}.exec"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{path} must be a mapping")
        fields = _Fields(_Entry(spec, user.base_dir), path)
        command = fields.text("command")
        if command is None:
            raise ConfigError(f"{path}.command is required")
        if os.sep in command and not Path(command).is_absolute() and user.base_dir is not None:
            command = str(user.base_dir / command)  # client-go: relative to the kubeconfig, not cwd
        api_version = fields.text("apiVersion")
        if api_version is None:
            raise ConfigError(f"{path}.apiVersion is required (e.g. client.authentication.k8s.io/v1)")
        interactive_mode = fields.text("interactiveMode")
        if interactive_mode is None:
            if api_version == API_V1:
                raise ConfigError(f"{path}.interactiveMode is required for {API_V1} (use Never)")
            interactive_mode = "IfAvailable"
        config = ExecConfig(
            command=command,
            args=_string_list(spec.get("args"), f"{path}.args"),
            env=_env_list(spec.get("env"), f"{path}.env"),
            api_version=api_version,
            install_hint=fields.text("installHint") or "",
            provide_cluster_info=fields.flag("provideClusterInfo"),
            cluster=cluster,
            interactive_mode=interactive_mode,
            user=self.user_name,
        )
        config.resolve_command()  # a missing plugin is reported when the cluster is added, not later
        return ExecPlugin(config, ssl_context=ssl_context)


def _server_url(cluster: _Fields) -> str:
    server = cluster.text("server")
    if server is None:
        raise ConfigError(f"{cluster.path}.server is required")
    if "://" not in server:
        server = f"https://{server}"
    check_server_url(server, f"{cluster.path}.server")
    return server


def _proxy_url(cluster: _Fields) -> str | None:
    proxy = cluster.text("proxy-url")
    if proxy is None:
        return None
    scheme = split_url(proxy, f"{cluster.path}.proxy-url").scheme
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"{cluster.path}.proxy-url must be an http:// or https:// proxy URL"
            + ("; MIC does not support socks5 proxies" if scheme.startswith("socks") else "")
        )
    return proxy


def _exec_extension(cluster: _Fields) -> Any:
    extensions = cluster.fields.get("extensions") or []
    if isinstance(extensions, list):
        for extension in extensions:
            if isinstance(extension, Mapping) and extension.get("name") == EXEC_EXTENSION:
                return extension.get("extension")
    return None


def _string_list(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path} must be a list of strings")
    return tuple(value)


def _env_list(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{path} must be a list of {{name, value}} entries")
    pairs = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{path}[{index}].name is required")
        if not isinstance(item.get("value", ""), str):
            raise ConfigError(f"{path}[{index}].value must be a string")
        pairs.append((item["name"], item.get("value", "")))
    return tuple(pairs)
