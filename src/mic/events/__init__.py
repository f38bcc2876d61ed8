"""Events and their encodings; depends on nothing else in MIC."""

from mic.events.event import Event, EventType, KubeObject, new_event_id

__all__ = ["Event", "EventType", "KubeObject", "new_event_id"]
