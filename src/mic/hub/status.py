"""Health of clusters and of the resources watched in them, as the hub reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mic.kube.informer import InformerState


class ClusterState(StrEnum):
    """How a cluster is doing, from MIC's point of view."""

    CONNECTING = "connecting"
    READY = "ready"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    STOPPED = "stopped"


class ClusterReason(StrEnum):
    """Why a cluster (or one watched resource) is in its state, in one stable CamelCase word.

    Like the `reason` of a Kubernetes condition beside its `message`: alerts and scripts test
    it, people read `lastError`. It is told from the error's type (status code, exception
    class), never from its text. A fixed list, so a metric label of it stays bounded; new values
    may come in later versions: treat one you do not know as `Error`.

    - `Connected`: discovery worked and every watched resource completed its first list.
    - `Connecting`: not there yet (first discovery, or a first list still running).
    - `Stopped`: the cluster was removed from the hub.
    - `Unauthorized`: the API server answered 401: it does not accept MIC's credentials.
    - `Forbidden`: the API server answered 403 to discovery (`/version`, `/api`, `/apis`).
    - `CredentialPluginFailed`: the kubeconfig's exec credential plugin failed (missing,
      exit code, bad output): MIC has no credential to send.
    - `ConfigInvalid`: the connection settings cannot be used (e.g. a token file that is gone).
    - `TLSVerifyFailed`: the server's certificate is not trusted (unknown CA, expired) or does
      not name the server's host: give the CA that signed it, or fix the server URL.
    - `TLSError`: another TLS failure (handshake, protocol version, a server speaking no TLS).
    - `ConnectionRefused`: nothing listens at the server's address and port.
    - `DNSFailure`: the server's host name does not resolve.
    - `Timeout`: the server did not answer in time (connecting, or a request; or HTTP 408).
    - `ConnectionFailed`: another transport failure: reset, closed, network unreachable, a
      proxy's refusal, an answer that is not HTTP.
    - `TooManyRequests`: the API server answered 429 (throttling).
    - `ServerError`: the API server answered 5xx.
    - `ResourceNotServed`: the cluster does not serve a requested resource (no such type, a CRD
      not installed or deleted); the cluster is `degraded`.
    - `ResourceAmbiguous`: a requested resource name matches several API groups; qualify it.
    - `ResourceForbidden`: RBAC forbids MIC to list or watch a resource (403 on it).
    - `Error`: anything else (another 4xx, an internal error: see `lastError` and the MIC log).
    """

    CONNECTED = "Connected"
    CONNECTING = "Connecting"
    STOPPED = "Stopped"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    CREDENTIAL_PLUGIN_FAILED = "CredentialPluginFailed"
    CONFIG_INVALID = "ConfigInvalid"
    TLS_VERIFY_FAILED = "TLSVerifyFailed"
    TLS_ERROR = "TLSError"
    CONNECTION_REFUSED = "ConnectionRefused"
    DNS_FAILURE = "DNSFailure"
    TIMEOUT = "Timeout"
    CONNECTION_FAILED = "ConnectionFailed"
    TOO_MANY_REQUESTS = "TooManyRequests"
    SERVER_ERROR = "ServerError"
    RESOURCE_NOT_SERVED = "ResourceNotServed"
    RESOURCE_AMBIGUOUS = "ResourceAmbiguous"
    RESOURCE_FORBIDDEN = "ResourceForbidden"
    ERROR = "Error"


_REASON_OF_STATE = {
    ClusterState.CONNECTING: ClusterReason.CONNECTING,
    ClusterState.READY: ClusterReason.CONNECTED,
    ClusterState.UNAUTHORIZED: ClusterReason.UNAUTHORIZED,
    ClusterState.STOPPED: ClusterReason.STOPPED,
}


def default_reason(state: ClusterState) -> ClusterReason:
    """The reason a state implies when nothing more precise is known (a status built without
    one); `degraded` and `unreachable` have many causes, so they get the generic `Error`."""
    return _REASON_OF_STATE.get(state, ClusterReason.ERROR)


@dataclass(frozen=True)
class ResourceStatus:
    """One informer in one cluster: which resource, over what scope, and how it is doing.

    `reason` says why the watch fails (`ResourceForbidden`, `ResourceNotServed`...); None while
    it works (pending, listing, watching).
    """

    resource: str
    namespaces: tuple[str, ...] | None
    label_selector: str
    state: InformerState
    synced: bool
    object_count: int
    resource_version: str
    last_error: str | None
    last_event_at: float | None
    reason: ClusterReason | None = None


@dataclass(frozen=True)
class ClusterStatus:
    """A cluster's state, the reason and last error that explain it, and its watched resources.

    `reason` is always set by the hub; a status built by hand without one gets
    `default_reason(state)`, so readers never see None.
    """

    name: str
    state: ClusterState
    labels: dict[str, str] = field(default_factory=dict)
    server_version: str | None = None
    last_error: str | None = None
    last_event_at: float | None = None
    resources: tuple[ResourceStatus, ...] = ()
    unresolved: tuple[str, ...] = ()
    reason: ClusterReason | None = None

    def __post_init__(self) -> None:
        if self.reason is None:
            object.__setattr__(self, "reason", default_reason(self.state))
