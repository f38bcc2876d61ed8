"""What a subscription asks for: which changes (filter), where (sink), how (format, batching, policy).

These are plain frozen values. The API's pydantic models map onto them, the store keeps them as
`to_json()` and the engine rebuilds them with `from_json()`. Every value validates itself on
construction, so an invalid subscription cannot exist anywhere in MIC: it is rejected where the
user wrote it, as an `InvalidSubscriptionError` whose message names the field (by its JSON path,
`filter.labelSelector`, as the REST API spells it) and says what to write instead.

`Format` is defined in `mic.events.encodings` (events depend on nothing else in MIC) and
re-exported here, so `mic.routing.spec.Format` and the encoder's `Format` are one enum.

Constructors are forgiving about containers (lists become tuples, strings become enums) so that
JSON-shaped input and Python-shaped input give equal values, and label selectors are kept in
their canonical form, so two subscriptions that select the same labels can share one watch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import math
import os
import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Final, Literal, NoReturn
from urllib.parse import quote, urlsplit

from mic.events.encodings import Format
from mic.events.event import EventType
from mic.kube.selectors import InvalidSelectorError, LabelSelector
from mic.routing.changes import InvalidFieldPathError, parse_field_path
from mic.routing.expression import InvalidExpressionError, compile_cel

__all__ = [
    "Batching",
    "DeliveryPolicy",
    "Format",
    "InvalidSubscriptionError",
    "Overflow",
    "SinkTls",
    "SubscriptionFilter",
    "SubscriptionSpec",
    "WebhookSink",
]

Overflow = Literal["coalesce", "dead-letter"]

_DNS1123_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL_MAX = 63
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
_HEADER_VALUE_RE: Final = re.compile(r"[\t\x20-\x7e]*")  # visible ASCII, spaces and tabs
_PRINTABLE_ASCII: Final = "".join(map(chr, range(0x21, 0x7F)))
# Headers MIC computes for every request; a configured value would break the body or signature.
_RESERVED_HEADERS: Final = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"}
    | {"webhook-id", "webhook-timestamp", "webhook-signature"}
)
_SECRET_PREFIX = "whsec_"
_SECRET_BYTES = (24, 64)  # the Standard Webhooks recommendation
_ALL_EVENT_TYPES: Final = (EventType.ADDED, EventType.MODIFIED, EventType.DELETED)


class InvalidSubscriptionError(ValueError):
    """A subscription MIC cannot serve; `field` is the JSON path of the culprit.

    The API turns it into a 4xx whose message is `str(error)`: "<field>: <what to fix>".
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# --- checks shared by the values ------------------------------------------------------------------


def _fail(path: str, problem: str) -> NoReturn:
    raise InvalidSubscriptionError(path, problem)


def _strings(path: str, value: Any, *, allow_none: bool = False) -> tuple[str, ...] | None:
    """A list or tuple of strings as a tuple; a bare string is refused (it is not a list of one)."""
    if value is None:
        if allow_none:
            return None
        _fail(path, "must be a list of strings")
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        _fail(path, f"must be a list of strings, not {type(value).__name__} {value!r}")
    items = sorted(value) if isinstance(value, set | frozenset) else value
    for i, item in enumerate(items):
        if not isinstance(item, str):
            _fail(f"{path}[{i}]", f"must be a string, not {type(item).__name__} {item!r}")
    return tuple(dict.fromkeys(items))  # duplicates dropped, order kept


def _dns_label_problem(value: str) -> str | None:
    if len(value) > _DNS1123_LABEL_MAX:
        return f"{value!r} is longer than {_DNS1123_LABEL_MAX} characters"
    if not _DNS1123_LABEL_RE.fullmatch(value):
        return (
            f"{value!r} is not a DNS-1123 label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'web-1')"
        )
    return None


def _dns_labels(path: str, values: tuple[str, ...]) -> None:
    for i, value in enumerate(values):
        problem = _dns_label_problem(value)
        if problem:
            _fail(f"{path}[{i}]", problem)


def _bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(path, f"must be true or false, not {value!r}")


def _int(path: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"must be a whole number, not {value!r}")
    if not low <= value <= high:
        _fail(path, f"must be between {low} and {high}, not {value}")


