"""Plain values the store reads and writes.

They are frozen dataclasses rather than pydantic models: API models live in `mic.api`, and the
store must not depend on any layer above it. Records are what is stored, nothing more. The one
import from MIC is `mic.events`, which depends on nothing: the outbox stores `Event`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

import orjson

from mic.events import Event, EventType, KubeObject

TokenRole = Literal["admin", "viewer"]
"""`admin` may change things; `viewer` may only read."""

TOKEN_ROLES: tuple[str, ...] = get_args(TokenRole)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """One registered cluster.

    `connection` is the credential-bearing connection spec (kubeconfig, token, CA ...) exactly as
    the API layer validated it. It is **secret**: it is excluded from `repr` so that logging a
    record never leaks it, and the API must never return it.

    `created_at`, `updated_at` and `generation` are set by the store; values passed in by a
    caller are ignored on create and replace. `generation` is strictly increasing for a name and
    unique across all clusters, never reused even after a delete and re-create, so the supervisor
    can compare one integer to know whether what it runs is still what is stored.
    """

    name: str
    connection: Mapping[str, Any] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[str, ...] = ()
    """Resources (kubectl-style names) to watch and cache by default."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One API bearer token. The token itself is never stored, only its SHA-256; so not here."""

    id: int
    name: str
    role: TokenRole
    created_at: datetime
    last_used_at: datetime | None = None


DeliveryState = Literal["pending", "dead"]
"""`pending`: waiting for (another) attempt. `dead`: a dead letter, kept until replayed."""


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """One subscription: its name and its spec as JSON (`SubscriptionSpec.to_json()`).

    `spec` holds the sink's headers and signing secret, so it is excluded from `repr` and the
    API must never return those parts. The store does not interpret the spec: validating it is
    `mic.routing`'s job, so the schema of a spec can evolve without a migration.
    `created_at`, `updated_at` and `generation` behave as for `ClusterRecord`.
    """

    name: str
    spec: Mapping[str, Any] = field(repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The last recorded state of one object in one informer scope (keyed by uid).

    `namespace` is "" for cluster-scoped objects, as in `mic.kube.informer.KnownObject`.
    """

    namespace: str
    name: str
    resource_version: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """Set (or, with `entry` None, forget) the ledger entry of `uid` in `cluster`'s `scope`."""

    cluster: str
    scope: str
    uid: str
    entry: LedgerEntry | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An `Event` as the outbox keeps it; `seq` is its row, `event_id` the `Event.id`."""

    seq: int
    event_id: str
    cluster: str
    group: str
    version: str
    kind: str
    resource: str
    namespace: str | None
    name: str
    uid: str
    resource_version: str
    type: EventType
    observed_at: float
    object_json: bytes
    """The object as stored (JSON). Kept as bytes, not decoded: a lane reading back a backlog
    holds thousands of these, and a delivery splices the bytes into its body as they are (a
    scale review: 10 lanes draining 300,000 rows grew from 172 to 428 MB decoding them)."""
    old_json: bytes | None
    occasion: str | None = None
    """`Event.occasion`: None for a change as observed, a nonce for a send of MIC's own."""

    @property
    def object(self) -> KubeObject:
        """The object, decoded anew on each read."""
        result: KubeObject = orjson.loads(self.object_json)
        return result

    @property
    def old_object(self) -> KubeObject | None:
        """The state before the change, if MIC knew it; decoded anew on each read."""
        result: KubeObject | None = None if self.old_json is None else orjson.loads(self.old_json)
        return result

    def to_event(self) -> Event:
        """The `Event` that was stored (same id), for the encoders and sinks."""
        return Event(
            type=self.type,
            cluster=self.cluster,
            group=self.group,
            version=self.version,
            kind=self.kind,
            resource=self.resource,
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            resource_version=self.resource_version,
            object=None,
            observed_at=self.observed_at,
            ulid=self.event_id,
            object_json=self.object_json,
            old_json=self.old_json,
            occasion=self.occasion,
        )


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """Queue `events[event_index]` of a `Store.record_changes` call for `subscription`.

    `object_key` identifies the object for per-object order and coalescing (the engine chooses
    it, e.g. cluster + resource + uid); the store only compares it for equality.
    """

    subscription: str
    event_index: int
    object_key: str


class RecordedDeliveries(list[int]):
    """What `Store.record_changes` returns: the new delivery ids (a list, in the order of the
    deliveries given), and `event_seqs`, the `seq` of each one's event.

    An event's seq is its place in the order events were routed, which a replay keeps (a
    replayed delivery gets a new id; its event stays the same row): what tells the newer of two
    queued events about one object (coalescing).
    """

    def __init__(self, ids: list[int] | None = None, event_seqs: list[int] | None = None) -> None:
        super().__init__(ids or [])
        self.event_seqs: list[int] = event_seqs or []


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One queued (or dead) delivery of an event to a subscription, with the event itself.

    `id` orders a subscription's queue and is never reused; `attempts` counts failed attempts.
    """

    id: int
    subscription: str
    object_key: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    event: StoredEvent
    superseded_at: datetime | None = None
    """A dead letter only: when a newer event of its object reached the recipient (a replay
    drops it rather than put an older state last)."""


Superseding = Mapping[str, Mapping[tuple[str, str], int]]
"""subscription -> (object key, uid) -> seq of the newest event of that object just delivered
to it, for objects with dead letters: written with the acknowledgement, it marks the dead
letters of older events of the same uid `superseded_at` (`Store.record_changes`,
`Store.delivered_many`). Only the same uid: a name deleted and created again is two objects,
and the new one's ADDED says nothing of the old one's DELETED."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """What `Store.replay` did: the new ids of the dead letters queued again, in queue order,
    and how many it dropped as superseded instead."""

    ids: list[int]
    superseded: int = 0
    not_found: list[int] = field(default_factory=list)
    """Ids asked for that are not dead letters of the subscription (mistyped, or replayed
    already)."""


@dataclass(frozen=True, slots=True)
class SubscriptionCounts:
    """What a subscription's status page shows, from one consistent read.

    `pending` includes `retrying` (pending rows that failed at least once). The totals count
    since the subscription was created; `oldest_pending_at` is when the oldest undelivered
    event was queued.
    """

    pending: int
    retrying: int
    dead: int
    delivered_total: int
    dead_total: int
    oldest_pending_at: datetime | None
    last_delivered_at: datetime | None = None
    """When a delivery was last acknowledged (None: never, or not since migration 0008)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """A lease as this process took it: a fenced store writes delivery state only while the
    lease row still names this holder and epoch (see `Store.fence`)."""

    lease: str
    holder: str
    epoch: int


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """One lease as stored: who holds it (`""` when released), since which hand-over (`epoch`),
    and how often the holder has renewed it since (`renewals`, the holder's heartbeat)."""

    name: str
    holder: str
    epoch: int
    renewals: int
    acquired_at: datetime
    renewed_at: datetime
