"""Connections configured without a kubeconfig: an API server URL, a token and a CA.

This is what a user pastes into the service ("URL + token + CA"), and what `in_cluster` builds
from the pod's service account.
"""

from __future__ import annotations

import os
from urllib.parse import SplitResult, urlsplit

from mic.kube.auth import StaticToken, TokenFile
from mic.kube.connection import Authenticator, ClusterConnection, redact_url
from mic.kube.errors import ConfigError
from mic.kube.tls import decode_base64, load_ca, new_context


def from_token(
    server: str,
    *,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    ca_data: str | bytes | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    tls_server_name: str | None = None,
    proxy: str | None = None,
    default_namespace: str = "default",
    description: str | None = None,
) -> ClusterConnection:
    """Connection to `server` with a bearer token (or none), trusting `ca_data`/`ca_file`.

    `ca_data` is PEM; base64 of PEM (a kubeconfig's certificate-authority-data, which users
    often paste) is accepted too. `token_file` is re-read every minute and after a 401, so a
    rotated token is picked up. Without a CA the system's roots are trusted.
    """
    parts = check_server_url(server, "server")
    if token is not None and token_file is not None:
        raise ConfigError("give either token or token_file, not both")
    if insecure and (ca_data or ca_file):
        raise ConfigError("insecure skips certificate checks, so it cannot be combined with a CA; remove one")
    if proxy is not None and split_url(proxy, "proxy").scheme not in ("http", "https"):
        raise ConfigError("proxy must be an http:// or https:// URL")
    ssl_context = None
    if parts.scheme == "https":
        ssl_context = new_context(insecure=insecure)
        if not insecure:
            load_ca(ssl_context, data=_pem(ca_data), file=ca_file, what="ca_data" if ca_data else "ca_file")
    authenticator: Authenticator | None = None
    if token_file is not None:
        authenticator = TokenFile(token_file, what="token_file")
    elif token is not None:
        authenticator = StaticToken(token)
    auth = "token file" if token_file is not None else "token" if token is not None else "anonymous"
    return ClusterConnection(
        server=server,
        ssl_context=ssl_context,
        authenticator=authenticator,
        proxy=proxy,
        default_namespace=default_namespace,
        description=description or f"{auth} auth to {redact_url(server.rstrip('/'))}",
        tls_server_name=tls_server_name,
    )


def split_url(url: str, what: str) -> SplitResult:
    """`urlsplit(url)` with its port checked, failing with a ConfigError instead of ValueError.

    urllib raises ValueError for an unclosed `[` or a port that is not a number from 0 to
    65535; left alone, that is a 500 for what is a typing mistake. The message names `what`
    and urllib's reason, never the URL: it may carry a password.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise ConfigError(f"{what} is not a valid URL ({error})") from None
    return parts


def check_server_url(server: str, what: str) -> SplitResult:
    """The parts of an API server URL: http(s), a host, no user info, no query, no fragment.

    A `user:password@` would be shown wherever the server is (the API, status errors, logs),
    and aiohttp refuses to send it together with a bearer token, so it is refused here with
    a pointer to the ways Kubernetes does accept credentials. API paths are appended to the
    URL as text, so a `?` or `#` (even an empty one, which `urlsplit` does not report) would
    turn them into a query or a fragment and send the request to another path.
    """
    parts = split_url(server, what)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be a URL like https://host:6443")
    if "@" in parts.netloc:
        raise ConfigError(
            f"{what} must not contain a user name or password (user:password@host): it would be "
            "shown wherever the server URL is; authenticate with a token or a client certificate "
            "instead"
        )
    if "?" in server or "#" in server:
        raise ConfigError(
            f"{what} must not contain a query (?...) or a fragment (#...): API paths are appended "
            "to the server URL; remove everything from the first ? or #"
        )
    return parts


def _pem(ca_data: str | bytes | None) -> bytes | None:
    if ca_data is None or ca_data in ("", b""):
        return None
    data = ca_data.encode("ascii", "replace") if isinstance(ca_data, str) else ca_data
    if b"-----BEGIN" in data:
        return data
    return decode_base64(data.decode("ascii", "replace"), "ca_data (neither PEM nor base64 of PEM)")