def _seconds(path: str, value: Any, *, high: float, low: float = 0.0) -> float:
    """A positive, finite number of seconds in (low, high], as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, f"must be a number of seconds, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= low or number > high:
        _fail(path, f"must be more than {low:g} and at most {high:g} seconds, not {value!r}")
    return number


def _canonical_selector(path: str, value: Any) -> str:
    if not isinstance(value, str):
        _fail(path, f"must be a label selector string such as 'app=web,tier in (a,b)', not {value!r}")
    try:
        return str(LabelSelector.parse(value))
    except InvalidSelectorError as error:
        _fail(path, str(error))


def _set(obj: object, name: str, value: Any) -> None:
    """Normalise a field of a frozen dataclass during __post_init__."""
    object.__setattr__(obj, name, value)


def _object(path: str, data: Any, known: Mapping[str, str]) -> dict[str, Any]:
    """A JSON object with only `known` keys, renamed to the Python field names.

    A null member counts as absent (its default): PATCH-style bodies and API models that
    dump explicit nulls then mean the same as leaving the member out. `to_json` writes null
    only where None is the default, so the round trip is exact.
    """
    if not isinstance(data, Mapping):
        _fail(path or "subscription", f"must be a JSON object, not {type(data).__name__}")
    unknown = [key for key in data if key not in known]
    if unknown:
        prefix = f"{path}." if path else ""
        _fail(f"{prefix}{unknown[0]}", f"unknown field; the known fields are {', '.join(known)}")
    return {known[key]: value for key, value in data.items() if value is not None}


def _validate_header(name: Any, value: Any) -> None:
    """A header MIC can send as written: a token name and an ASCII value (RFC 9110).

    Bytes outside ASCII have no agreed meaning in a header (servers read them as Latin-1, UTF-8
    or reject the request), and a control character could split the request: both are refused
    here, where the user can fix them, not found by the first delivery. The message names the
    bad character but never shows the value, which may be a credential.
    """
    if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
        _fail(
            "sink.headers",
            f"{name!r} is not a valid HTTP header name: use letters, digits and "
            "!#$%&'*+-.^_`|~ (e.g. 'X-Team')",
        )
    path = f"sink.headers.{name}"
    if not isinstance(value, str):
        _fail(path, f"must be a string, not {type(value).__name__}")
    if not _HEADER_VALUE_RE.fullmatch(value):
        position, char = next((i, c) for i, c in enumerate(value) if not _HEADER_VALUE_RE.fullmatch(c))
        _fail(
            path,
            f"has {char!r} at position {position}: a header value may hold only visible ASCII, "
            "spaces and tabs (no line breaks or other control characters, no non-ASCII text); "
            "percent-encode or base64-encode other text",
        )
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith("ce-"):
        _fail(
            path,
            "MIC sets this header itself (content type, length, CloudEvents ce-* and "
            "Standard Webhooks signature headers); remove it",
        )


def _sink_url(url: Any) -> str:
    """The sink URL as MIC sends it, or `InvalidSubscriptionError` saying what to fix.

    A non-ASCII URL is made ASCII as browsers and HTTP libraries (requests, httpx) do: the host
    IDNA-encoded (with Python's codec, the one the resolver uses when MIC connects) and the rest
    percent-encoded as UTF-8. A user who writes 'https://bücher.example/größe' means exactly
    that, and a spec stored before this rule existed loads and works. An ASCII URL is kept as
    written. The stored (and shown) form is the one on the wire.
    """
    example = "e.g. 'https://lb.example.com/mic/events'"
    if not isinstance(url, str) or not url:
        _fail("sink.url", f"is required: the webhook's http(s) URL, {example}")
    if any(char.isspace() for char in url):
        _fail("sink.url", f"{url!r} contains whitespace; percent-encode it")
    if any(char < " " or char == "\x7f" for char in url):
        _fail("sink.url", f"{url!r} contains a control character; percent-encode it")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        _fail("sink.url", f"{url!r} is not a valid URL ({error})")
    if parts.scheme.lower() not in ("http", "https"):
        _fail("sink.url", f"{url!r} must be an http:// or https:// URL, {example}")
    if "@" in parts.netloc:
        _fail(
            "sink.url",
            "must not contain a user name or password (user:password@host): MIC does not send "
            "them, and the URL is shown to every reader; put credentials in sink.headers, which "
            'are write-only, e.g. {"Authorization": "Basic <base64 of user:password>"}',
        )
    if not parts.hostname:
        _fail("sink.url", f"{url!r} has no host, {example}")
    if parts.fragment:
        _fail("sink.url", f"{url!r} has a '#' fragment, which is never sent to a server; remove it")
    host = _ascii_host(parts.hostname)
    if url.isascii():
        return url
    scheme_end = url.index("//") + 2  # the netloc follows the first '//'
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    try:
        rest = quote(url[scheme_end + len(parts.netloc) :], safe=_PRINTABLE_ASCII)
    except UnicodeEncodeError:
        _fail("sink.url", f"{url!r} contains a character that is not valid Unicode (a lone surrogate)")
    return f"{url[:scheme_end]}{netloc}{rest}"


def _ascii_host(host: str, path: str = "sink.url") -> str:
    """`host` IDNA-encoded, as the resolver will; a name it cannot encode cannot be reached.

    ASCII names are checked too: an empty label ('a..b') or one over 63 characters would
    otherwise fail only when the first delivery connects.
    """
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as error:
        _fail(
            path,
            f"the host {host!r} is not a valid domain name ({error}): each dot-separated label "
            "needs 1 to 63 characters, and an international name must be valid IDNA",
        )


# --- TLS settings of a sink -----------------------------------------------------------------------

_TLS_PATH = "sink.tls"
_PEM_BEGIN = "-----BEGIN "
_SERVER_NAME_LABEL_RE: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def _pem_text(path: str, value: Any, expected: str) -> str:
    """`value` if it looks like PEM text of `expected` blocks; the message never shows it.

    A kubeconfig's `*-data` fields are base64 of the PEM text, and the habit carries over: base64
    is recognised and refused with the fix, as is anything else that is not PEM text.
    """
    example = f"PEM text starting with '-----BEGIN {expected}-----'"
    if not isinstance(value, str):
        _fail(path, f"must be a string of {example}, not {type(value).__name__}")
    if not value.strip():
        _fail(path, f"is empty: give {example}, or leave it out (null)")
    if _PEM_BEGIN not in value:
        try:
            decoded = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if _PEM_BEGIN.encode() in decoded:
            _fail(
                path,
                "is base64-encoded PEM (as in a kubeconfig's *-data fields); MIC takes the PEM text "
                f"itself: decode it first (base64 -d) and send the text, {example}",
            )
        _fail(path, f"is not PEM text: expected {example}")
    if not value.isascii():
        _fail(path, "has characters outside ASCII; PEM text is ASCII only (was the file re-encoded?)")
    return value


def _server_name(value: Any) -> str:
    """The name to send in SNI and verify in the recipient's certificate (IDNA-encoded)."""
    path = f"{_TLS_PATH}.serverName"
    example = "a host name such as 'lb.internal.example'"
    if not isinstance(value, str) or not value:
        _fail(path, f"must be {example}, not {value!r}")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if any(char.isspace() or char in "/:@[]*?#" for char in value):
        _fail(
            path,
            f"{value!r} is not a host name: give the name only (no scheme, port, path or "
            f"wildcard), {example}",
        )
    host = _ascii_host(value, path)
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_SERVER_NAME_LABEL_RE.fullmatch(label) for label in labels):
        _fail(path, f"{value!r} is not a valid host name: use letters, digits, '-' and '.', {example}")
    return host


