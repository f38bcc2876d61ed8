"""The `Event`: one observed change of one Kubernetes object in one cluster.

It is the value that flows from informers through the hub to routing and delivery, so it is
a slotted dataclass holding the decoded object as a plain dict (decoded once, never converted
into model objects on the hot path). It is not `frozen`: a frozen dataclass sets each field
through `object.__setattr__`, which made building an event five times slower, and an informer
builds one per change. Treat events as read-only: one event object is shared by every consumer.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

KubeObject = dict[str, Any]


class EventType(StrEnum):
    """What happened to the object; the names are the Kubernetes watch event types."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last_ms = 0
_last_random = 0


# Two Crockford characters for each 10-bit value: a ULID is 13 table lookups.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def new_event_id(at: float | None = None) -> str:
    """Return a ULID: 26 characters, unique, and sortable by time.

    The time part is `at` (epoch seconds; now by default). Ids made within the same
    millisecond increase monotonically, so sorting ids sorts events by time.
    """
    global _last_ms, _last_random
    with _id_lock:
        now_ms = time.time_ns() // 1_000_000 if at is None else int(at * 1000)
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_ms = now_ms
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        value = (now_ms << 80) | _last_random
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


@dataclass(slots=True)
class Event:
    """One change of one object, as observed in one cluster.

    `object` is the object after the change (for DELETED: its last known state); `old_object`
    is the state before the change when MIC knew it (MODIFIED and DELETED).
    """

    type: EventType
    cluster: str
    group: str
    version: str
    kind: str
    resource: str
    namespace: str | None
    name: str
    uid: str
    resource_version: str
    object: KubeObject
    old_object: KubeObject | None = None
    observed_at: float = field(default_factory=time.time)
    ulid: str | None = field(default=None, repr=False, compare=False)
    """The id, once made; pass it to rebuild a stored event with the same id."""

    @property
    def id(self) -> str:
        """Unique and sortable by observation time (a ULID), made on first use: most events
        are routed and dropped without anyone asking for their id."""
        if self.ulid is None:
            self.ulid = new_event_id(self.observed_at)
        return self.ulid

    @property
    def api_version(self) -> str:
        """The object's apiVersion as Kubernetes writes it (`v1`, `networking.k8s.io/v1`)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """`namespace/name` (or `name` for cluster-scoped objects), as client-go keys objects."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name
