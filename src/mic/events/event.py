"""The `Event`: one observed change of one Kubernetes object in one cluster.

It is the value that flows from informers through the hub to routing and delivery, so it is
a slotted class holding the decoded object as a plain dict (decoded once, never converted
into model objects on the hot path). It is not frozen: setting each field through
`object.__setattr__` made building an event five times slower, and an informer builds one
per change. Treat events as read-only: one event object is shared by every consumer.
"""

from __future__ import annotations

import builtins
import os
import secrets
import threading
import time
from enum import StrEnum
from typing import Any

import orjson

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


OCCASION_LENGTH = 12
"""Characters of a `new_occasion` (the store keeps up to 32)."""


def new_occasion() -> str:
    """A fresh occasion (`Event.occasion`): 12 random hex characters (48 bits).

    One per snapshot or view change, shared by the events it sends: the ids of those events
    then differ from earlier sends about the same object versions. Unique enough for that: ids
    repeat only when two occasions about the same object version draw the same nonce.
    """
    return secrets.token_hex(OCCASION_LENGTH // 2)


class Event:
    """One change of one object, as observed in one cluster.

    `object` is the object after the change (for DELETED: its last known state); `old_object`
    is the state before the change when MIC knew it (MODIFIED and DELETED). `occasion` is None
    for a change as observed from the cluster, and a nonce for an event MIC sends again on its
    own initiative (a snapshot, a view change): see the attribute.

    An informer whose cache keeps objects as JSON (the compact cache mode) hands the old state
    over as those bytes (`old_json`): it is decoded on the first read of `old_object`, so an
    event nobody asks the old state of costs no decoding. It also hands over the new object's
    bytes, which it encoded for its cache anyway (`object_json`). The store writes both as
    they are and CloudEvents bodies splice them in, so on the delivery path an object is
    encoded once, by the cache. Whoever keeps events long may drop their decoded trees
    (`without_decoded`): `object` then decodes its bytes again when read. A hand-written
    slotted class rather than a dataclass, for the lazy fields. `object` may be None only
    with `object_json` given (an event read back from the outbox: decoded on first read).
    """

    __slots__ = (
        "_object",
        "_old_object",
        "cluster",
        "group",
        "kind",
        "name",
        "namespace",
        "object_json",
        "observed_at",
        "occasion",
        "old_json",
        "resource",
        "resource_version",
        "type",
        "uid",
        "ulid",
        "version",
    )

    def __init__(
        self,
        type: EventType,
        cluster: str,
        group: str,
        version: str,
        kind: str,
        resource: str,
        namespace: str | None,
        name: str,
        uid: str,
        resource_version: str,
        object: KubeObject | None,
        old_object: KubeObject | None = None,
        observed_at: float | None = None,
        ulid: str | None = None,
        *,
        old_json: bytes | None = None,
        object_json: bytes | None = None,
        occasion: str | None = None,
    ) -> None:
        self.type = type
        self.cluster = cluster
        self.group = group
        self.version = version
        self.kind = kind
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.resource_version = resource_version
        if object is None and object_json is None:
            raise ValueError("an Event needs its object, or object_json to decode it from")
        self._object: KubeObject | None = object
        self.object_json = object_json
        """`object` as compact JSON bytes (`orjson.dumps(object)`), when they were at hand."""
        self._old_object = old_object
        self.old_json = None if old_object is not None else old_json
        """`old_object` as JSON bytes, when it came so (kept after `old_object` decodes it)."""
        self.observed_at = time.time() if observed_at is None else observed_at
        self.ulid = ulid
        """The id, once made; pass it to rebuild a stored event with the same id."""
        self.occasion = occasion
        """None for a change as observed from the cluster. For an event MIC sends again on its
        own initiative about an unchanged object (a snapshot, a cluster or filter change moving
        the object into or out of a subscription's view), a short nonce (`new_occasion`): it
        makes the delivered id (`stable_event_id`) differ from any earlier send of the same
        (cluster, uid, resourceVersion, type), while retries of this send keep one id. Stored
        with the event, so the id also survives a restart."""

    @property
    def object(self) -> KubeObject:
        obj = self._object
        if obj is None:  # left to its bytes by `without_decoded`
            obj = self._object = orjson.loads(self.object_json)  # type: ignore[arg-type]
        return obj

    @object.setter
    def object(self, value: KubeObject) -> None:
        self._object = value
        self.object_json = None  # the bytes were of the object being replaced

    def without_decoded(self) -> Event:
        """This event with its states left as JSON bytes where it has them: `object` and
        `old_object` decode again on first read.

        For whoever keeps events long after routing them (the delivery engine's outbox queue and
        lanes: thousands of events). A decoded object takes 4-6x its JSON in dicts and strings,
        and a queue of them spreads every later allocation over cold memory: in the batched
        end-to-end benchmark, decoding a 1.3 KB watch line took 15 µs of CPU with the decoded
        trees queued against 9 µs without them. A copy, not a change: other consumers of the
        event keep the decoded object they were handed.
        """
        if self.object_json is None or (self._object is None and self._old_object is None):
            return self
        if self.ulid is None:  # made now, so that both copies carry the same id
            self.ulid = new_event_id(self.observed_at)
        slim = Event.__new__(Event)
        for name in _SLOTS_COPIED:
            setattr(slim, name, getattr(self, name))
        slim._object = None
        if self.old_json is not None:
            slim._old_object = None
        return slim

    @property
    def old_object(self) -> KubeObject | None:
        if self._old_object is None and self.old_json is not None:
            self._old_object = orjson.loads(self.old_json)
        return self._old_object

    @old_object.setter
    def old_object(self, value: KubeObject | None) -> None:
        self._old_object = value
        self.old_json = None

    @property
    def has_old_object(self) -> bool:
        """Whether the state before the change is known (without decoding it)."""
        return self._old_object is not None or self.old_json is not None

    def replace(self, **changes: Any) -> Event:
        """A copy with some fields changed (as `dataclasses.replace` did when this was one)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in _INIT_FIELDS if name != "object"}
        fields["object"], fields["object_json"] = self._object, self.object_json  # as kept
        fields["old_object"], fields["old_json"] = self._old_object, self.old_json
        if "object" in changes:
            fields["object_json"] = None  # the bytes were of the object being replaced
        if "old_object" in changes:
            fields["old_json"] = None
        fields.update(changes)
        return Event(**fields)

    def _compared(self) -> tuple[Any, ...]:
        """Every field but the id, the old state decoded: what equality compares."""
        return (*(getattr(self, name) for name in _COMPARED), self.old_object)

    def __eq__(self, other: builtins.object) -> bool:  # `object` is the property here
        if not isinstance(other, Event):
            return NotImplemented
        return self._compared() == other._compared()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in (*_COMPARED, "old_object"))
        return f"Event({shown})"

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


_INIT_FIELDS = (
    "type",
    "cluster",
    "group",
    "version",
    "kind",
    "resource",
    "namespace",
    "name",
    "uid",
    "resource_version",
    "object",
    "observed_at",
    "occasion",
    "ulid",
)
"""Constructor arguments read back by `replace` (the old state is passed as it is kept)."""

_COMPARED = _INIT_FIELDS[:-1]  # not the id (the occasion is compared: it changes the id delivered)

_SLOTS_COPIED = Event.__slots__