def _write_private(path: str, text: str) -> None:
    """Write `text` to a new file only this process's user can read (0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="ascii") as file:
        file.write(text)


def _no_password() -> bytes:
    return b""  # an encrypted key then fails to load instead of prompting on a terminal


def _load_client_certificate(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """`context.load_cert_chain` from PEM text, which it can only read from files.

    The files live in a private temporary directory (0700, files 0600) that is removed as soon
    as OpenSSL has read them, so the key is on disk for the moment of loading only.
    """
    cert_path = f"{_TLS_PATH}.clientCertificateData"
    key_path = f"{_TLS_PATH}.clientKeyData"
    try:  # parse the certificate(s) on their own first, so a problem names the right field
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=certificate)
    except (ssl.SSLError, ValueError, TypeError) as error:
        _fail(cert_path, f"is not a PEM certificate OpenSSL can load ({error})")
    with tempfile.TemporaryDirectory(prefix="mic-sink-tls-") as directory:
        cert_file = os.path.join(directory, "tls.crt")
        key_file = os.path.join(directory, "tls.key")
        _write_private(cert_file, certificate)
        _write_private(key_file, key)
        try:
            context.load_cert_chain(cert_file, key_file, password=_no_password)
        except ssl.SSLError as error:
            if "KEY_VALUES_MISMATCH" in str(error):
                _fail(
                    key_path,
                    "is not the key of the (first) certificate in clientCertificateData "
                    f"({error}); send the matching pair",
                )
            _fail(key_path, f"is not a PEM private key OpenSSL can load ({error})")


# --- the values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which changes a subscription receives; every condition must hold (AND).

    `clusters=None` means every cluster, including clusters registered later, and
    `cluster_selector` narrows by cluster labels (so a cluster labelled later joins too).
    `exclude_namespaces` applies even when `namespaces` is given; it defaults to `kube-system`
    as the original MIC did, and `()` turns that off. Cluster-scoped objects (a Namespace, a
    ClusterRole) have no namespace and pass both namespace conditions.
    """

    resources: tuple[str, ...]
    clusters: tuple[str, ...] | None = None
    cluster_selector: str = ""
    namespaces: tuple[str, ...] | None = None
    exclude_namespaces: tuple[str, ...] = ("kube-system",)
    label_selector: str = ""
    event_types: tuple[EventType, ...] = _ALL_EVENT_TYPES
    cel: str | None = None
    suppress_noop: bool = True
    fields: tuple[str, ...] = ()

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "resources": "resources",
        "clusters": "clusters",
        "clusterSelector": "cluster_selector",
        "namespaces": "namespaces",
        "excludeNamespaces": "exclude_namespaces",
        "labelSelector": "label_selector",
        "eventTypes": "event_types",
        "cel": "cel",
        "suppressNoop": "suppress_noop",
        "fields": "fields",
    }

    def __post_init__(self) -> None:
        resources = _strings("filter.resources", self.resources)
        _set(self, "resources", tuple(dict.fromkeys(r.strip() for r in resources or ())))
        _set(self, "clusters", _strings("filter.clusters", self.clusters, allow_none=True))
        _set(self, "namespaces", _strings("filter.namespaces", self.namespaces, allow_none=True))
        _set(self, "exclude_namespaces", _strings("filter.excludeNamespaces", self.exclude_namespaces))
        _set(self, "fields", _strings("filter.fields", self.fields))
        _set(self, "cluster_selector", _canonical_selector("filter.clusterSelector", self.cluster_selector))
        _set(self, "label_selector", _canonical_selector("filter.labelSelector", self.label_selector))
        types: list[EventType] = []
        for i, value in enumerate(_strings("filter.eventTypes", self.event_types) or ()):
            try:
                types.append(EventType(value))
            except ValueError:
                _fail(f"filter.eventTypes[{i}]", f"{value!r} is not one of ADDED, MODIFIED, DELETED")
        _set(self, "event_types", tuple(types))
        if isinstance(self.cel, str) and not self.cel.strip():
            _set(self, "cel", None)  # "" from a form or a pydantic default means "no expression"
        self.validate()

    def validate(self) -> None:
        """Raise `InvalidSubscriptionError` unless this filter can match something sensibly."""
        if not self.resources:
            _fail(
                "filter.resources",
                "list at least one resource, as kubectl names it (e.g. 'ingresses', 'services', "
                "'ingresses.networking.k8s.io')",
            )
        for i, resource in enumerate(self.resources):
            if not resource or any(char.isspace() for char in resource):
                _fail(
                    f"filter.resources[{i}]",
                    f"{resource!r} is not a resource name; write e.g. 'ingresses' or 'pods'",
                )
        if self.clusters is not None:
            if not self.clusters:
                _fail("filter.clusters", "an empty list selects no cluster; omit it (null) for all clusters")
            _dns_labels("filter.clusters", self.clusters)
        if self.namespaces is not None:
            if not self.namespaces:
                _fail(
                    "filter.namespaces",
                    "an empty list selects no namespace; omit it (null) for all namespaces",
                )
            _dns_labels("filter.namespaces", self.namespaces)
        _dns_labels("filter.excludeNamespaces", self.exclude_namespaces)
        if self.namespaces is not None:
            both = [ns for ns in self.namespaces if ns in self.exclude_namespaces]
            if both:
                _fail(
                    "filter.namespaces",
                    f"{both[0]!r} is also in excludeNamespaces (which defaults to ['kube-system']), "
                    "so nothing in it would match; remove it from excludeNamespaces "
                    "(e.g. excludeNamespaces: [])",
                )
        if not self.event_types:
            _fail("filter.eventTypes", "list at least one of ADDED, MODIFIED, DELETED (or omit it for all)")
        if self.cel is not None:
            if not isinstance(self.cel, str):
                _fail("filter.cel", f"must be a CEL expression string, not {self.cel!r}")
            try:
                compile_cel(self.cel)
            except InvalidExpressionError as error:
                _fail("filter.cel", str(error))
        _bool("filter.suppressNoop", self.suppress_noop)
        for i, path in enumerate(self.fields):
            try:
                parse_field_path(path)
            except InvalidFieldPathError as error:
                _fail(f"filter.fields[{i}]", str(error))

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": list(self.resources),
            "clusters": list(self.clusters) if self.clusters is not None else None,
            "clusterSelector": self.cluster_selector,
            "namespaces": list(self.namespaces) if self.namespaces is not None else None,
            "excludeNamespaces": list(self.exclude_namespaces),
            "labelSelector": self.label_selector,
            "eventTypes": [t.value for t in self.event_types],
            "cel": self.cel,
            "suppressNoop": self.suppress_noop,
            "fields": list(self.fields),
        }

    @classmethod
    def from_json(cls, data: Any) -> SubscriptionFilter:
        """The filter from its JSON object; absent keys take their defaults."""
        kwargs = _object("filter", data, cls.JSON_KEYS)
        if "resources" not in kwargs:
            _fail("filter.resources", "is required: list the resources to watch, e.g. ['ingresses']")
        return cls(**kwargs)


