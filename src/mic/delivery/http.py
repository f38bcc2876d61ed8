"""A small keep-alive HTTP/1.1 client for webhook POSTs.

Delivery sends many small POSTs to few recipients. aiohttp's general client spent about
450 µs of CPU per request here (measured with py-spy: 75 % of unbatched delivery), most of it
in machinery webhooks do not need (cookies, redirects, proxies, tracing, multipart). This
client does one thing: write a request on a pooled connection and read the answer, about
ten times cheaper. It speaks plain HTTP/1.1 with `Content-Length` requests and reads
`Content-Length`, chunked and close-delimited responses.

TLS verifies the recipient's certificate and host name, against the system's CAs unless a
request names `TlsSettings` (a sink's `mic.routing.spec.SinkTls`: its own CAs, a client
certificate, another name to verify). A context is built once per distinct settings (cached by
their digest), and idle connections are kept per origin *and* settings: a connection opened
with one sink's client certificate, or verified against one sink's CAs, is never handed to a
request made with other settings.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
"""A recipient's answer is read only to keep the connection usable; a longer body is left
unread and its connection closed (the status still counts)."""

# What a request may carry (RFC 9110): a token as a header name, visible ASCII, spaces and tabs
# in a value. `mic.routing.spec` refuses anything else when a subscription is written; these
# checks stand behind it for specs stored before that rule, and for any other caller.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE_RE = re.compile(r"[\t\x20-\x7e]*")
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})


MAX_TLS_CONTEXTS = 256
"""SSL contexts kept (least recently used dropped): one per distinct TLS settings in use."""


class HttpError(Exception):
    """The exchange failed before a complete response was read (connection, TLS, protocol)."""


class TlsSettings(Protocol):
    """What the pool needs of a sink's TLS settings; `mic.routing.spec.SinkTls` is one.

    `digest` identifies the settings (equal settings, equal digest); `client_context()` builds a
    verifying client context from them (it may raise ValueError or ssl.SSLError);
    `has_client_certificate` says whether it presents one (for error messages).
    """

    @property
    def digest(self) -> str: ...

    @property
    def server_name(self) -> str | None: ...

    @property
    def has_client_certificate(self) -> bool: ...

    def client_context(self) -> ssl.SSLContext: ...


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    host_header: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@lru_cache(maxsize=1024)
def _parse_url(url: str) -> tuple[Origin, str]:
    """The origin and request target of `url`; HttpError if it cannot go on the wire as is.

    A request line is ASCII: a non-ASCII URL must have been IDNA/percent-encoded before (the
    subscription spec does that), so one that was not is a failed request, not a crash.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise HttpError(f"not a valid URL: {url} ({error})") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url}")
    if not url.isascii():
        raise HttpError(f"the URL {url} is not ASCII: IDNA-encode its host and percent-encode the rest")
    port = port or (443 if parts.scheme == "https" else 80)
    default_port = port == (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    origin = Origin(parts.scheme, host, port, shown if default_port else f"{shown}:{port}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target


def shown_origin(url: str) -> str:
    """`scheme://host[:port]` of `url`, for logs: its path, query and user info may hold
    credentials (`?api_key=`), which a log must not."""
    try:
        origin, _ = _parse_url(url)
    except HttpError:
        return "<invalid URL>"
    return f"{origin.scheme}://{origin.host_header}"


class _Connection:
    __slots__ = ("reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        self.writer.close()


_PoolKey = tuple[Origin, str]
"""An origin and the digest of the TLS settings its connections were made with ("" = defaults)."""


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a connection goes (`origin`) and with which TLS settings (None: the defaults)."""

    origin: Origin
    tls: TlsSettings | None

    @property
    def key(self) -> _PoolKey:
        """The idle pool's key: connections are shared only between equal settings."""
        return (self.origin, self.tls.digest if self.tls is not None else "")

    @property
    def server_name(self) -> str:
        return (self.tls.server_name if self.tls is not None else None) or self.origin.host


class HttpPool:
    """Idle keep-alive connections per origin and TLS settings, reused most-recent first."""

    def __init__(self, *, max_idle_per_origin: int = 64, user_agent: str = "mic-delivery/0.1") -> None:
        self._idle: defaultdict[_PoolKey, list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle_per_origin
        self._user_agent = user_agent
        self._ssl: ssl.SSLContext | None = None
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
        *,
        tls: TlsSettings | None = None,
    ) -> Response:
        """POST `body`; raises HttpError or TimeoutError when no complete response came back.

        `tls` (https only; ignored for http) replaces the default verification. A reused
        connection the server closed meanwhile fails before any answer: then the request is
        sent once more on a new connection (a keep-alive race, not a delivery failure).
        """
        origin, target = _parse_url(url)
        route = _Route(origin, tls if origin.tls else None)
        key = route.key
        head = self._head(origin, target, headers, len(body))
        async with asyncio.timeout(timeout):
            while True:
                connection = await self._connect(route)
                try:
                    response, keep = await self._exchange(connection, head, body)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError) as error:
                    connection.close()
                    if connection.reused and isinstance(
                        error, (ConnectionError, asyncio.IncompleteReadError)
                    ):
                        continue
                    raise HttpError(_describe_failure(error, route)) from error
                except BaseException:
                    connection.close()  # cancelled or timed out mid-exchange: unusable
                    raise
                if keep and len(self._idle[key]) < self._max_idle:
                    connection.reused = True
                    self._idle[key].append(connection)
                else:
                    connection.close()
                return response

    def _head(self, origin: Origin, target: str, headers: dict[str, str], length: int) -> bytes:
        """The request line and headers; HttpError for a header that cannot be sent as is.

        Checked here although the subscription spec refuses such headers: a line break would
        split the request, and a character outside ASCII would fail to encode, which must be a
        failed request with a readable error, never an exception that kills a sender. The error
        names the header, never its value (often a credential).
        """
        lines = [f"POST {target} HTTP/1.1", f"Host: {origin.host_header}", f"Content-Length: {length}"]
        if not any(name.lower() == "user-agent" for name in headers):
            lines.append(f"User-Agent: {self._user_agent}")  # a configured one replaces it
        for name, value in headers.items():
            if not _TOKEN_RE.fullmatch(name):
                raise HttpError(f"header name {name!r} is not an HTTP token")
            if name.lower() in _FRAMING_HEADERS:
                # A second Host or Content-Length is a malformed (or smuggled) request.
                raise HttpError(f"header {name!r} is set by MIC itself and cannot be configured")
            if not _FIELD_VALUE_RE.fullmatch(value):
                raise HttpError(
                    f"the value of header {name!r} has a line break, another control character or "
                    "non-ASCII text; only visible ASCII, spaces and tabs can be sent"
                )
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        try:
            return "\r\n".join(lines).encode("ascii")
        except UnicodeEncodeError as error:  # e.g. a non-ASCII user agent
            raise HttpError(f"the request head is not ASCII ({error})") from error

    async def _connect(self, route: _Route) -> _Connection:
        """`_connection`, with a host name the resolver cannot encode as a failed request.

        IDNA-encoding the host ('a..b', a label over 63 characters) raises UnicodeError, a
        ValueError and not an OSError, when the connection is opened. A certificate that fails
        verification is an HttpError that says so and what to configure.
        """
        try:
            return await self._connection(route)
        except ssl.SSLCertVerificationError as error:
            raise HttpError(
                _describe_verification(error, route.server_name, route.tls is not None)
            ) from error
        except ValueError as error:
            if isinstance(error, OSError):  # an ssl.SSLError is both: not a name
                raise
            raise HttpError(f"cannot resolve {route.origin.host!r}: {error}") from error

    def _context(self, tls: TlsSettings | None) -> ssl.SSLContext:
        """The client context for `tls`, built once per distinct settings (by digest)."""
        if tls is None:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            return self._ssl
        context = self._contexts.get(tls.digest)
        if context is None:
            try:
                context = tls.client_context()
            except (ValueError, ssl.SSLError) as error:  # a spec stored before a rule it breaks
                raise HttpError(f"the sink's TLS settings cannot be loaded: {error}") from error
            self._contexts[tls.digest] = context
            if len(self._contexts) > MAX_TLS_CONTEXTS:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(tls.digest)
        return context

    async def _connection(self, route: _Route) -> _Connection:
        idle = self._idle.get(route.key)
        while idle:
            connection = idle.pop()
            if not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        origin = route.origin
        context = self._context(route.tls) if origin.tls else None
        reader, writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=route.server_name if context is not None else None,
            limit=MAX_HEADER_BYTES,
        )
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, head: bytes, body: bytes) -> tuple[Response, bool]:
        writer, reader = connection.writer, connection.reader
        writer.write(head + body)
        await writer.drain()
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as error:
                raise HttpError("response headers too large") from error
            status, headers, version = _parse_head(raw)
            if 100 <= status < 200:
                continue  # an interim response; the real one follows
            break
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            return Response(status, headers, b""), keep
        # A body too large to read is left unread and the connection closed: the status is
        # the answer (a 2xx taken for a failure would be sent again and again, then dead).
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = await _read_chunked(reader)
            if data is None:
                return Response(status, headers, b""), False
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError as error:
                raise HttpError("invalid Content-Length in response") from error
            if length < 0:
                raise HttpError("invalid Content-Length in response")
            if length > MAX_BODY_BYTES:
                return Response(status, headers, b""), False
            data = await reader.readexactly(length)
        else:
            data = await reader.read(MAX_BODY_BYTES)
            keep = False
        return Response(status, headers, data), keep


