"""How to reach one cluster's API server: address, TLS, proxy and credentials.

A `ClusterConnection` is what every way of configuring a cluster (kubeconfig file or text,
URL + token, in-cluster service account) turns into; `KubeClient` needs nothing else.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit


class Authenticator(Protocol):
    """Supplies the `Authorization` header for requests to one cluster.

    Implementations cache their credential and refresh it when it expires (exec plugins) or
    when the file behind it changes (rotated service-account tokens).
    """

    async def authorization(self) -> str | None:
        """The header value (`Bearer ...`, `Basic ...`), or None when no header is needed."""
        ...

    def invalidate(self) -> bool:
        """Forget the cached credential after a 401.

        Returns True when asking again may yield a different credential (so one retry is
        worthwhile), False when the credential is static.
        """
        ...


@dataclass(frozen=True)
class ClusterConnection:
    """Everything needed to open HTTP connections to one API server.

    `ssl_context` is None for plain-HTTP servers; with `insecure-skip-tls-verify` it is a
    context that verifies nothing. `description` names the source (never a secret) for logs
    and error messages. `tls_server_name` (kubeconfig `tls-server-name`) is the name to send
    for SNI and to check the server's certificate against instead of the URL's host; pass it
    to aiohttp as `server_hostname=`.
    """

    server: str
    ssl_context: ssl.SSLContext | None = None
    authenticator: Authenticator | None = None
    proxy: str | None = None
    default_namespace: str = "default"
    description: str = ""
    tls_server_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "server", self.server.rstrip("/"))

    def __repr__(self) -> str:
        # Hand-written so that a proxy password never reaches a log line; authenticators
        # redact their own credentials in their reprs.
        if self.ssl_context is None:
            tls = "none"
        elif self.ssl_context.verify_mode == ssl.CERT_NONE:
            tls = "insecure"
        else:
            tls = "verified"
        parts = [f"server={self.server!r}", f"tls={tls}"]
        if self.tls_server_name:
            parts.append(f"tls_server_name={self.tls_server_name!r}")
        if self.proxy:
            parts.append(f"proxy={redact_url(self.proxy)!r}")
        parts += [
            f"authenticator={self.authenticator!r}",
            f"default_namespace={self.default_namespace!r}",
            f"description={self.description!r}",
        ]
        return f"ClusterConnection({', '.join(parts)})"


def redact_url(url: str) -> str:
    """The URL with its user info masked, for logs and messages (proxy URLs may carry
    credentials). A password becomes `***`; a user name alone becomes `***` too, since a
    token is often passed that way (`https://<token>@host`)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = "***" if password is None else f"{parts.username}:***"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))
