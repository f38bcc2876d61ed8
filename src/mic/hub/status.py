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


@dataclass(frozen=True)
class ResourceStatus:
    """One informer in one cluster: which resource, over what scope, and how it is doing."""

    resource: str
    namespaces: tuple[str, ...] | None
    label_selector: str
    state: InformerState
    synced: bool
    object_count: int
    resource_version: str
    last_error: str | None
    last_event_at: float | None


@dataclass(frozen=True)
class ClusterStatus:
    """A cluster's state, the last error that explains it, and its watched resources."""

    name: str
    state: ClusterState
    labels: dict[str, str] = field(default_factory=dict)
    server_version: str | None = None
    last_error: str | None = None
    last_event_at: float | None = None
    resources: tuple[ResourceStatus, ...] = ()
    unresolved: tuple[str, ...] = ()
