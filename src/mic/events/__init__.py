"""Events and their encodings; depends on nothing else in MIC."""

from mic.events.encodings import (
    EncodedRequest,
    Format,
    cloudevent,
    encode,
    encode_ping,
    mic_v1_envelope,
    redact_secret,
    redact_secret_event,
    stable_event_id,
)
from mic.events.event import Event, EventType, KubeObject, new_event_id, new_occasion

__all__ = [
    "EncodedRequest",
    "Event",
    "EventType",
    "Format",
    "KubeObject",
    "cloudevent",
    "encode",
    "encode_ping",
    "mic_v1_envelope",
    "new_event_id",
    "new_occasion",
    "redact_secret",
    "redact_secret_event",
    "stable_event_id",
]
