"""MIC, the Multicluster Ingress Controller: watch many Kubernetes clusters from one place.

The library's public face is `Hub`: add clusters (from a kubeconfig, a URL and token, or the
in-cluster service account), declare what to watch, and consume one ordered stream of
`Event`s, or query the caches across clusters.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mic.events import Event, EventType
    from mic.hub import (
        ClusterObjects,
        ClusterReason,
        ClusterState,
        ClusterStatus,
        DuplicateClusterError,
        EventStream,
        Hub,
        NotDiscoveredError,
        NotSyncedError,
        NotWatchedError,
        ResourceStatus,
        StreamOverflowError,
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

# Names are imported on first use (PEP 562), so `import mic` - and every `mic` CLI command -
# does not pay for aiohttp, the hub and the kube client unless it uses them.
_EXPORTS = {
    "AmbiguousResourceError": "mic.kube.errors",
    "ApiError": "mic.kube.errors",
    "ClusterConnection": "mic.kube.connection",
    "ClusterObjects": "mic.hub",
    "ClusterReason": "mic.hub",
    "ClusterState": "mic.hub",
    "ClusterStatus": "mic.hub",
    "ConfigError": "mic.kube.errors",
    "ConnectionFailure": "mic.kube.errors",
    "DuplicateClusterError": "mic.hub",
    "Event": "mic.events",
    "EventStream": "mic.hub",
    "EventType": "mic.events",
    "Hub": "mic.hub",
    "Informer": "mic.kube.informer",
    "InformerOptions": "mic.kube.informer",
    "InformerState": "mic.kube.informer",
    "InvalidSelectorError": "mic.kube.selectors",
    "KnownObject": "mic.kube.informer",
    "KubeError": "mic.kube.errors",
    "LabelSelector": "mic.kube.selectors",
    "NotDiscoveredError": "mic.hub",
    "NotSyncedError": "mic.hub",
    "NotWatchedError": "mic.hub",
    "ResourceInfo": "mic.kube.resources",
    "ResourceStatus": "mic.hub",
    "StreamOverflowError": "mic.hub",
    "UnknownClusterError": "mic.hub",
    "UnknownResourceError": "mic.kube.errors",
    "WatchSpec": "mic.hub",
    "from_kubeconfig_file": "mic.kube.kubeconfig",
    "from_kubeconfig_text": "mic.kube.kubeconfig",
    "from_token": "mic.kube.direct",
    "in_cluster": "mic.kube.incluster",
    "load_kubeconfig": "mic.kube.kubeconfig",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mic' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AmbiguousResourceError",
    "ApiError",
    "ClusterConnection",
    "ClusterObjects",
    "ClusterReason",
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
    "NotDiscoveredError",
    "NotSyncedError",
    "NotWatchedError",
    "ResourceInfo",
    "ResourceStatus",
    "StreamOverflowError",
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
