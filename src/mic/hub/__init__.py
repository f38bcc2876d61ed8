"""Many clusters at once: the library's public face."""

from mic.hub.hub import (
    ClusterObjects,
    DuplicateClusterError,
    Handler,
    Hub,
    NotDiscoveredError,
    NotSyncedError,
    NotWatchedError,
    UnknownClusterError,
)
from mic.hub.spec import WatchSpec
from mic.hub.status import ClusterReason, ClusterState, ClusterStatus, ResourceStatus
from mic.hub.stream import EventStream, StreamOverflowError

__all__ = [
    "ClusterObjects",
    "ClusterReason",
    "ClusterState",
    "ClusterStatus",
    "DuplicateClusterError",
    "EventStream",
    "Handler",
    "Hub",
    "NotDiscoveredError",
    "NotSyncedError",
    "NotWatchedError",
    "ResourceStatus",
    "StreamOverflowError",
    "UnknownClusterError",
    "WatchSpec",
]