@dataclass(frozen=True)
class SinkTls:
    """How MIC makes the TLS connection to an https sink: whom it trusts, what it presents.

    `ca_data` (PEM certificates) replaces the system CAs for this sink, as a kubeconfig's
    certificate-authority-data does; `client_certificate_data` and `client_key_data` (PEM, both
    or neither) are presented when the recipient asks for a client certificate (mTLS);
    `server_name` is sent in SNI and verified in the recipient's certificate instead of the
    URL's host. The values are PEM text, not base64 of it (JSON and YAML carry text as it is).
    Everything is loaded into an `ssl.SSLContext` on construction, so what OpenSSL cannot use is
    refused where the user wrote it, not found by the first delivery. There is deliberately no
    way to skip verification: MIC lets no one in who should not be.

    `client_key_data` is a credential: out of `repr` (so out of logs), and the API never
    returns it. The certificates are not secret (every TLS handshake shows them) and are shown.
    """

    ca_data: str | None = field(default=None, repr=False)
    client_certificate_data: str | None = field(default=None, repr=False)
    client_key_data: str | None = field(default=None, repr=False)
    server_name: str | None = None

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "caData": "ca_data",
        "clientCertificateData": "client_certificate_data",
        "clientKeyData": "client_key_data",
        "serverName": "server_name",
    }

    def __post_init__(self) -> None:
        if self.server_name is not None:
            _set(self, "server_name", _server_name(self.server_name))
        self.validate()

    @property
    def is_empty(self) -> bool:
        """No setting at all: the same as no `tls` (system CAs, the URL's host, no client certificate)."""
        return all(getattr(self, name) is None for name in self.JSON_KEYS.values())

    @property
    def has_client_certificate(self) -> bool:
        return self.client_certificate_data is not None

    def validate(self) -> None:
        """Raise `InvalidSubscriptionError` unless OpenSSL loads every value as given."""
        for key, name in (("caData", "ca_data"), ("clientCertificateData", "client_certificate_data")):
            value = getattr(self, name)
            if value is None:
                continue
            _pem_text(f"{_TLS_PATH}.{key}", value, "CERTIFICATE")
            if "PRIVATE KEY-----" in value:
                _fail(
                    f"{_TLS_PATH}.{key}",
                    "holds a private key, and this field is shown to every reader: put the key in "
                    "sink.tls.clientKeyData (write-only) and only certificates here",
                )
        if self.client_key_data is not None:
            path = f"{_TLS_PATH}.clientKeyData"
            _pem_text(path, self.client_key_data, "PRIVATE KEY")
            if "PRIVATE KEY-----" not in self.client_key_data:
                _fail(
                    path,
                    "holds no private key: expected '-----BEGIN PRIVATE KEY-----' (or RSA/EC PRIVATE KEY)",
                )
            if "ENCRYPTED" in self.client_key_data:
                _fail(
                    path,
                    "is encrypted and MIC has no passphrase for it: send the key unencrypted "
                    "(e.g. openssl pkey -in key.pem -out plain.pem); it is stored write-only",
                )
        if (self.client_certificate_data is None) != (self.client_key_data is None):
            given, missing = (
                ("clientCertificateData", "clientKeyData")
                if self.client_key_data is None
                else ("clientKeyData", "clientCertificateData")
            )
            _fail(
                f"{_TLS_PATH}.{missing}",
                f"is required with sink.tls.{given}: a client certificate needs its key and a key "
                "its certificate (send both, or neither)",
            )
        if self.server_name is not None:
            _server_name(self.server_name)
        self.client_context()

    @cached_property
    def digest(self) -> str:
        """A SHA-256 of all settings: equal settings, equal digest (a cache key that shows no key)."""
        values = [getattr(self, name) for name in self.JSON_KEYS.values()]
        return hashlib.sha256(repr(values).encode()).hexdigest()

    def client_context(self) -> ssl.SSLContext:
        """A new client context: certificate and host name verified, against `ca_data` if given.

        Raises `InvalidSubscriptionError` naming the field OpenSSL refused.
        """
        if self.ca_data is None:
            context = ssl.create_default_context()
        else:
            try:
                context = ssl.create_default_context(cadata=self.ca_data)
            except (ssl.SSLError, ValueError, TypeError) as error:
                _fail(f"{_TLS_PATH}.caData", f"is not PEM certificates OpenSSL can load ({error})")
        if self.client_certificate_data is not None and self.client_key_data is not None:
            _load_client_certificate(context, self.client_certificate_data, self.client_key_data)
        return context

    def to_json(self) -> dict[str, Any]:
        """Including the client key: this is the store's form, not the API's response."""
        return {key: getattr(self, name) for key, name in self.JSON_KEYS.items()}

    @classmethod
    def from_json(cls, data: Any) -> SinkTls:
        return cls(**_object(_TLS_PATH, data, cls.JSON_KEYS))


