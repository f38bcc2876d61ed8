"""What an operator configures when starting the service (`mic serve` flags and `MIC_*` env).

Kept free of FastAPI and Typer so tests and embedders build a `ServiceSettings` directly and
hand it to `mic.api.app.create_app`.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from mic.kube.informer import InformerOptions
from mic.service.defaults import CACHE_IDLE_SECONDS, DEFAULT_DATA_DIR, DEFAULT_LEASE_SECONDS, MAX_EVENT_TAILS
from mic.store import TOKEN_ROLES, TokenRole, default_database_url

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB): plenty for a kubeconfig, small enough to refuse abuse."""


CACHE_MODES = ("full", "lean", "compact")
"""How informer caches keep objects: `full` as received; `lean` without managedFields (nothing
MIC delivers or serves needs them); `compact` (the default) lean and as JSON bytes: about a
quarter of lean's memory, and faster to ingest (an event's old object stays bytes unless a
filter reads it, and the store writes those bytes as they are), for a few microseconds of
decoding on each read of the cache (queries, snapshots). Measured in bench/results."""


class SettingsError(ValueError):
    """A setting is unusable; the message names the setting and what to change."""


MIN_TOKEN_LENGTH = 16
"""Shorter API tokens are refused at start: `a` or `change-me` is guessed before anything else."""

RECOMMENDED_TOKEN_LENGTH = 32
"""Shorter API tokens (yet at least `MIN_TOKEN_LENGTH`) start with a warning."""

TOKEN_ADVICE = "generate one with `openssl rand -hex 32`"


@dataclass(frozen=True)
class TokenGrant:
    """One operator-configured API token: accepted as given, never stored or logged."""

    name: str
    role: TokenRole
    token: str = field(repr=False)


SourcedGrant = tuple[TokenGrant, str]
"""A token with the words that name where it was configured (for messages: never the token)."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service needs to start. Defaults suit `make run` on a laptop.

    `database_url` wins over `data_dir` (which only places the default SQLite file).
    `kubeconfig_dir` is the only directory whose kubeconfig files API users may name
    (`kubeconfigFile` connections); None disables such connections.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    kubeconfig_dir: Path | None = None
    admin_token: str | None = field(default=None, repr=False)
    viewer_token: str | None = field(default=None, repr=False)
    tokens_file: Path | None = None
    allow_kubeconfig_exec: bool = False
    allow_kubeconfig_files: bool = False
    original_api_insecure_tls: bool = False
    """Let the original MIC API register an https `KubeURL` without `KubeCAData`, connecting
    without verifying the server's certificate, as the original did (see `api.routes.original`)."""
    log_level: str = "info"
    cache_mode: str = "compact"
    """One of CACHE_MODES."""
    resource_sync_timeout: float = 10.0
    """How long a resource query waits for a newly started cache to complete its first list."""
    resync_interval: float = 30.0
    """How often the supervisor re-reads the store (other replicas' changes, connections to retry)."""
    cache_idle_seconds: float = CACHE_IDLE_SECONDS
    """How long a cache that a resource query started stays once no query uses it."""
    max_event_tails: int = MAX_EVENT_TAILS
    """How many live tails (`GET /v1/events`) MIC serves at once, all tokens together; one more is
    answered 503. Each tail may open watches in every cluster it names (one per namespace)."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long the store's delivery lease lasts unrenewed: a standby MIC takes over this long
    after the active one stops renewing it (at once after a clean stop). See `mic.service.lease`."""
    tls_cert_file: Path | None = None
    """PEM certificate chain for serving the API over HTTPS (with `tls_key_file`)."""
    tls_key_file: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    announce_generated_token: bool = True
    """Print a generated admin token to stderr (`mic serve`); tests turn it off and read the store."""

    @property
    def effective_database_url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)

    @property
    def swagger_url(self) -> str:
        """Where a user on this machine opens the Swagger UI."""
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{host}:{self.port}/swagger/"

    def check_tls(self) -> None:
        """Raise SettingsError unless TLS is off or both files load as a certificate and its key."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError(
                "give both --tls-cert-file and --tls-key-file (MIC_TLS_CERT_FILE, MIC_TLS_KEY_FILE)"
            )
        if self.tls_cert_file is None or self.tls_key_file is None:
            return
        for path in (self.tls_cert_file, self.tls_key_file):
            if not path.is_file():
                raise SettingsError(f"TLS file '{path}' does not exist")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        except (ssl.SSLError, OSError) as error:
            raise SettingsError(
                f"--tls-cert-file '{self.tls_cert_file}' and --tls-key-file '{self.tls_key_file}' are not a"
                f" PEM certificate chain and its private key ({error.strerror or error})"
            ) from None

    def informer_options(self) -> InformerOptions:
        """The informer settings that `cache_mode` stands for; raises SettingsError."""
        if self.cache_mode not in CACHE_MODES:
            raise SettingsError(
                f"cache mode {self.cache_mode!r} is not one of {', '.join(CACHE_MODES)} (MIC_CACHE_MODE)"
            )
        return InformerOptions(
            strip_managed_fields=self.cache_mode != "full", compact_cache=self.cache_mode == "compact"
        )

    def token_grants(self) -> list[TokenGrant]:
        """The tokens configured by environment and tokens file; raises SettingsError, also for
        a token shorter than `MIN_TOKEN_LENGTH` (the message names where it is, never the token)."""
        return [grant for grant, _ in self._sourced_grants()]

    def environment_grants(self) -> list[TokenGrant]:
        """Only the tokens of `MIC_ADMIN_TOKEN` and `MIC_VIEWER_TOKEN`, checked as `token_grants`
        checks them: the service reads the tokens file itself, to follow its changes."""
        sourced = self._environment_sourced()
        refuse_short_tokens(sourced)
        return [grant for grant, _ in sourced]

    def weak_token_warnings(self) -> list[str]:
        """A message for each accepted token shorter than `RECOMMENDED_TOKEN_LENGTH`, naming
        where it is (never the token); raises SettingsError as `token_grants` does."""
        return weak_token_messages(self._sourced_grants())

    def _sourced_grants(self) -> list[SourcedGrant]:
        """Each configured token with the words that name where it was configured."""
        sourced = self._environment_sourced()
        if self.tokens_file is not None:
            sourced.extend(_tokens_file_sourced(read_tokens_file(self.tokens_file), self.tokens_file))
        refuse_short_tokens(sourced)
        return sourced

    def _environment_sourced(self) -> list[SourcedGrant]:
        sourced: list[SourcedGrant] = []
        if self.admin_token:
            sourced.append((TokenGrant("MIC_ADMIN_TOKEN", "admin", self.admin_token), "MIC_ADMIN_TOKEN"))
        if self.viewer_token:
            sourced.append((TokenGrant("MIC_VIEWER_TOKEN", "viewer", self.viewer_token), "MIC_VIEWER_TOKEN"))
        return sourced


def checked_tokens_file(data: bytes, path: Path) -> list[SourcedGrant]:
    """The grants in the tokens file content `data` (read from `path`), checked as at start:
    raises SettingsError with the same messages (bad syntax, unknown role, short token)."""
    sourced = _tokens_file_sourced(parse_tokens_file(data, path), path)
    refuse_short_tokens(sourced)
    return sourced


def refuse_short_tokens(sourced: list[SourcedGrant]) -> None:
    """Raise SettingsError for the first token shorter than `MIN_TOKEN_LENGTH`."""
    for grant, where in sourced:
        if len(grant.token) < MIN_TOKEN_LENGTH:
            raise SettingsError(
                f"{where} is {len(grant.token)} characters long: API tokens must have at least"
                f" {MIN_TOKEN_LENGTH} ({RECOMMENDED_TOKEN_LENGTH} or more recommended); {TOKEN_ADVICE}"
            )


def weak_token_messages(sourced: list[SourcedGrant]) -> list[str]:
    """A warning for each token shorter than `RECOMMENDED_TOKEN_LENGTH`, naming where it is."""
    return [
        f"{where} is only {len(grant.token)} characters long; {RECOMMENDED_TOKEN_LENGTH} or more"
        f" random characters are recommended ({TOKEN_ADVICE})"
        for grant, where in sourced
        if len(grant.token) < RECOMMENDED_TOKEN_LENGTH
    ]


def _tokens_file_sourced(grants: list[TokenGrant], path: Path) -> list[SourcedGrant]:
    return [
        (grant, f"the token of {grant.name!r} in tokens file {str(path)!r} (MIC_TOKENS_FILE)")
        for grant in grants
    ]


def read_tokens_file_bytes(path: Path) -> bytes:
    """The tokens file's content as it is now; raises SettingsError when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise SettingsError(f"cannot read tokens file {str(path)!r}: {error.strerror or error}") from None


