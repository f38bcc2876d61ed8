"""The small REST client the `mic` commands share.

Every command talks to the MIC service through `MicClient`, so there is exactly one place that
builds requests (base URL, bearer token, path quoting, timeouts) and one place that turns what
can go wrong — an unreachable service, a 4xx/5xx with FastAPI's error body, a non-JSON answer —
into one readable line. Commands raise or let `MicError` propagate; `reporting_errors` prints
it and exits, so a user never sees a traceback.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8000"

# Options every client command takes: where MIC is and how to prove who we are.
UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="MIC_URL", help="Base URL of the MIC service.", show_default=True),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MIC_TOKEN",
        help="MIC API bearer token (admin to change things, viewer to read). Never printed.",
        show_default=False,
    ),
]

# Generous for a slow server, short enough that a typo in --url does not hang a script.
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_STREAM_IDLE = 60.0
_STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=_STREAM_IDLE)
"""A live tail may be quiet for long; the server's heartbeats (every 15 s) keep reads short."""
_MAX_BODY_IN_MESSAGE = 200
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")

P = ParamSpec("P")
R = TypeVar("R")


class MicError(Exception):
    """A failure the user should read as one line; `exit_code` 2 marks a usage error, as Typer does."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(MicError):
    """Options that cannot go together or are missing: exit code 2, like Typer's own usage errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print `error: <message>` on stderr and leave with `exit_code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=exit_code)


def reporting_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so `MicError` and Ctrl-C end it with one line instead of a traceback.

    `functools.wraps` keeps the signature visible to Typer, which reads it to build the options.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MicError as exc:
            fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


def path_segment(value: str) -> str:
    """Quote one path segment so a name containing `/`, `?` or `#` cannot change the route."""
    return quote(value, safe="")


def format_detail(detail: Any) -> str:
    """Render FastAPI's `detail` — a string, or a list of validation errors — as one line.

    A validation error reads `body.connection.kubeconfig: Field required`; several are joined
    with `; ` so the whole answer still fits on the one error line.
    """
    if isinstance(detail, str):
        return _one_line(detail)
    if isinstance(detail, list):
        parts = [_format_validation_error(item) for item in detail]
        return "; ".join(part for part in parts if part) or "invalid request"
    if isinstance(detail, dict):
        if "msg" in detail:
            return _format_validation_error(detail)
        if isinstance(detail.get("message"), str):
            return _one_line(detail["message"])
    return _one_line(str(detail))


def _format_validation_error(item: Any) -> str:
    if not isinstance(item, dict):
        return _one_line(str(item))
    message = _one_line(str(item.get("msg", "invalid value")))
    loc = item.get("loc")
    if isinstance(loc, list | tuple) and loc:
        return f"{'.'.join(str(part) for part in loc)}: {message}"
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())