@dataclass(frozen=True)
class WebhookSink:
    """An HTTP(S) endpoint that receives the events as POST requests.

    `headers`, `signing_secret` and `tls.client_key_data` may hold credentials: they are left
    out of `repr` (so out of logs) and the API never returns them. `headers` is excluded from
    the hash (a dict is not hashable); treat it as read-only. `tls` (https only) sets whom MIC
    trusts and what client certificate it presents; None (or an empty `SinkTls`) is the system
    CAs and no client certificate.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)
    timeout: float = 10.0
    signing_secret: str | None = field(default=None, repr=False)
    tls: SinkTls | None = None
    previous_signing_secret: str | None = field(default=None, repr=False)
    """The secret a rotation replaced: it still signs, beside the new one, until
    `previous_signing_secret_expires_at` (Unix seconds). Set by the API when the secret
    changes, never taken from a request."""
    previous_signing_secret_expires_at: float | None = None

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "url": "url",
        "headers": "headers",
        "timeoutSeconds": "timeout",
        "signingSecret": "signing_secret",
        "tls": "tls",
        "previousSigningSecret": "previous_signing_secret",
        "previousSigningSecretExpiresAt": "previous_signing_secret_expires_at",
    }

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Mapping):
            _fail("sink.headers", "must be an object mapping header names to values")
        _set(self, "headers", dict(self.headers))
        _set(self, "timeout", _seconds("sink.timeoutSeconds", self.timeout, high=300.0))
        _set(self, "url", _sink_url(self.url))
        if isinstance(self.tls, Mapping):
            _set(self, "tls", SinkTls.from_json(self.tls))
        if isinstance(self.tls, SinkTls) and self.tls.is_empty:
            _set(self, "tls", None)  # `tls: {}` (or all null) means no TLS settings
        self.validate()

    @property
    def is_https(self) -> bool:
        return isinstance(self.url, str) and self.url[:8].lower() == "https://"

    def validate(self) -> None:
        """Raise `InvalidSubscriptionError` unless MIC can POST to this sink."""
        _sink_url(self.url)
        for name, value in self.headers.items():
            _validate_header(name, value)
        if self.signing_secret is not None:
            self._validate_secret(self.signing_secret)
        if self.previous_signing_secret is not None:
            self._validate_secret(self.previous_signing_secret, "sink.previousSigningSecret")
            expires = self.previous_signing_secret_expires_at
            if self.signing_secret is None:
                _fail("sink.previousSigningSecret", "is only kept beside a current signingSecret")
            if (
                isinstance(expires, bool)
                or not isinstance(expires, int | float)
                or not math.isfinite(expires)
            ):
                _fail("sink.previousSigningSecretExpiresAt", "must be a number of Unix seconds")
        elif self.previous_signing_secret_expires_at is not None:
            _fail("sink.previousSigningSecretExpiresAt", "is only kept with a previousSigningSecret")
        if self.tls is not None:
            if not isinstance(self.tls, SinkTls):
                _fail(
                    _TLS_PATH,
                    "must be an object with caData, clientCertificateData, clientKeyData and "
                    f"serverName, not {type(self.tls).__name__}",
                )
            if not self.is_https:
                _fail(
                    _TLS_PATH,
                    "TLS settings apply only to an https:// sink URL: change sink.url to https:// "
                    "or remove sink.tls",
                )

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The secrets that sign a request sent at `now`: the current one, and the one it
        replaced while their overlap lasts (none: the request goes unsigned)."""
        if self.signing_secret is None:
            return ()
        expires = self.previous_signing_secret_expires_at
        if self.previous_signing_secret is not None and expires is not None and now < expires:
            return (self.signing_secret, self.previous_signing_secret)
        return (self.signing_secret,)

    @staticmethod
    def _validate_secret(secret: Any, path: str = "sink.signingSecret") -> None:
        hint = "e.g. 'whsec_' + base64 of 32 random bytes, or null to send unsigned requests"
        if not isinstance(secret, str) or not secret.startswith(_SECRET_PREFIX):
            _fail(path, f"must be 'whsec_' followed by base64 (Standard Webhooks); {hint}")
        try:
            key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            _fail(path, f"the part after 'whsec_' is not valid base64; {hint}")
        low, high = _SECRET_BYTES
        if not low <= len(key) <= high:
            _fail(path, f"the key must be {low} to {high} bytes (it is {len(key)}); {hint}")

    def to_json(self) -> dict[str, Any]:
        """Including headers, the secret and the client key: the store's form, not the API's.

        `tls` is written only when set, so a sink without it is stored exactly as before TLS
        settings existed and an older MIC (a standby mid-upgrade) still reads it.
        """
        data: dict[str, Any] = {
            "url": self.url,
            "headers": dict(self.headers),
            "timeoutSeconds": self.timeout,
            "signingSecret": self.signing_secret,
        }
        if self.tls is not None:
            data["tls"] = self.tls.to_json()
        if self.previous_signing_secret is not None:  # written only while a rotation overlaps
            data["previousSigningSecret"] = self.previous_signing_secret
            data["previousSigningSecretExpiresAt"] = self.previous_signing_secret_expires_at
        return data

    @classmethod
    def from_json(cls, data: Any) -> WebhookSink:
        kwargs = _object("sink", data, cls.JSON_KEYS)
        if "url" not in kwargs:
            _fail("sink.url", "is required: the webhook's http(s) URL")
        return cls(**kwargs)