def _describe_verification(error: ssl.SSLCertVerificationError, name: str, configured: bool) -> str:
    """A failed verification as a certificate problem, with what to configure about it."""
    reason = str(error) or "certificate verify failed"
    if configured:
        hint = "check sink.tls.caData (the CA that signed it) and sink.tls.serverName"
    else:
        hint = (
            "if the recipient uses a private CA, set sink.tls.caData to it; if its certificate "
            "names another host, set sink.tls.serverName"
        )
    return f"TLS: the recipient's certificate for {name!r} failed verification ({reason}); {hint}"


def _describe_failure(error: BaseException, route: _Route) -> str:
    """What went wrong on a new connection, with the TLS client certificate in mind.

    With TLS 1.3 a server checks the client certificate after the client's side of the handshake
    is done, so a refusal shows only on the first read: as the server's alert, or as a bare close
    or reset when the server drops the connection without one reaching MIC (asyncio servers do).
    Only new connections get here: on a reused one, a close or reset is sent again instead.
    """
    detail = str(error) or type(error).__name__
    if not route.origin.tls:
        return detail
    if isinstance(error, ssl.SSLError):
        reason = str(error.reason or error)
        if "CERTIFICATE" in reason.upper() or "UNKNOWN_CA" in reason.upper():
            return (
                f"TLS: the recipient refused MIC's client certificate ({reason}); check "
                "sink.tls.clientCertificateData and sink.tls.clientKeyData"
            )
    closed = isinstance(error, asyncio.IncompleteReadError) and not error.partial
    if closed or isinstance(error, ConnectionResetError):
        if route.tls is not None and route.tls.has_client_certificate:
            hint = "client certificates, it may not accept sink.tls.clientCertificateData"
        else:
            hint = "a client certificate (mTLS), set sink.tls.clientCertificateData and clientKeyData"
        return f"the recipient closed the TLS connection without answering ({detail}); if it requires {hint}"
    return detail


def _parse_head(raw: bytes) -> tuple[int, dict[str, str], str]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError(f"not an HTTP response: {lines[0][:80]!r}")
    try:
        status = int(parts[1])
    except ValueError as error:
        raise HttpError(f"invalid status line: {lines[0][:80]!r}") from error
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, parts[0]


async def _read_chunked(reader: asyncio.StreamReader) -> bytes | None:
    """The chunked body, or None once it grows past `MAX_BODY_BYTES` (the rest left unread)."""
    chunks: list[bytes] = []
    size_total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise HttpError("invalid chunk size in response") from error
        if size < 0:
            raise HttpError("invalid chunk size in response")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(chunks)
        size_total += size
        if size_total > MAX_BODY_BYTES:
            return None
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
