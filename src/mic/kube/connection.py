"""How to reach one cluster's API server: address, TLS, proxy and credentials.

A `ClusterConnection` is what every way of configuring a cluster (kubeconfig file or text,
URL + token, in-cluster service account) turns into; `KubeClient` needs nothing else.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Protocol


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
    and error messages.
    """

    server: str
    ssl_context: ssl.SSLContext | None = None
    authenticator: Authenticator | None = None
    proxy: str | None = None
    default_namespace: str = "default"
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "server", self.server.rstrip("/"))