@dataclass(frozen=True)
class Batching:
    """Send up to `max_events` events (and `max_bytes`) per request, waiting at most `max_wait_ms`."""

    max_events: int = 100
    max_bytes: int = 1_000_000
    max_wait_ms: int = 200

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "maxEvents": "max_events",
        "maxBytes": "max_bytes",
        "maxWaitMs": "max_wait_ms",
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _int("batching.maxEvents", self.max_events, 1, 10_000)
        _int("batching.maxBytes", self.max_bytes, 1024, 64 * 1024 * 1024)
        _int("batching.maxWaitMs", self.max_wait_ms, 0, 60_000)

    def to_json(self) -> dict[str, Any]:
        return {"maxEvents": self.max_events, "maxBytes": self.max_bytes, "maxWaitMs": self.max_wait_ms}

    @classmethod
    def from_json(cls, data: Any) -> Batching:
        return cls(**_object("batching", data, cls.JSON_KEYS))


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retries, age limit, parallelism and bounded backlog of one subscription's deliveries.

    By default a retried event has no attempt limit: it is retried (backoff capped at
    `max_backoff`) until it is `max_age` old, so a recipient that is down for a routine outage
    (a load balancer restarting) gets everything once it is back, without a replay. An explicit
    `max_attempts` (JSON `maxAttempts`) also ends the retries after that many attempts.
    """

    max_attempts: int | None = None
    max_age: float = 3600.0
    concurrency: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 60.0
    coalesce: bool = False
    backlog_limit: int = 100_000
    overflow: Overflow = "coalesce"

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "maxAttempts": "max_attempts",
        "maxAgeSeconds": "max_age",
        "concurrency": "concurrency",
        "initialBackoffSeconds": "initial_backoff",
        "maxBackoffSeconds": "max_backoff",
        "coalesce": "coalesce",
        "backlogLimit": "backlog_limit",
        "overflow": "overflow",
    }

    def __post_init__(self) -> None:
        _set(self, "max_age", _seconds("delivery.maxAgeSeconds", self.max_age, high=30 * 86400.0))
        _set(
            self,
            "initial_backoff",
            _seconds("delivery.initialBackoffSeconds", self.initial_backoff, high=3600.0),
        )
        _set(self, "max_backoff", _seconds("delivery.maxBackoffSeconds", self.max_backoff, high=86400.0))
        self.validate()

    def validate(self) -> None:
        if self.max_attempts is not None:
            _int("delivery.maxAttempts", self.max_attempts, 1, 1000)
        _int("delivery.concurrency", self.concurrency, 1, 256)
        _int("delivery.backlogLimit", self.backlog_limit, 1, 100_000_000)
        if self.max_backoff < self.initial_backoff:
            _fail(
                "delivery.maxBackoffSeconds",
                f"must be at least initialBackoffSeconds ({self.initial_backoff:g}), "
                f"not {self.max_backoff:g}",
            )
        _bool("delivery.coalesce", self.coalesce)
        if self.overflow not in ("coalesce", "dead-letter"):
            _fail("delivery.overflow", f"must be 'coalesce' or 'dead-letter', not {self.overflow!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "maxAgeSeconds": self.max_age,
            "concurrency": self.concurrency,
            "initialBackoffSeconds": self.initial_backoff,
            "maxBackoffSeconds": self.max_backoff,
            "coalesce": self.coalesce,
            "backlogLimit": self.backlog_limit,
            "overflow": self.overflow,
        }

    @classmethod
    def from_json(cls, data: Any) -> DeliveryPolicy:
        return cls(**_object("delivery", data, cls.JSON_KEYS))


@dataclass(frozen=True)
class SubscriptionSpec:
    """One recipient's subscription: its name, filter, sink, format and delivery policy.

    `to_json()`/`from_json()` are the store's form (camelCase keys, as the REST API spells
    them; secrets included) and round-trip exactly: `from_json(s.to_json()) == s`.
    """

    name: str
    filter: SubscriptionFilter
    sink: WebhookSink
    format: Format = Format.CLOUDEVENTS
    batching: Batching | None = None
    include_secret_data: bool = False
    initial_state: bool = True
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    JSON_KEYS: ClassVar[Mapping[str, str]] = {
        "name": "name",
        "filter": "filter",
        "sink": "sink",
        "format": "format",
        "batching": "batching",
        "includeSecretData": "include_secret_data",
        "initialState": "initial_state",
        "delivery": "delivery",
    }

    def __post_init__(self) -> None:
        if isinstance(self.format, str) and not isinstance(self.format, Format):
            try:
                _set(self, "format", Format(self.format))
            except ValueError:
                _fail("format", f"{self.format!r} is not one of {', '.join(f.value for f in Format)}")
        self.validate()

    def validate(self) -> None:
        """Raise `InvalidSubscriptionError` unless MIC can serve this subscription as written."""
        if not isinstance(self.name, str) or not self.name:
            _fail("name", "is required: a DNS-1123 label such as 'lb-eu'")
        problem = _dns_label_problem(self.name)
        if problem:
            _fail("name", problem)
        for path, value, kind in (
            ("filter", self.filter, SubscriptionFilter),
            ("sink", self.sink, WebhookSink),
            ("delivery", self.delivery, DeliveryPolicy),
        ):
            if not isinstance(value, kind):
                _fail(path, f"must be a {kind.__name__}, not {type(value).__name__}")
        if not isinstance(self.format, Format):
            _fail("format", f"must be one of {', '.join(f.value for f in Format)}")
        if self.batching is not None:
            if not isinstance(self.batching, Batching):
                _fail("batching", f"must be a Batching or null, not {type(self.batching).__name__}")
            if self.format is not Format.CLOUDEVENTS:
                _fail(
                    "batching",
                    f"batches are CloudEvents batches (application/cloudevents-batch+json); use format "
                    f"'cloudevents' or remove batching (format is {self.format.value!r})",
                )
        _bool("includeSecretData", self.include_secret_data)
        _bool("initialState", self.initial_state)
        if self.include_secret_data and not self.sink.is_https:
            _fail(
                "includeSecretData",
                "Secret data may only be sent over https: use an https:// sink URL "
                "or leave includeSecretData false (values are then redacted)",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filter": self.filter.to_json(),
            "sink": self.sink.to_json(),
            "format": self.format.value,
            "batching": self.batching.to_json() if self.batching is not None else None,
            "includeSecretData": self.include_secret_data,
            "initialState": self.initial_state,
            "delivery": self.delivery.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> SubscriptionSpec:
        """The spec from its JSON object; raises `InvalidSubscriptionError`, never KeyError/TypeError."""
        kwargs = _object("", data, cls.JSON_KEYS)
        for required in ("name", "filter", "sink"):
            if required not in kwargs:
                _fail(required, "is required")
        kwargs["filter"] = SubscriptionFilter.from_json(kwargs["filter"])
        kwargs["sink"] = WebhookSink.from_json(kwargs["sink"])
        if "batching" in kwargs:
            kwargs["batching"] = Batching.from_json(kwargs["batching"])
        if "delivery" in kwargs:
            kwargs["delivery"] = DeliveryPolicy.from_json(kwargs["delivery"])
        return cls(**kwargs)