class MicClient:
    """A synchronous client for MIC's `/v1` API; a CLI makes one request at a time.

    The token is kept out of every message this class produces: error text that echoes it (a
    misbehaving proxy, a server bug) is redacted before it reaches the terminal.
    """

    def __init__(self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/") or url
        self._token = _checked_token(token)
        headers = {"Accept": "application/json", "User-Agent": "mic-cli"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            self._http = httpx.Client(
                base_url=self.url, headers=headers, timeout=_TIMEOUT, transport=transport
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise UsageError(f"invalid MIC URL {url!r}: {exc}") from None

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> MicClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the requests the commands need -------------------------------------------------

    def add_cluster(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/clusters`; returns the created cluster."""
        return self._object(self.request("POST", "/v1/clusters", json=body))

    def list_clusters(self) -> list[dict[str, Any]]:
        """`GET /v1/clusters`; returns its items."""
        answer = self._object(self.request("GET", "/v1/clusters"))
        items = answer.get("items", [])
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def get_cluster(self, name: str) -> dict[str, Any]:
        """`GET /v1/clusters/{name}`."""
        return self._object(
            self.request("GET", f"/v1/clusters/{path_segment(name)}", not_found=f"cluster {name!r} not found")
        )

    def replace_cluster(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /v1/clusters/{name}`; returns the cluster as stored."""
        return self._object(
            self.request(
                "PUT",
                f"/v1/clusters/{path_segment(name)}",
                json=body,
                not_found=f"cluster {name!r} not found",
            )
        )

    def remove_cluster(self, name: str, *, force: bool = False) -> None:
        """`DELETE /v1/clusters/{name}` (`?force=true`)."""
        params = {"force": "true"} if force else None
        self.request(
            "DELETE",
            f"/v1/clusters/{path_segment(name)}",
            params=params,
            not_found=f"cluster {name!r} not found",
        )

    def list_resources(
        self,
        cluster: str,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        chunk_size: int = 0,
    ) -> dict[str, Any]:
        """List one resource in one cluster, following `continue` tokens until the list is whole.

        `chunk_size` > 0 asks for pages of that size, so a large cache is fetched in bounded
        answers; the merged result has the shape of a single `List`.
        """
        path = f"/v1/clusters/{path_segment(cluster)}/resources/{path_segment(resource)}"
        params: dict[str, str] = {}
        if namespace:
            params["namespace"] = namespace
        if label_selector:
            params["labelSelector"] = label_selector
        if chunk_size > 0:
            params["limit"] = str(chunk_size)
        items: list[Any] = []
        first: dict[str, Any] | None = None
        seen_tokens: set[str] = set()
        while True:
            page = self._object(
                self.request(
                    "GET",
                    path,
                    params=params,
                    not_found=f"cluster {cluster!r} or resource {resource!r} not found",
                )
            )
            first = first or page
            page_items = page.get("items") or []
            if isinstance(page_items, list):
                items.extend(page_items)
            metadata = page.get("metadata")
            token = metadata.get("continue") if isinstance(metadata, dict) else None
            if not token or not isinstance(token, str) or token in seen_tokens:
                break
            seen_tokens.add(token)  # a server repeating a token must not loop us forever
            params["continue"] = token
        merged = dict(first)
        merged["items"] = items
        merged["metadata"] = {**(first.get("metadata") or {}), "continue": None}
        return merged

    def get_resource(
        self, cluster: str, resource: str, name: str, *, namespace: str | None
    ) -> dict[str, Any]:
        """Get one object: the namespaced route with `namespace`, the cluster-scoped one without."""
        base = f"/v1/clusters/{path_segment(cluster)}/resources/{path_segment(resource)}"
        if namespace:
            path = f"{base}/{path_segment(namespace)}/{path_segment(name)}"
            what = f"{resource} {namespace}/{name} not found in cluster {cluster!r}"
        else:
            path = f"{base}/{path_segment(name)}"
            what = f"{resource} {name!r} not found in cluster {cluster!r}"
        return self._object(self.request("GET", path, not_found=what))

    def query_resources(
        self,
        resource: str,
        *,
        clusters: list[str] | None,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> dict[str, Any]:
        """`GET /v1/resources/{resource}` across clusters (all of them when `clusters` is None)."""
        params: dict[str, str] = {}
        if clusters:
            params["clusters"] = ",".join(clusters)
        if namespace:
            params["namespace"] = namespace
        if label_selector:
            params["labelSelector"] = label_selector
        return self._object(self.request("GET", f"/v1/resources/{path_segment(resource)}", params=params))

    def add_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/subscriptions`; returns the created subscription (with a generated secret, once)."""
        return self._object(self.request("POST", "/v1/subscriptions", json=body))

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """`GET /v1/subscriptions`; returns its items."""
        return self._items(self.request("GET", "/v1/subscriptions"))

    def subscription(self, name: str, suffix: str = "", *, method: str = "GET", json: Any = None) -> Any:
        """A request on one subscription (`suffix`: "", "/status", "/test", "/dead-letters/replay")."""
        return self.request(
            method,
            f"/v1/subscriptions/{path_segment(name)}{suffix}",
            json=json,
            not_found=f"subscription {name!r} not found",
        )

    def dead_letters(self, name: str, *, after_id: int = 0, limit: int = 100) -> dict[str, Any]:
        """`GET /v1/subscriptions/{name}/dead-letters`, one page."""
        return self._object(
            self.request(
                "GET",
                f"/v1/subscriptions/{path_segment(name)}/dead-letters",
                params={"afterId": str(after_id), "limit": str(limit)},
                not_found=f"subscription {name!r} not found",
            )
        )

    def stream_events(self, params: Mapping[str, str | list[str]]) -> Iterator[dict[str, str]]:
        """`GET /v1/events`: yield each Server-Sent Event as `{"id", "event", "data"}` until it ends.

        The server sends a comment at least every 15 s, so a read that waits `_STREAM_IDLE`
        without a byte means the connection is dead, not just quiet.
        """
        try:
            with self._http.stream("GET", "/v1/events", params=params, timeout=_STREAM_TIMEOUT) as response:
                if not response.is_success:
                    response.read()
                    raise MicError(self._redact(self._error_message(response, "no such cluster or resource")))
                message: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        continue
                    if not line:
                        if message:
                            yield message
                        message = {}
                        continue
                    field, _, value = line.partition(":")
                    message[field] = value.removeprefix(" ")
        except httpx.ConnectError as exc:
            raise MicError(f"cannot reach MIC at {self.url}: {self._reason(exc)}") from None
        except httpx.ReadTimeout:
            raise MicError(f"MIC at {self.url} went silent (no heartbeat for {_STREAM_IDLE:g}s)") from None
        except httpx.RemoteProtocolError:
            raise MicError(f"MIC at {self.url} closed the stream") from None
        except httpx.HTTPError as exc:
            raise MicError(f"request to MIC at {self.url} failed: {self._reason(exc)}") from None

    # --- the one place requests are made and errors are worded --------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | list[str]] | None = None,
        not_found: str | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None when empty) or raise `MicError`.

        `not_found` words a 404 whose body says nothing more useful than FastAPI's default
        "Not Found" (an unknown route, say), so the user still learns *what* was missing.
        """
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.ConnectError as exc:
            raise MicError(f"cannot reach MIC at {self.url}: {self._reason(exc)}") from None
        except httpx.TimeoutException:
            raise MicError(f"MIC at {self.url} did not answer in time") from None
        except httpx.UnsupportedProtocol:
            raise UsageError(f"invalid MIC URL {self.url!r}: use http:// or https://") from None
        except httpx.HTTPError as exc:
            raise MicError(f"request to MIC at {self.url} failed: {self._reason(exc)}") from None
        if response.is_success:
            for warning in response.headers.get_list("warning"):
                print(f"Warning: {warning_text(warning)}", file=sys.stderr)
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise MicError(
                    f"MIC at {self.url} answered {method} {path} with something that is not JSON "
                    f"({response.status_code})"
                ) from None
        raise MicError(self._redact(self._error_message(response, not_found)))

    def _error_message(self, response: httpx.Response, not_found: str | None) -> str:
        status = response.status_code
        detail: str | None = None
        try:
            body = response.json()
        except ValueError:
            text = _one_line(response.text)
            if text:
                detail = text[:_MAX_BODY_IN_MESSAGE] + ("…" if len(text) > _MAX_BODY_IN_MESSAGE else "")
        else:
            if isinstance(body, dict) and "detail" in body:
                detail = format_detail(body["detail"])
            elif body is not None:
                detail = format_detail(body)
        if status == 404 and not_found and (not detail or detail.lower() == "not found"):
            detail = not_found
        if not detail:
            detail = response.reason_phrase or "request failed"
        message = f"{detail} ({status})"
        if status == 401:
            hint = "set MIC_TOKEN or pass --token" if not self._token else "check MIC_TOKEN / --token"
            message = f"{message}; {hint}"
        elif status == 403 and "admin token" not in message:
            message = f"{message}; this needs an admin token"
        return message

    def _reason(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        text = _ERRNO_PREFIX.sub("", _one_line(text))
        if "CERTIFICATE_VERIFY_FAILED" in text:
            text += "; if MIC's certificate comes from a private CA, set SSL_CERT_FILE to that CA's PEM file"
        return self._redact(text[:1].lower() + text[1:])

    def _redact(self, text: str) -> str:
        if not self._token:
            return text
        # Also the escaped form (`repr`) that some libraries put in their messages.
        return text.replace(self._token, "***").replace(repr(self._token)[1:-1], "***")

    def _items(self, body: Any) -> list[dict[str, Any]]:
        items = self._object(body).get("items", [])
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def _object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise MicError(f"MIC at {self.url} sent an unexpected answer (expected a JSON object)")
        return body


def _checked_token(token: str | None) -> str | None:
    """The token without surrounding whitespace (a token file's CRLF, say), or a usage error.

    An HTTP header cannot carry control or non-ASCII characters; the HTTP library's own error
    would print the whole header, token included, so the token is checked here first.
    """
    token = (token or "").strip()
    if not token:
        return None
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":
            raise UsageError(
                f"the API token (MIC_TOKEN / --token) has a character that cannot be sent at"
                f" position {position} ({_char_name(char)}); tokens are printable ASCII"
            )
    return token


def _char_name(char: str) -> str:
    return "a space" if char == " " else f"U+{ord(char):04X}"


def local_path(path_text: str, option: str) -> Path:
    """`path_text` with `~` expanded; an unknown `~user` becomes one line, not a traceback."""
    try:
        return Path(path_text).expanduser()
    except RuntimeError:
        raise MicError(f"cannot read {option} file '{path_text}': its home directory is unknown") from None


def read_local_file(path_text: str, option: str) -> str:
    """Read a file named on the command line (`-` is stdin); a failure becomes one line.

    Commands send file *contents*: the server never opens paths a client names.
    """
    if path_text == "-":
        return sys.stdin.read()
    path = local_path(path_text, option)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MicError(f"{option} file '{path_text}' is not UTF-8 text") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise MicError(f"cannot read {option} file '{path_text}': {reason}") from None


@contextmanager
def connect(url: str, token: str | None) -> Iterator[MicClient]:
    """Open a `MicClient` for one command and close it afterwards."""
    client = MicClient(url, token)
    try:
        yield client
    finally:
        client.close()


def warning_text(header: str) -> str:
    """The text of a `Warning` header as kube-apiserver and MIC send it (`299 - "text"`)."""
    code, _, rest = header.partition(" ")
    _, _, quoted = rest.partition(" ")
    if not code.isdigit() or len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        return header
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])
