"""MIC, the Multicluster Ingress Controller: watch many Kubernetes clusters from one place."""

from mic.events import Event, EventType

__version__ = "0.1.0"

__all__ = ["Event", "EventType", "__version__"]
