"""`DeliveryEngine`: from informer batches to durable, ordered deliveries.

The hub hands every informer batch to `on_batch`. For each batch the engine finds the
subscriptions whose watches the informer serves, matches each event against their filters, and
queues the result for the `OutboxWriter`, which writes — in one transaction, together with
whatever else is queued — the ledger (what MIC last saw of each object, per informer scope), the
events, and one delivery row per matching subscription. The informer goes on meanwhile, up to a
bounded number of unwritten events; a crash before the commit loses nothing, because the ledger
was not updated either and the next start reports those changes again. After the commit the
rows go to each subscription's `SubscriptionLane`, which sends them.

On start, informers get the ledger as their known state (`known_state`), so the first list
after a restart — clean or `kill -9` — reports only what changed while MIC was down, deletes
included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mic.delivery.acks import Acknowledgements
from mic.delivery.lane import Pending, SubscriptionLane, object_key
from mic.delivery.signing import signature_headers
from mic.delivery.sink import Outcome, WebhookClient
from mic.delivery.status import PingResult, SubscriptionStatus
from mic.delivery.writer import LedgerItem, OutboxWriter, ReadyLedgerChange, RoutedBatch, Written
from mic.events import Event, EventType, KubeObject, encode_ping, new_occasion, redact_secret_event
from mic.hub import Hub, WatchSpec
from mic.hub.cluster import InformerKey
from mic.kube.fingerprint import content_hash
from mic.kube.informer import Informer, KnownObject, tombstone
from mic.kube.tasks import OwnedTasks
from mic.routing.matcher import SubscriptionMatcher
from mic.routing.spec import InvalidSubscriptionError, SubscriptionSpec
from mic.store import (
    DeliveryRow,
    LedgerChange,
    LedgerEntry,
    NewDelivery,
    NotFoundError,
    Replayed,
    Store,
    StoreError,
    SubscriptionRecord,
)

log = logging.getLogger(__name__)

ACK_PAUSE = 0.005
"""Seconds an acknowledgement waits for company before it is written on its own. Those that
arrive meanwhile go in the same commit, so the write rate adapts to the delivery rate and the
window in which a crash causes re-sends stays about one commit long."""

SNAPSHOT_POLL = 0.2
"""Seconds between looks at the informers a deferred snapshot waits for."""

CLOSE_FLUSH_TIMEOUT = 10.0
"""Seconds `close` waits for routed batches to be written (the rest is reported again at the
next start, from the ledger)."""

PURGE_INTERVAL = 60.0
"""Seconds between deletions of stored events that no delivery refers to any more."""


@dataclass
class _DeferredSnapshot:
    """A snapshot of one (cluster, watch) waiting for its informer's first list to complete."""

    send: bool
    """Send the objects (ADDED), or only align the ledger."""
    routed: set[tuple[str, str]] = field(default_factory=set)
    """(uid, resourceVersion) of every event of that informer routed to the subscription since
    the snapshot was asked for, so the snapshot does not send them again."""


@dataclass
class _Subscription:
    spec: SubscriptionSpec
    matcher: SubscriptionMatcher
    lane: SubscriptionLane
    watches: list[WatchSpec] = field(default_factory=list)
    resources: set[str] = field(default_factory=set)
    deferred: dict[tuple[str, WatchSpec], _DeferredSnapshot] = field(default_factory=dict)
    """The snapshots that wait for an informer's first list, per (cluster, watch): at most one
    each (asked again meanwhile, it starts over); dropped once taken."""


class FarewellUnavailableError(Exception):
    """A cluster cannot be deleted now without dropping what recipients hold of it unannounced
    (see `DeliveryEngine.cluster_deletion`)."""

    def __init__(self, cluster: str, resources: Sequence[str]) -> None:
        self.cluster = cluster
        self.resources = list(resources)
        super().__init__(
            f"cluster {cluster!r} cannot be deleted now: recipients hold its objects, and MIC cannot "
            f"name the {', '.join(self.resources)} to send their DELETED (the cluster has been "
            "unreachable since MIC started, and no other cluster serves them). Delete it once it is "
            "reachable, or with force=true to drop them without telling the recipients"
        )


class UnknownSubscriptionError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} not found")
        self.name = name


