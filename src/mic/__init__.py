"""MIC, the Multicluster Ingress Controller: watch many Kubernetes clusters from one place.

The library's public face is `Hub`: add clusters (from a kubeconfig, a URL and token, or the
in-cluster service account), declare what to watch, and consume one ordered stream of
`Event`s, or query the caches across clusters.
"""

from mic.events import Event, EventType
from mic.hub import (
    ClusterState,
    ClusterStatus,
    DuplicateClusterError,
    EventStream,
    Hub,
    NotWatchedError,
    ResourceStatus,
    UnknownClusterError,
    WatchSpec,
)
from mic.kube.connection import ClusterConnection
from mic.kube.direct import from_token
from mic.kube.errors import (
    AmbiguousResourceError,
    ApiError,
    ConfigError,
    ConnectionFailure,
    KubeError,
    UnknownResourceError,
)
from mic.kube.incluster import in_cluster
from mic.kube.informer import Informer, InformerOptions, InformerState, KnownObject
from mic.kube.kubeconfig import from_kubeconfig_file, from_kubeconfig_text, load_kubeconfig
from mic.kube.resources import ResourceInfo
from mic.kube.selectors import InvalidSelectorError, LabelSelector

__version__ = "0.1.0"

__all__ = [
    "AmbiguousResourceError",
    "ApiError",
    "ClusterConnection",
    "ClusterState",
    "ClusterStatus",
    "ConfigError",
    "ConnectionFailure",
    "DuplicateClusterError",
    "Event",
    "EventStream",
    "EventType",
    "Hub",
    "Informer",
    "InformerOptions",
    "InformerState",
    "InvalidSelectorError",
    "KnownObject",
    "KubeError",
    "LabelSelector",
    "NotWatchedError",
    "ResourceInfo",
    "ResourceStatus",
    "UnknownClusterError",
    "UnknownResourceError",
    "WatchSpec",
    "__version__",
    "from_kubeconfig_file",
    "from_kubeconfig_text",
    "from_token",
    "in_cluster",
    "load_kubeconfig",
]
