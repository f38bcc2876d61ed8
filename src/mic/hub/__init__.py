"""Many clusters at once: the library's public face."""

from mic.hub.hub import DuplicateClusterError, Handler, Hub, NotWatchedError, UnknownClusterError
from mic.hub.spec import WatchSpec
from mic.hub.status import ClusterState, ClusterStatus, ResourceStatus
from mic.hub.stream import EventStream, StreamOverflowError

__all__ = [
    "ClusterState",
    "ClusterStatus",
    "DuplicateClusterError",
    "EventStream",
    "Handler",
    "Hub",
    "NotWatchedError",
    "ResourceStatus",
    "StreamOverflowError",
    "UnknownClusterError",
    "WatchSpec",
]