class DeliveryEngine:
    """Routes informer batches to subscriptions and runs their lanes."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        *,
        client: WebhookClient | None = None,
        may_deliver: Callable[[], bool] = lambda: True,
    ) -> None:
        """`may_deliver()` is asked before each request to a sink (and ping): False holds it
        back (the service's lease, see `StoreLease.current`)."""
        self._store = store
        self._hub = hub
        self._client = client or WebhookClient()
        self._may_deliver = may_deliver
        self._subscriptions: dict[str, _Subscription] = {}
        self._by_watch: dict[WatchSpec, set[str]] = {}
        # Routing: no batch is routed while subscriptions change or a snapshot is taken.
        self._route_lock = asyncio.Lock()
        # One transaction at a time: the outbox writer's and the acknowledgements'.
        self._store_lock = asyncio.Lock()
        # Informers some batch of which was not routed (nobody subscribed then): their ledger
        # is behind their cache until a subscription's snapshot aligns it.
        self._ledger_behind: set[tuple[str, InformerKey]] = set()
        # Clusters being deleted (`cluster_deletion`): their batches are no longer routed.
        self._leaving: set[str] = set()
        # Stored subscriptions left stopped, and why (a spec an older MIC accepted).
        self._not_started: dict[str, str] = {}
        self._writer = OutboxWriter(self._write_until_stored, self._written)
        self._acknowledgements = Acknowledgements()
        self._tasks = OwnedTasks("delivery")
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every stored subscription and wire the engine into the hub.

        Call before clusters are added, so the first list of every informer already meets the
        subscriptions and the ledger.
        """
        if self._started:
            return
        self._started = True
        self._hub.add_listener(self.on_batch)
        self._hub.add_label_listener(self.on_cluster_labels)
        self._hub.known_state = self.known_state
        for record in await self._store.list_subscriptions():
            try:
                spec = SubscriptionSpec.from_json(record.spec)
            except InvalidSubscriptionError as error:
                # Stored under looser rules by an older MIC: the service must still start. This
                # one stays stopped (its queued rows stay stored) until a PUT fixes it.
                self._not_started[record.name] = f"its stored spec is no longer valid: {error}"
                log.error(
                    "subscription %s is not started: %s; fix it with PUT /v1/subscriptions/%s",
                    record.name,
                    self._not_started[record.name],
                    record.name,
                )
                continue
            await self._activate(spec, snapshot=False)
        self._tasks.start("outbox writer", self._writer.run())
        self._tasks.start("purge", self._purge_loop())
        self._tasks.start("acknowledge", self._acknowledge_loop())

    async def close(self) -> None:
        for subscription in list(self._subscriptions.values()):
            await subscription.lane.close()
        try:
            async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                await self._writer.flush()
        except TimeoutError:
            log.warning(
                "closing with %d routed event(s) unwritten; the next start reports them", self._writer.queued
            )
        await self._tasks.close()
        async with self._store_lock:
            await self._write_acknowledgements()
        await self._client.close()

    # -- subscriptions --------------------------------------------------------------------

    async def apply(self, record: SubscriptionRecord) -> None:
        """Start a new subscription or take a changed one into use (after its store write).

        A new subscription first gets the current matching objects (unless `initialState` is
        off). A changed filter first sends a DELETED for each object it no longer matches, then
        re-sends the current matching objects (as for a new subscription). Events MIC sends on
        such an occasion carry a new occasion, so their ids differ from earlier sends of the
        same object version: a recipient dropping duplicate ids keeps them.
        """
        spec = SubscriptionSpec.from_json(record.spec)
        self._not_started.pop(spec.name, None)
        current = self._subscriptions.get(spec.name)
        if current is None:
            await self._activate(spec, snapshot=spec.initial_state)
            return
        if current.spec == spec:
            return
        if current.spec.filter != spec.filter:
            async with self._route_lock:
                await self._leave_narrowed_view(current, spec)
                await self._release_watches(current)
                current.spec = spec
                current.matcher = SubscriptionMatcher(spec, frozenset(current.resources))
                await self._watch(current)
                await self._snapshot(current, send=spec.initial_state)
        current.spec = spec
        current.lane.update_spec(spec)

    async def _leave_narrowed_view(self, subscription: _Subscription, spec: SubscriptionSpec) -> None:
        """Before `subscription` takes `spec`'s filter: a DELETED of every object it followed that
        the new filter leaves out (another cluster selection, namespaces, labels, CEL, or a
        resource no longer listed), as a cluster leaving its selector sends. The caller holds
        the route lock; the current matcher still routes these (under the old filter).

        The new filter is judged with the resources resolved under the old one that the new one
        still names as written: a resource named differently (`ingress` for `ingresses`) counts
        as left, and is re-sent as ADDED by the snapshot that follows.
        """
        kept: set[str] = set()
        for cluster in self._hub.cluster_names():
            for watch in subscription.watches:
                key = self._hub.informer_key(cluster, watch)
                if key is not None and watch.resource in spec.filter.resources:
                    kept.add(key.qualified_resource)
        # The new view, whatever types it sends: event types, and a CEL expression about
        # changes rather than objects, do not make an object leave it.
        view = dataclasses.replace(spec.filter, event_types=tuple(EventType))
        if spec.filter.cel and not SubscriptionMatcher(spec, frozenset()).follows_membership:
            view = dataclasses.replace(view, cel=None)
        after = SubscriptionMatcher(dataclasses.replace(spec, filter=view), frozenset(kept))
        for cluster in self._hub.cluster_names():
            labels = self._hub.cluster_labels(cluster)
            if not subscription.matcher.wants_cluster(cluster, labels):
                continue

            def stays(event: Event, labels: Mapping[str, str] = labels) -> bool:
                return after.route(event.replace(type=EventType.ADDED), labels) is not None

            await self._farewell(subscription, cluster, labels, stays=stays)

    def not_started(self, name: str) -> str | None:
        """Why a stored subscription is not running (None: it runs, or is unknown)."""
        return self._not_started.get(name)

    async def remove(self, name: str) -> None:
        """Stop a subscription (its stored rows go with its store record)."""
        self._not_started.pop(name, None)
        subscription = self._subscriptions.pop(name, None)
        if subscription is None:
            return
        await self._release_watches(subscription)
        await subscription.lane.close()
        self._acknowledgements.forget(name)

    async def _activate(self, spec: SubscriptionSpec, *, snapshot: bool) -> None:
        lane = SubscriptionLane(
            spec, self._store, self._client, self._acknowledgements, may_deliver=self._may_deliver
        )
        subscription = _Subscription(spec, SubscriptionMatcher(spec, frozenset()), lane)
        self._subscriptions[spec.name] = subscription
        await lane.start()
        # Under the route lock, so no batch is routed to the subscription between its
        # registration and its snapshot: a snapshot's ADDED always precedes later changes.
        async with self._route_lock:
            await self._watch(subscription)
            # Informers already running (shared with another subscription or a cache query)
            # will not list again: align their scope's ledger with their cache, and send their
            # objects if the subscription wants the current state.
            await self._snapshot(subscription, send=snapshot)

    async def _watch(self, subscription: _Subscription) -> None:
        spec_filter = subscription.spec.filter
        clusters = (
            spec_filter.clusters
            if spec_filter.clusters is not None and not spec_filter.cluster_selector
            else None
        )
        for resource in spec_filter.resources:
            watch = WatchSpec.build(
                resource,
                clusters=clusters,
                namespaces=spec_filter.namespaces,
                label_selector=spec_filter.label_selector or None,
            )
            # Registered before the hub starts the informer, so its first batch is routed.
            self._by_watch.setdefault(watch, set()).add(subscription.spec.name)
            subscription.watches.append(watch)
            await self._hub.watch(
                resource,
                clusters=clusters,
                namespaces=spec_filter.namespaces,
                label_selector=watch.label_selector,
            )

    async def _release_watches(self, subscription: _Subscription) -> None:
        for watch in subscription.watches:
            names = self._by_watch.get(watch)
            if names is not None:
                names.discard(subscription.spec.name)
                if not names:
                    del self._by_watch[watch]
            await self._hub.unwatch(watch)
        subscription.watches.clear()

    def _get(self, name: str) -> _Subscription:
        try:
            return self._subscriptions[name]
        except KeyError:
            raise UnknownSubscriptionError(name) from None

    # -- the hub's side -------------------------------------------------------------------

    async def known_state(self, cluster: str, key: InformerKey) -> dict[str, KnownObject] | None:
        """The ledger of an informer's scope: what MIC last recorded of each object.

        Only for an informer some subscription is routed from. One started for another consumer
        (an API event stream, a resource query) over a scope whose ledger a deleted
        subscription left behind must list every object: given the ledger, it would report only
        what changed since, and that consumer would never see the rest. Its batches go
        unrouted, so a subscription that joins it later aligns the ledger (`_ledger_behind`).
        """
        if not any(self._by_watch.get(watch) for watch in self._hub.specs_for(cluster, key)):
            return None
        await self._writer.flush()  # what is routed and queued belongs to the ledger already
        entries = await self._store.load_ledger(cluster, key.scope)
        return {
            uid: KnownObject(entry.namespace, entry.name, entry.resource_version, entry.content_hash)
            for uid, entry in entries.items()
        }

    def _subscriptions_for(self, cluster: str, key: InformerKey) -> list[_Subscription]:
        names: set[str] = set()
        for watch in self._hub.specs_for(cluster, key):
            names.update(self._by_watch.get(watch, ()))
        found = [self._subscriptions[name] for name in sorted(names) if name in self._subscriptions]
        for subscription in found:
            _learn_resource(subscription, key)
        return found

    async def on_batch(self, cluster: str, key: InformerKey, events: list[Event]) -> None:
        """Route a batch and queue its ledger changes and deliveries for the outbox writer;
        waits only while the writer is too far behind."""
        async with self._route_lock:
            if cluster in self._leaving:
                return  # after its farewell, it would bring objects back (`cluster_deletion`)
            subscriptions = self._subscriptions_for(cluster, key)
            if not subscriptions:
                self._ledger_behind.add((cluster, key))  # nobody subscribed: nothing to keep
                return
            labels = self._hub.cluster_labels(cluster)
            scope = key.scope
            ledger = [_ObservedState(cluster, scope, event) for event in events]
            pending = self._pending_snapshots(cluster, key, subscriptions)
            await self._writer.submit(self._route(cluster, labels, subscriptions, events, ledger, pending))
        await self._writer.wait_for_room()

    def _pending_snapshots(
        self, cluster: str, key: InformerKey, subscriptions: Sequence[_Subscription]
    ) -> dict[str, list[set[tuple[str, str]]]] | None:
        """Per subscription, the `routed` sets of its deferred snapshots this informer feeds."""
        if not any(subscription.deferred for subscription in subscriptions):
            return None
        specs = self._hub.specs_for(cluster, key)
        found: dict[str, list[set[tuple[str, str]]]] = {}
        for subscription in subscriptions:
            for (deferred_cluster, watch), deferred in subscription.deferred.items():
                if deferred_cluster == cluster and watch in specs:
                    found.setdefault(subscription.spec.name, []).append(deferred.routed)
        return found or None

    def _route(
        self,
        cluster: str,
        labels: dict[str, str],
        subscriptions: Sequence[_Subscription],
        events: Sequence[Event],
        ledger: Sequence[LedgerItem],
        pending: dict[str, list[set[tuple[str, str]]]] | None = None,
    ) -> RoutedBatch:
        """Match events against subscriptions: the batch to write; the caller holds the route
        lock. `pending` (see `_pending_snapshots`) records what deferred snapshots need not send.

        Events are stored (and queued) with Secret values hidden unless one of `subscriptions`
        includes Secret data (`redact_secret_event`): the others' recipients never get them,
        so the outbox keeps none at rest for them."""
        at_rest = _stored if any(s.spec.include_secret_data for s in subscriptions) else _stored_redacted
        stored: list[Event] = []
        deliveries: list[NewDelivery] = []
        owners: list[tuple[_Subscription, Event, str]] = []
        for event in events:
            index = -1
            key = object_key(event)
            kept = event
            retyped: dict[EventType, tuple[int, Event]] | None = None
            for subscription in subscriptions:
                if not subscription.matcher.wants_cluster(cluster, labels):
                    continue
                delivered = subscription.matcher.route(event, labels)
                if delivered is None:
                    continue
                if delivered is not event.type:
                    # The object entered or left the subscription's CEL filter: stored as its
                    # own event (own id and type), shared by every subscription hearing it so.
                    retyped = {} if retyped is None else retyped
                    if delivered not in retyped:
                        retyped[delivered] = (len(stored), at_rest(_retyped(event, delivered)))
                        stored.append(retyped[delivered][1])
                    variant_index, variant = retyped[delivered]
                    deliveries.append(NewDelivery(subscription.spec.name, variant_index, key))
                    owners.append((subscription, variant, key))
                else:
                    if index < 0:
                        index = len(stored)
                        # Queued until delivered, maybe thousands of events: without the decoded
                        # trees (see `Event.without_decoded`).
                        kept = at_rest(event)
                        stored.append(kept)
                    deliveries.append(NewDelivery(subscription.spec.name, index, key))
                    owners.append((subscription, kept, key))
                if pending is not None:
                    for routed in pending.get(subscription.spec.name, ()):
                        routed.add((event.uid, event.resource_version))
        return RoutedBatch(ledger, stored, deliveries, owners)

    def _written(self, batch: RoutedBatch, written: list[Written]) -> None:
        """A batch is committed: its rows join their lanes (in commit order, so in id order)."""
        now = time.time()
        per_lane: dict[str, tuple[_Subscription, list[Pending]]] = {}
        for stored, (subscription, event, key) in zip(written, batch.owners, strict=True):
            if stored is None:
                continue  # its subscription was deleted meanwhile
            delivery_id, event_seq = stored
            pending = Pending(delivery_id, key, event, now, event_seq)
            per_lane.setdefault(subscription.spec.name, (subscription, []))[1].append(pending)
        for name, (subscription, rows) in per_lane.items():
            if self._subscriptions.get(name) is subscription:  # not removed while queued
                subscription.lane.enqueue(rows)

    async def _write_until_stored(
        self, ledger: Sequence[LedgerChange], events: Sequence[Event], deliveries: Sequence[NewDelivery]
    ) -> list[Written]:
        """Write, retrying while the store fails (routing waits once the writer's queue is full,
        so the informers wait and nothing is lost).

        Returns (delivery id, event seq) in the order of `deliveries`; None for a delivery dropped
        because its subscription was deleted while the batch was on its way (a cluster deleted
        meanwhile likewise loses its ledger changes).
        """
        delay = 0.5
        keep = list(range(len(deliveries)))
        while True:
            try:
                async with self._store_lock:
                    acknowledged = self._acknowledgements.take()
                    try:
                        written = await self._store.record_changes(
                            ledger,
                            events,
                            [deliveries[i] for i in keep],
                            acknowledged=acknowledged.ids,
                            superseding=acknowledged.superseding,
                        )
                    except BaseException:
                        self._acknowledgements.back(acknowledged)
                        raise
            except NotFoundError:
                subscriptions = {record.name for record in await self._store.list_subscriptions()}
                clusters = {record.name for record in await self._store.list_clusters()}
                still = [i for i in keep if deliveries[i].subscription in subscriptions]
                kept_ledger = [change for change in ledger if change.cluster in clusters]
                if len(still) == len(keep) and len(kept_ledger) == len(ledger):
                    raise
                keep, ledger = still, kept_ledger
                continue
            except StoreError as error:
                log.warning(
                    "cannot write %d event(s) to the outbox: %s; retrying in %.1fs", len(events), error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            stored: list[Written] = [None] * len(deliveries)
            for index, delivery_id, event_seq in zip(keep, written, written.event_seqs, strict=True):
                stored[index] = (delivery_id, event_seq)
            return stored

    async def on_cluster_labels(
        self, cluster: str, old: Mapping[str, str], new: Mapping[str, str], apply: Callable[[], None]
    ) -> None:
        """A cluster's labels change (`apply` sets them): subscriptions whose cluster selector
        starts to match it get its objects as ADDED, those it stops matching get a DELETED for
        each object they were following, so no recipient keeps objects of a cluster it no
        longer hears from. Under the route lock, so every batch is routed with one set of labels.
        """
        async with self._route_lock:
            apply()
            if cluster in self._leaving:
                return  # its subscriptions were told it is gone (`cluster_deletion`)
            for subscription in list(self._subscriptions.values()):
                matcher = subscription.matcher
                was, now = matcher.wants_cluster(cluster, old), matcher.wants_cluster(cluster, new)
                if now and not was:
                    log.info(
                        "subscription %s: cluster %s now selected, sending its objects",
                        subscription.spec.name,
                        cluster,
                    )
                    await self._snapshot(subscription, clusters=(cluster,))
                elif was and not now:
                    log.info(
                        "subscription %s: cluster %s no longer selected, sending deletes",
                        subscription.spec.name,
                        cluster,
                    )
                    await self._farewell(subscription, cluster, old)

    @asynccontextmanager
    async def cluster_deletion(
        self, cluster: str, labels: Mapping[str, str], *, force: bool = False
    ) -> AsyncIterator[None]:
        """Around the deletion of a cluster (the body deletes it: store, then hub): first every
        subscription that selects it gets a DELETED for each object of it that it follows, as
        when the cluster's labels stop matching, so that no recipient keeps routing traffic to
        a cluster MIC no longer watches. From then on the cluster's batches are dropped (routed
        after the farewell, they would bring objects back), and no snapshot includes it. If the
        body fails (the store could not delete the cluster), the cluster stays: the
        subscriptions told it was gone get its objects again as ADDED.

        A farewell names each object by its resource, which only a running informer of this or
        another cluster can resolve: a cluster unreachable since MIC started, whose objects no
        other cluster's watch resolves, cannot be said goodbye to, and deleting it would drop
        the only record of its objects (the ledger). That is refused
        (`FarewellUnavailableError`) unless `force`.

        A decision: deleting a registration is "this cluster is no longer ours", the same as
        relabelling it out of every view; a cluster deleted by mistake comes back with a snapshot
        of new ADDED (ids of their own) when it is registered again. Library users who only
        `Hub.remove_cluster` get no DELETED (see there).
        """
        async with self._route_lock:
            if cluster in self._hub.cluster_names():
                labels = self._hub.cluster_labels(cluster)  # what its batches were routed with
            told = [s for s in self._subscriptions.values() if s.matcher.wants_cluster(cluster, labels)]
            if not force:
                await self._check_farewell_possible(cluster, told)
            self._leaving.add(cluster)
            try:
                for subscription in told:
                    log.info(
                        "subscription %s: cluster %s is being deleted, sending deletes",
                        subscription.spec.name,
                        cluster,
                    )
                    await self._farewell(subscription, cluster, labels)
                await self._writer.flush()  # durable before the cluster and its ledger go
            except BaseException:
                self._leaving.discard(cluster)
                raise
        try:
            yield
        except BaseException:
            async with self._route_lock:
                self._leaving.discard(cluster)
                for subscription in told:
                    if self._subscriptions.get(subscription.spec.name) is subscription:
                        log.warning(
                            "subscription %s: cluster %s could not be deleted after its deletes "
                            "were queued; sending its objects again",
                            subscription.spec.name,
                            cluster,
                        )
                        await self._snapshot(subscription, clusters=(cluster,))
            raise
        finally:
            self._leaving.discard(cluster)

    async def _check_farewell_possible(self, cluster: str, told: Sequence[_Subscription]) -> None:
        """Raise `FarewellUnavailableError` when some subscription's watch cannot be resolved
        for `cluster` (see `cluster_deletion`) while MIC holds objects of it."""
        unresolved = sorted(
            {
                watch.resource
                for subscription in told
                for watch in subscription.watches
                if self._hub.informer_key(cluster, watch) is None
                and self._stand_in(cluster, watch)[1] is None
            }
        )
        if unresolved and await self._store.has_ledger(cluster):
            raise FarewellUnavailableError(cluster, unresolved)

    async def _farewell(
        self,
        subscription: _Subscription,
        cluster: str,
        labels: Mapping[str, str],
        *,
        stays: Callable[[Event], bool] | None = None,
    ) -> None:
        """Queue a DELETED of every object of `cluster` that `subscription` follows (its current
        matcher routes them, with the cluster's `labels` as they were), except those that
        `stays` keeps in view; the ledger does not change (the objects did not)."""
        for watch in subscription.watches:
            key, events = await self._last_routed_states(cluster, watch)
            if key is not None:
                _learn_resource(subscription, key)  # a stand-in's (see `_ledger_tombstones`)
            if stays is not None:
                events = [event for event in events if not stays(event)]
            if events:
                await self._writer.submit(self._route(cluster, dict(labels), [subscription], events, []))

    async def _last_routed_states(
        self, cluster: str, watch: WatchSpec
    ) -> tuple[InformerKey | None, list[Event]]:
        """A DELETED (with a new occasion) for every object the ledger of `watch`'s informer
        scope holds: its cached state where the cache holds the very version routed last, else
        a tombstone; and the informer's key. The cache alone runs ahead of routing: a change
        cached but still waiting for the route lock (a delete, say) would then be missing. The
        caller holds the route lock.

        A cluster down since MIC started has no informer (its resource was never resolved
        there): the informer of another cluster that resolved the same watch stands in, for
        the ledger's scope (which leaves the version out) and the resource's kind; every
        object is a tombstone then. With no such cluster the objects cannot be named: logged.
        """
        informer = self._hub.informer(cluster, watch)
        key = self._hub.informer_key(cluster, watch)
        cached = informer.cache.items() if informer is not None else ()
        if informer is None or key is None:
            informer, key = self._stand_in(cluster, watch)
            cached = ()
            if informer is None or key is None:
                log.warning(
                    "cluster %s left a subscription's view, but its %s were never resolved there or "
                    "in another cluster: no DELETED can be sent for them",
                    cluster,
                    watch.resource,
                )
                return None, []
        await self._writer.flush()
        ledger = await self._store.load_ledger(cluster, key.scope)
        routed_states: dict[str, KubeObject] = {}
        for _, obj in cached:
            metadata = obj.get("metadata")
            if isinstance(metadata, dict):
                uid = str(metadata.get("uid") or "")
                entry = ledger.get(uid)
                if entry is not None and metadata.get("resourceVersion") == entry.resource_version:
                    routed_states[uid] = obj
        occasion = new_occasion()
        events: list[Event] = []
        for uid, entry in ledger.items():
            state = routed_states.get(uid)
            if state is None:
                known = KnownObject(entry.namespace, entry.name, entry.resource_version, entry.content_hash)
                state = tombstone(uid, known, informer.resource)
            event = informer.make_event(EventType.DELETED, state)
            event.cluster = cluster  # a stand-in's informer serves another cluster
            event.occasion = occasion
            events.append(event)
        return key, events

    def _stand_in(self, cluster: str, watch: WatchSpec) -> tuple[Informer | None, InformerKey | None]:
        """Another cluster's informer for `watch`, and its key (see `_last_routed_states`)."""
        for other in self._hub.cluster_names():
            if other == cluster:
                continue
            informer, key = self._hub.informer(other, watch), self._hub.informer_key(other, watch)
            if informer is not None and key is not None:
                return informer, key
        return None, None

    async def _snapshot(
        self, subscription: _Subscription, *, send: bool = True, clusters: Sequence[str] | None = None
    ) -> None:
        """Align the ledger of every running informer the subscription uses (in `clusters`, or
        all) with its cache, and (if `send`) queue an ADDED for each cached object that matches.
        The caller holds the route lock.

        An informer whose first list is not complete yet (or that does not exist yet) cannot be
        trusted to report every object: started from the ledger's known state, it reports only
        what changed. Its snapshot is taken once the list is complete (`_deferred_snapshot`).
        """
        deferred: list[tuple[str, WatchSpec]] = []
        for cluster in self._hub.cluster_names() if clusters is None else clusters:
            if cluster in self._leaving:
                continue  # being deleted: its subscriptions were told it is gone
            for watch in subscription.watches:
                informer = self._hub.informer(cluster, watch)
                if informer is not None and informer.synced:
                    await self._snapshot_informer(subscription, cluster, watch, send=send)
                elif send or (informer is not None and informer.populated):
                    deferred.append((cluster, watch))
                # else: its first list is still to come and will be routed (and aligns the
                # ledger) as it arrives.
        if deferred:
            # Asked again while a snapshot of the same (cluster, watch) waits (two PUTs in a
            # row): that one starts over, of the view as it is now, rather than a second one
            # running beside it and sending every object twice. It sends if either asked to.
            fresh = [pair for pair in deferred if pair not in subscription.deferred]
            for pair in deferred:
                waiting = subscription.deferred.get(pair)
                also_send = waiting is not None and waiting.send
                subscription.deferred[pair] = _DeferredSnapshot(send or also_send)
            if fresh:
                self._tasks.start(
                    f"snapshot {subscription.spec.name}", self._deferred_snapshot(subscription, fresh)
                )

    async def _deferred_snapshot(
        self, subscription: _Subscription, waiting: list[tuple[str, WatchSpec]]
    ) -> None:
        """Take the snapshots of informers whose first list was under way, as each completes."""
        try:
            while waiting:
                for cluster, watch in list(waiting):
                    if cluster not in self._hub.cluster_names() or cluster in self._leaving:
                        waiting.remove((cluster, watch))
                        subscription.deferred.pop((cluster, watch), None)
                        continue
                    informer = self._hub.informer(cluster, watch)
                    if informer is None or not informer.synced:
                        continue
                    async with self._route_lock:
                        if self._subscriptions.get(subscription.spec.name) is not subscription:
                            return  # removed meanwhile
                        deferred = subscription.deferred.pop((cluster, watch), None)
                        if deferred is not None and watch in subscription.watches:
                            await self._snapshot_informer(
                                subscription, cluster, watch, send=deferred.send, skip=deferred.routed
                            )
                    waiting.remove((cluster, watch))
                if waiting:
                    await asyncio.sleep(SNAPSHOT_POLL)
        finally:
            for pair in waiting:
                subscription.deferred.pop(pair, None)

    async def _snapshot_informer(
        self,
        subscription: _Subscription,
        cluster: str,
        watch: WatchSpec,
        *,
        send: bool,
        skip: set[tuple[str, str]] | None = None,
    ) -> None:
        """One synced informer's part of a snapshot; the caller holds the route lock. `skip`:
        (uid, resourceVersion) already routed to the subscription since the snapshot was asked
        for (a deferred one), not sent again."""
        informer = self._hub.informer(cluster, watch)
        key = self._hub.informer_key(cluster, watch)
        if informer is None or key is None:
            return
        cached = [obj for _, obj in informer.cache.items()]
        # Only an informer whose batches went unrouted has a ledger to align. Aligning one that
        # other subscriptions are routed from would record, ahead of them, a change the
        # informer has cached but not routed yet (its batch waits for the route lock we hold):
        # killed before that batch is written, MIC would never report the change to them.
        behind = (cluster, key) in self._ledger_behind
        ledger = (
            [ReadyLedgerChange(change) for change in await self._ledger_for_cache(cluster, key, cached)]
            if behind
            else []
        )
        events = []
        if send:
            occasion = new_occasion()  # a new message about each object, not the first ADDED again
            for obj in cached:
                event = informer.make_event(EventType.ADDED, obj)
                if skip is None or (event.uid, event.resource_version) not in skip:
                    event.occasion = occasion
                    events.append(event)
        subscription.resources.add(key.qualified_resource)
        subscription.matcher = SubscriptionMatcher(subscription.spec, frozenset(subscription.resources))
        labels = self._hub.cluster_labels(cluster)
        batch = self._route(cluster, labels, [subscription], events, ledger)
        await self._writer.submit(batch)
        await batch.written  # the snapshot is stored before the route lock is released
        self._ledger_behind.discard((cluster, key))

    async def _ledger_for_cache(
        self, cluster: str, key: InformerKey, objects: list[dict[str, object]]
    ) -> list[LedgerChange]:
        scope = key.scope
        await self._writer.flush()
        known = await self._store.load_ledger(cluster, scope)
        changes: list[LedgerChange] = []
        seen: set[str] = set()
        for obj in objects:
            metadata = obj.get("metadata")
            assert isinstance(metadata, dict)
            uid = str(metadata.get("uid") or "")
            seen.add(uid)
            entry = LedgerEntry(
                namespace=str(metadata.get("namespace") or ""),
                name=str(metadata.get("name") or ""),
                resource_version=str(metadata.get("resourceVersion") or ""),
                content_hash=content_hash(obj),
            )
            if known.get(uid) != entry:
                changes.append(LedgerChange(cluster, scope, uid, entry))
        changes.extend(LedgerChange(cluster, scope, uid, None) for uid in known if uid not in seen)
        return changes

    # -- status and operations ------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._subscriptions)

    def status(self, name: str) -> SubscriptionStatus:
        subscription = self._get(name)
        return subscription.lane.status(
            cel_errors=subscription.matcher.cel_errors, last_cel_error=subscription.matcher.last_cel_error
        )

    async def test(self, name: str) -> PingResult:
        """Send one signed ping to the subscription's sink, in its format (`encode_ping`)."""
        spec = self._get(name).spec
        ping_id = str(uuid.uuid4())
        request = encode_ping(name, ping_id, time.time(), spec.format, batch=spec.batching is not None)
        body = request.body
        headers = {**request.headers, **spec.sink.headers}
        secrets = spec.sink.signing_secrets(time.time())
        if secrets:
            headers.update(signature_headers(secrets, ping_id, body))
        result = await self._client.post(spec.sink.url, body, headers, spec.sink.timeout, tls=spec.sink.tls)
        return PingResult(
            ok=result.outcome is Outcome.DELIVERED,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )

    async def resync(self, name: str) -> None:
        """Queue an ADDED (with ids of their own) for every object the subscription's view holds
        now, behind what is already queued: for a recipient that lost its own state and rebuilds
        it. Objects of clusters still listing follow when their list completes."""
        subscription = self._get(name)
        async with self._route_lock:
            await self._snapshot(subscription)

    async def replay(self, name: str, ids: Sequence[int] | None) -> Replayed:
        """Put dead letters (all, or the given ids) back in line, but for those a newer event
        of their object superseded (dropped: see `Store.replay`)."""
        subscription = self._get(name)
        # Under the writer's lock: a commit between the replay's and `replayed` would put rows
        # with later ids in the lane first, and the lane reads the store only past those. It
        # also keeps the acknowledgements that mark dead letters superseded from landing
        # between the replay's read and its write.
        async with self._store_lock:
            replayed = await self._store.replay(name, ids)
            subscription.lane.replayed(replayed)
        return replayed

    async def dead_letters(self, name: str, *, after_id: int = 0, limit: int = 100) -> list[DeliveryRow]:
        self._get(name)
        return await self._store.dead_letters(name, after_id=after_id, limit=limit)

    async def _acknowledge_loop(self) -> None:
        """Write acknowledgements that no outbox write took along.

        While routed batches wait for the writer, its next commit takes them: a commit of their
        own would cost an fsync and hold the store lock the writer waits for (measured in the
        batched end-to-end benchmark: 85 acknowledgement commits took 1.9 s of the writer's
        5.4 s). Once the writer is idle they are written within `ACK_PAUSE`.
        """
        while True:
            await self._acknowledgements.ready.wait()
            await asyncio.sleep(ACK_PAUSE)
            if self._writer.queued:
                await self._writer.wait_idle()  # its commits take them along meanwhile
                continue
            async with self._store_lock:
                try:
                    await self._write_acknowledgements()
                except StoreError as error:
                    log.warning("cannot acknowledge deliveries yet: %s", error)
                    await asyncio.sleep(1.0)

    async def _write_acknowledgements(self) -> None:
        """Write what is pending; the caller holds the store lock."""
        taken = self._acknowledgements.take()
        if not taken:
            return
        try:
            await self._store.delivered_many(taken.ids, superseding=taken.superseding)
        except BaseException:
            self._acknowledgements.back(taken)  # not known to be written: the next write has them
            raise

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            purged = await self._store.purge_delivered_events()
            if purged:
                log.debug("purged %d delivered events", purged)


def _learn_resource(subscription: _Subscription, key: InformerKey) -> None:
    """Let the subscription's matcher route events of `key`'s resource, as resolved there."""
    if key.qualified_resource not in subscription.resources:
        subscription.resources.add(key.qualified_resource)
        subscription.matcher = SubscriptionMatcher(subscription.spec, frozenset(subscription.resources))


def _stored(event: Event) -> Event:
    """An event as queued: without the decoded trees (see `Event.without_decoded`)."""
    return event.without_decoded()


def _stored_redacted(event: Event) -> Event:
    """`_stored`, with Secret values hidden (see `DeliveryEngine._route`)."""
    return redact_secret_event(event).without_decoded()


def _retyped(event: Event, event_type: EventType) -> Event:
    """`event` as a subscription whose CEL filter it entered (ADDED, without the state before,
    which did not match) or left (DELETED) hears it: a new event with its own id."""
    if event_type is EventType.ADDED:
        return event.replace(type=event_type, ulid=None, old_object=None)
    return event.replace(type=event_type, ulid=None)


@dataclass(frozen=True, slots=True)
class _ObservedState:
    """The ledger change an informer event makes (a `LedgerItem`), hashed only if written."""

    cluster: str
    scope: str
    event: Event

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.cluster, self.scope, self.event.uid)

    def change(self) -> LedgerChange:
        event = self.event
        if event.type is EventType.DELETED:
            return LedgerChange(self.cluster, self.scope, event.uid, None)
        entry = LedgerEntry(
            namespace=event.namespace or "",
            name=event.name,
            resource_version=event.resource_version,
            content_hash=content_hash(event.object),
        )
        return LedgerChange(self.cluster, self.scope, event.uid, entry)