def read_tokens_file(path: Path) -> list[TokenGrant]:
    """Read and parse a tokens file (see `parse_tokens_file`); raises SettingsError."""
    return parse_tokens_file(read_tokens_file_bytes(path), path)


def parse_tokens_file(data: bytes, path: Path) -> list[TokenGrant]:
    """Parse a tokens file: one `role:name:token` per line, `#` comments and blank lines ignored.

    A file whose first non-blank character is `[` is read as JSON instead:
    `[{"role": "admin", "name": "ci", "token": "..."}]`. Error messages name the line, never
    the token. Token lengths are checked by `refuse_short_tokens`, which knows where each came from.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SettingsError(f"tokens file {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    if text.lstrip().startswith("["):
        return _json_tokens(text, path)
    grants = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, sep1, rest = line.partition(":")
        name, sep2, token = rest.partition(":")
        if not (sep1 and sep2 and name.strip() and token.strip()):
            raise SettingsError(f"tokens file {str(path)!r} line {number}: expected role:name:token")
        grants.append(_grant(role.strip(), name.strip(), token.strip(), f"{path} line {number}"))
    return grants


def _json_tokens(text: str, path: Path) -> list[TokenGrant]:
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"tokens file {str(path)!r} is not valid JSON: line {error.lineno}") from None
    grants = []
    for index, entry in enumerate(entries):
        where = f"{path} entry {index}"
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry.get(k) for k in ("role", "name", "token")
        ):
            raise SettingsError(f"tokens file {where}: expected {{role, name, token}} strings")
        grants.append(_grant(entry["role"], entry["name"], entry["token"], where))
    return grants


def _grant(role: str, name: str, token: str, where: str) -> TokenGrant:
    if role not in TOKEN_ROLES:
        raise SettingsError(
            f"tokens file {where}: role must be one of {', '.join(TOKEN_ROLES)}, not {role!r}"
        )
    return TokenGrant(name, role, token)  # type: ignore[arg-type]
