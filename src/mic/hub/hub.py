"""The `Hub`: many clusters watched as one. The library's public face."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mic.events import Event, EventType
from mic.hub.cluster import ClusterRuntime, InformerKey, KnownStateLoader
from mic.hub.spec import WatchSpec
from mic.hub.status import ClusterStatus
from mic.hub.stream import SLOW_CONSUMER_SECONDS, EventStream
from mic.kube.connection import ClusterConnection
from mic.kube.errors import AmbiguousResourceError, KubeError, UnknownResourceError
from mic.kube.informer import Informer, InformerOptions, KnownObject
from mic.kube.resources import ResourceInfo
from mic.kube.selectors import LabelSelector
from mic.kube.tasks import OwnedTasks

log = logging.getLogger(__name__)

KubeObject = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]
BatchListener = Callable[[str, InformerKey, list[Event]], Awaitable[None]]
LabelListener = Callable[[str, Mapping[str, str], Mapping[str, str], Callable[[], None]], Awaitable[None]]
"""`listener(cluster, old_labels, new_labels, apply)`: see `Hub.add_label_listener`."""


class UnknownClusterError(KubeError, LookupError):
    """No cluster of that name has been added to the hub."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no cluster named {name!r}")
        self.name = name


class DuplicateClusterError(KubeError, ValueError):
    """A cluster of that name is already in the hub."""

    def __init__(self, name: str) -> None:
        super().__init__(f"cluster {name!r} is already added")
        self.name = name


class NotWatchedError(KubeError, LookupError):
    """A cache query on a resource that no informer in that cluster covers."""


class NotDiscoveredError(NotWatchedError):
    """A cache query on a cluster that has not answered discovery yet (just added, or
    unreachable since it was): what it serves, and so what a resource name means there, is
    not known, and no cache of it can answer."""


class NotSyncedError(KubeError):
    """The cache of a resource exists but its first list has not completed: it holds only part
    of the cluster's objects (see `Hub.list_all`)."""


class ClusterObjects(list[tuple[str, KubeObject]]):
    """What `Hub.list_all` found: (cluster, object) pairs, clusters in name order.

    A list, as `list_all` always returned, that also says which clusters answered
    (`answered`, in name order, those without objects included) and which could not and why
    (`skipped`: cluster name → the error `Hub.list` raises for it, or `NotSyncedError`). A
    controller that reconciles from the result must treat a skipped cluster's objects as
    unknown, not as gone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.answered: list[str] = []
        self.skipped: dict[str, KubeError] = {}

    @property
    def complete(self) -> bool:
        """Whether every cluster asked answered."""
        return not self.skipped


class Hub:
    """Watch resources in many clusters and consume their changes as one stream.

    ```
    async with Hub() as hub:
        await hub.add_cluster("eu-1", from_kubeconfig_file("~/.kube/eu-1"))
        async with await hub.events("ingresses") as stream:
            async for event in stream:
                print(event.cluster, event.type, event.key)
    ```

    Objects handed out (`Event.object`, `get`, `list`) are the cache's own: read them, never
    change them (a copy is yours to change: `copy.deepcopy`).

    One informer per (cluster, resource, namespaces, label selector) serves every consumer
    that asks for it. Clusters can be added and removed while it runs; a watch declared for
    all clusters extends to clusters added later. A dead or slow cluster never delays the
    others: each has its own tasks. A slow consumer holds back the informers whose streams it
    reads, and with them every consumer of those (cluster, resource) pairs, for at most
    `slow_consumer_seconds`: then its stream is closed (`StreamOverflowError`). Handlers
    (`on`) are the application's own code and hold them back for as long as they take.
    """

    def __init__(
        self,
        *,
        informer_options: InformerOptions | None = None,
        discovery_refresh_interval: float = 30.0,
        stream_max_batches: int = 1024,
        slow_consumer_seconds: float | None = SLOW_CONSUMER_SECONDS,
        known_state: KnownStateLoader | None = None,
    ) -> None:
        """`known_state(cluster, key)` returns what a caller last saw of an informer's objects
        (see `KnownObject`); it is asked each time an informer starts."""
        self._informer_options = informer_options or InformerOptions()
        self._discovery_refresh_interval = discovery_refresh_interval
        self._stream_max_batches = stream_max_batches
        self._slow_consumer_seconds = slow_consumer_seconds
        self.known_state = known_state
        self._listeners: list[BatchListener] = []
        self._label_listeners: list[LabelListener] = []
        self._clusters: dict[str, ClusterRuntime] = {}
        self._specs: dict[WatchSpec, int] = {}  # uses of each spec: watch() calls, streams, handlers
        self._watched: dict[WatchSpec, int] = {}  # of those, the watch() calls
        self._streams: dict[WatchSpec, list[EventStream]] = {}
        self._handlers: list[tuple[_Registration, Handler]] = []
        self._tasks = OwnedTasks("hub")
        self._handlers_started = False
        self._closed = False
        self.events_observed: Counter[tuple[str, str]] = Counter()
        """Changes reported by informers, per (cluster, qualified resource name), for metrics."""

    async def __aenter__(self) -> Hub:
        self._start_handlers()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Hub is closed; make a new one")

    async def close(self) -> None:
        """Stop every informer and handler, close every stream and connection."""
        if self._closed:
            return
        self._closed = True
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.close()
        await self._tasks.close()
        for runtime in list(self._clusters.values()):
            await runtime.close()
        self._clusters.clear()

    # -- clusters -------------------------------------------------------------------------

    async def add_cluster(
        self, name: str, connection: ClusterConnection, *, labels: dict[str, str] | None = None
    ) -> None:
        """Start watching a cluster; returns at once (the cluster connects in the background).

        Every watch declared for all clusters, or naming this one, applies to it. Handlers
        (`on`) start with the first cluster if the hub was not entered with `async with`.
        """
        self._check_open()
        if name in self._clusters:
            raise DuplicateClusterError(name)
        self._start_handlers()
        runtime = ClusterRuntime(
            name,
            connection,
            labels=labels or {},
            sink=self._dispatch,
            informer_options=self._informer_options,
            discovery_refresh_interval=self._discovery_refresh_interval,
            known_state=self._load_known_state,
            joined=self._spec_joined,
        )
        self._clusters[name] = runtime
        runtime.start()
        for spec in self._specs:
            if spec.applies_to(name):
                await runtime.want(spec)

    async def remove_cluster(self, name: str) -> None:
        """Stop watching a cluster and free its caches.

        Streams and handlers get no DELETED for its objects (they were not deleted; a cluster
        removed by mistake, or re-added with new credentials, must not look empty): a consumer
        keeping state per cluster drops that cluster's itself, once this returns. From then on
        no stream yields an event of the cluster: what was queued and not yet read is
        discarded (a consumer that dropped the cluster's state must not see it come back).
        """
        runtime = self._clusters.pop(name, None)
        if runtime is None:
            raise UnknownClusterError(name)
        await runtime.close()
        for streams in self._streams.values():
            for stream in streams:
                stream.discard_cluster(name)

    def add_listener(self, listener: BatchListener) -> None:
        """Call `listener(cluster, key, events)` with every batch any informer reports.

        The informer waits for the listener, so a listener that persists events (the delivery
        outbox) gets them in order and holds the informer back until they are safe. Listeners
        run before streams and handlers.
        """
        self._listeners.append(listener)

    async def _load_known_state(self, cluster: str, key: InformerKey) -> dict[str, KnownObject] | None:
        return await self.known_state(cluster, key) if self.known_state is not None else None

    def add_label_listener(self, listener: LabelListener) -> None:
        """Call `listener(cluster, old_labels, new_labels, apply)` when a cluster's labels change.

        Labels select clusters for consumers (the delivery engine's cluster selectors), so a
        change can add a cluster to a consumer's view or take it away. `apply()` sets the new
        labels: a listener calls it where its own view changes (the engine, under the lock it
        routes batches with), so no batch is judged by a mix of old and new labels.
        """
        self._label_listeners.append(listener)

    async def set_cluster_labels(self, name: str, labels: Mapping[str, str]) -> None:
        """Replace a cluster's labels; nothing restarts (labels only select, they never connect).

        Streams and handlers with a `cluster_selector` judge the cluster's next changes by the
        new labels; one the cluster enters gets its cached objects as ADDED, one it leaves gets
        them as DELETED (see `events`).
        """
        runtime = self._cluster(name)
        old, new = dict(runtime.labels), dict(labels)
        if old == new:
            return
        applied = False

        def apply() -> None:
            nonlocal applied
            if applied:
                return
            applied = True
            previous, runtime.labels = runtime.labels, dict(new)
            self._relabelled(runtime, previous)

        for listener in self._label_listeners:
            await listener(name, old, new, apply)
        apply()

    def _relabelled(self, runtime: ClusterRuntime, previous: Mapping[str, str]) -> None:
        """Streams whose cluster selector `runtime` entered get its cached objects as ADDED,
        those it left get them as DELETED, as a Kubernetes watch reports an object entering or
        leaving its label selector (and as the delivery engine treats subscriptions' cluster
        selectors): a consumer that keeps state from its stream stays right. Runs in the same
        step as the labels change, so no batch is judged by one and snapshotted by the other."""
        for streams in self._streams.values():
            for stream in streams:
                if stream.cluster_selector is None or stream.closed:
                    continue
                if not stream.spec.applies_to(runtime.name):
                    continue
                now = stream.selects(runtime.labels)
                if stream.selects(previous) == now:
                    continue
                informer = runtime.informer_for(stream.spec)
                type_ = EventType.ADDED if now else EventType.DELETED
                events = (
                    [informer.make_event(type_, obj) for _, obj in informer.cache.items()]
                    if informer is not None
                    else []
                )
                stream.change_view(runtime.name, events)

    def cluster_names(self, *, selector: str | LabelSelector | None = None) -> list[str]:
        """The clusters' names in order; with `selector` (a label selector over cluster labels,
        as a subscription's `clusterSelector`), those whose labels match it now."""
        wanted = _cluster_selector(selector)
        return sorted(
            name
            for name, runtime in self._clusters.items()
            if wanted is None or wanted.matches(runtime.labels)
        )

    def clusters_serving(self, resource: str) -> tuple[list[str], list[str]]:
        """(the clusters whose resources are known, those of them that serve `resource`), from
        what discovery found, without asking any cluster: to tell a mistyped name early."""
        known, serving = [], []
        for name, runtime in sorted(self._clusters.items()):
            if runtime.catalog is None:
                continue
            known.append(name)
            try:
                runtime.catalog.resolve(resource)
            except UnknownResourceError:
                continue
            except KubeError:
                pass  # ambiguous: served, under more than one name (its cluster's status says so)
            serving.append(name)
        return known, serving

    def status(self, name: str) -> ClusterStatus:
        return self._cluster(name).status()

    def statuses(self) -> list[ClusterStatus]:
        return [self._clusters[name].status() for name in sorted(self._clusters)]

    def _cluster(self, name: str) -> ClusterRuntime:
        try:
            return self._clusters[name]
        except KeyError:
            raise UnknownClusterError(name) from None

    def cluster_labels(self, name: str) -> dict[str, str]:
        return dict(self._cluster(name).labels)

    def specs_for(self, cluster: str, key: InformerKey) -> frozenset[WatchSpec]:
        """The watch specs an informer serves in a cluster (empty if the cluster is gone)."""
        runtime = self._clusters.get(cluster)
        return runtime.specs_for(key) if runtime is not None else frozenset()

    def informer(self, cluster: str, spec: WatchSpec) -> Informer | None:
        """The informer serving `spec` in `cluster`, once its resource is resolved there."""
        runtime = self._clusters.get(cluster)
        return runtime.informer_for(spec) if runtime is not None else None

    def informer_key(self, cluster: str, spec: WatchSpec) -> InformerKey | None:
        runtime = self._clusters.get(cluster)
        return runtime.key_for(spec) if runtime is not None else None

    async def resolve(self, cluster: str, resource: str) -> ResourceInfo:
        """What `resource` (as kubectl would accept it) means in `cluster`."""
        return await self._cluster(cluster).resolve(resource)

    # -- watches --------------------------------------------------------------------------

    async def watch(
        self,
        resource: str,
        *,
        clusters: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        label_selector: str | LabelSelector | None = None,
    ) -> WatchSpec:
        """Declare interest in a resource so its informers run and its caches fill.

        Returns the spec to pass to `unwatch`. Calls with equal arguments share informers;
        each call must be matched by one `unwatch`.
        """
        self._check_open()
        spec = WatchSpec.build(
            resource, clusters=clusters, namespaces=namespaces, label_selector=label_selector
        )
        self._watched[spec] = self._watched.get(spec, 0) + 1
        await self._add_spec(spec)
        return spec

    async def unwatch(self, spec: WatchSpec) -> None:
        """Release one `watch` of `spec` (the informers stop once nothing uses it).

        Raises `ValueError` for more `unwatch` than `watch` calls: the extra one would release
        the watch a stream or handler of the same spec still reads.
        """
        watched = self._watched.get(spec, 0)
        if not watched:
            raise ValueError(f"{spec.resource} is not watched with this spec (more unwatch() than watch()?)")
        if watched > 1:
            self._watched[spec] = watched - 1
        else:
            del self._watched[spec]
        await self._release(spec)

    async def _release(self, spec: WatchSpec) -> None:
        """One use of `spec` ended (an `unwatch`, a stream closed); the last stops its informers."""
        count = self._specs.get(spec, 0) - 1
        if count > 0:
            self._specs[spec] = count
            return
        self._specs.pop(spec, None)
        for name, runtime in list(self._clusters.items()):
            if spec.applies_to(name):
                await runtime.unwant(spec)

    async def _add_spec(self, spec: WatchSpec) -> None:
        self._specs[spec] = self._specs.get(spec, 0) + 1
        if self._specs[spec] > 1:
            return
        for name, runtime in list(self._clusters.items()):
            if spec.applies_to(name):
                await runtime.want(spec)

    async def events(
        self,
        resource: str,
        *,
        clusters: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        label_selector: str | LabelSelector | None = None,
        types: Iterable[EventType | str] | None = None,
        max_wait: float | Literal["hub"] | None = "hub",
        cluster_selector: str | LabelSelector | None = None,
    ) -> EventStream:
        """A stream of the changes of `resource`: the current objects first (ADDED), then changes.

        Use it with `async with` (or call `close()`) so the watch is released:

        ```
        async with await hub.events("services", namespaces=["shop"]) as stream:
            async for event in stream: ...
        ```
        A consumer that falls `stream_max_batches` behind holds the informers back for at most
        `max_wait` seconds (the hub's `slow_consumer_seconds` by default; None: no limit), then
        its stream ends with `StreamOverflowError`.

        `cluster_selector` (a label selector over cluster labels, `"env=prod,region in (eu,us)"`,
        the syntax of a subscription's `clusterSelector`) keeps only the events of clusters
        whose labels match it when the change reaches the hub; with `clusters` both must hold. The
        resource is still watched in every cluster of `clusters` (all by default), so that
        `set_cluster_labels` takes effect at once: a cluster relabelled into the selector sends
        its cached objects as ADDED, one relabelled out sends them as DELETED (as a Kubernetes
        watch does for an object entering or leaving its label selector), then only the
        changes its new labels select.
        """
        self._check_open()
        spec = WatchSpec.build(
            resource, clusters=clusters, namespaces=namespaces, label_selector=label_selector
        )
        wanted_types = frozenset(EventType(t) for t in types) if types is not None else None
        stream = EventStream(
            spec,
            types=wanted_types,
            cluster_selector=_cluster_selector(cluster_selector),
            max_batches=self._stream_max_batches,
            max_wait=self._slow_consumer_seconds if max_wait == "hub" else max_wait,
            on_close=self._stream_closed,
        )
        self._streams.setdefault(spec, []).append(stream)
        self._replay_cached(stream)
        try:
            await self._add_spec(spec)
        except BaseException:
            stream.close()  # nobody will: its caller never gets it (cancelled); releases the watch
            raise
        return stream

    def _replay_cached(self, stream: EventStream) -> None:
        """A consumer that joins a running informer first gets its current objects as ADDED.

        This covers clusters where the stream's spec already uses an informer; where the spec
        is new, it joins an informer later (in `ClusterRuntime.want`, or once discovery
        resolves it), and `_spec_joined` replays then.
        """
        for name, runtime in self._clusters.items():
            if not stream.spec.applies_to(name) or not stream.selects(runtime.labels):
                continue
            informer = runtime.informer_for(stream.spec)
            if informer is None or not informer.populated:
                continue  # its first list is still to come, and will be streamed as it arrives
            self._replay(informer, [stream])

    def _spec_joined(self, runtime: ClusterRuntime, spec: WatchSpec, informer: Informer) -> None:
        """`spec` now shares an informer that already holds objects (another spelling of the
        resource, another cluster list, a CRD resolved later): its streams get them first."""
        streams = self._streams.get(spec, ())
        self._replay(informer, [stream for stream in streams if stream.selects(runtime.labels)])

    @staticmethod
    def _replay(informer: Informer, streams: Iterable[EventStream]) -> None:
        streams = [stream for stream in streams if not stream.closed]
        if not streams:
            return
        snapshot = [informer.make_event(EventType.ADDED, obj) for _, obj in informer.cache.items()]
        if snapshot:
            for stream in streams:
                stream.put_nowait(snapshot)

    def _stream_closed(self, stream: EventStream) -> None:
        streams = self._streams.get(stream.spec, [])
        if stream in streams:
            streams.remove(stream)
        if not streams:
            self._streams.pop(stream.spec, None)
        if not self._closed:
            self._tasks.start("unwatch", self._release(stream.spec))

    def on(
        self,
        resource: str,
        *,
        clusters: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        label_selector: str | LabelSelector | None = None,
        types: Iterable[EventType | str] | None = None,
        cluster_selector: str | LabelSelector | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register an async handler called for each event, in order, once the hub runs.

        ```
        @hub.on("ingresses", types=["ADDED", "MODIFIED"], cluster_selector="env=prod")
        async def route(event: Event) -> None: ...
        ```
        A handler that raises is logged and called again for the next event; it never stops
        the hub. `cluster_selector` selects clusters by their labels as in `events`.
        """
        registration = _Registration(
            WatchSpec.build(
                resource, clusters=clusters, namespaces=namespaces, label_selector=label_selector
            ),
            frozenset(EventType(t) for t in types) if types is not None else None,
            _cluster_selector(cluster_selector),
        )

        def register(handler: Handler) -> Handler:
            self._handlers.append((registration, handler))
            if self._handlers_started:
                self._tasks.start(f"handler {_name(handler)}", self._run_handler(registration, handler))
            return handler

        return register

    def _start_handlers(self) -> None:
        if self._handlers_started:
            return
        self._handlers_started = True
        for registration, handler in self._handlers:
            self._tasks.start(f"handler {_name(handler)}", self._run_handler(registration, handler))

    async def _run_handler(self, registration: _Registration, handler: Handler) -> None:
        spec = registration.spec
        stream = await self.events(
            spec.resource,
            clusters=spec.clusters,
            namespaces=spec.namespaces,
            label_selector=spec.label_selector or None,
            types=registration.types,
            max_wait=None,  # the application's own code: back-pressure, never a lost event
            cluster_selector=registration.cluster_selector,
        )
        async with stream:
            async for event in stream:
                try:
                    await handler(event)
                except Exception:
                    log.exception(
                        "handler %s failed on %s %s/%s",
                        _name(handler),
                        event.type,
                        event.cluster,
                        event.key,
                    )

    async def _dispatch(self, runtime: ClusterRuntime, key: InformerKey, events: list[Event]) -> None:
        # The streams are taken before the first await: the cache holds this batch already, so
        # a stream opened while a listener or a slow stream is awaited started from a snapshot
        # with it, and must not get it a second time. For the same reason each stream's cluster
        # selector is judged now, and a relabel meanwhile (whose snapshot holds the batch too)
        # makes `put` drop it (the epoch).
        name, labels = runtime.name, runtime.labels
        streams = [
            (stream, (name, stream.view_epoch(name)) if stream.cluster_selector is not None else None)
            for spec in runtime.specs_for(key)
            for stream in self._streams.get(spec, ())
            if stream.selects(labels)
        ]
        self.events_observed[(name, key.qualified_resource)] += len(events)
        for listener in self._listeners:
            await listener(name, key, events)
        for stream, epoch in streams:
            await stream.put(events, epoch=epoch)

    # -- readiness and cache queries ------------------------------------------------------

    async def wait_synced(
        self, *, clusters: Iterable[str] | None = None, timeout: float | None = None
    ) -> bool:
        """Wait until every informer in `clusters` (all by default) has completed its first list.

        A watched resource that a cluster does not have (a typo, a CRD installed elsewhere)
        starts no informer there, so it does not hold this back: `status(name).unresolved`
        says which, and why (the cluster is `degraded`)."""
        names = list(clusters) if clusters is not None else list(self._clusters)

        async def one(name: str) -> bool:
            runtime = self._cluster(name)
            while True:
                informers = runtime.informers()
                if all(informer.synced for informer in informers) and runtime.catalog is not None:
                    return True
                await asyncio.sleep(0.02)

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(one(name) for name in names))
        except TimeoutError:
            return False
        return True

    def _informer(self, cluster: str, resource: str, namespace: str | None, label_selector: str) -> Any:
        runtime = self._cluster(cluster)
        if runtime.catalog is None:
            raise NotDiscoveredError(f"cluster {cluster!r} has not been discovered yet")
        info = runtime.catalog.resolve(resource)
        informer = runtime.find_informer(info, namespace, label_selector)
        if informer is None:
            where = f"{info.qualified_name} in cluster {cluster!r}" + (
                f" for namespace {namespace!r}" if namespace else ""
            )
            narrower = runtime.informer_scopes(info)
            if narrower:
                # Watched, but a cache filtered by labels or namespaces cannot answer for
                # objects outside its filter: say what it can answer instead of "not watched".
                raise NotWatchedError(
                    f"no cache holds every object of {where}: it is watched only with"
                    f" {'; '.join(narrower)}; query within that scope (the same label selector,"
                    " one of those namespaces) or watch it without those filters"
                )
            raise NotWatchedError(f"{where} is not watched; call Hub.watch() first")
        return informer

    def get(self, cluster: str, resource: str, name: str, namespace: str | None = None) -> KubeObject | None:
        """One cached object, or None. Raises NotWatchedError when no informer covers it, and
        ValueError for a namespaced resource without `namespace` (the object cannot be named)."""
        informer = self._informer(cluster, resource, namespace, "")
        if namespace is None and informer.resource.namespaced:
            raise ValueError(f"{informer.resource.qualified_name} is namespaced: pass namespace=")
        result: KubeObject | None = informer.cache.get(namespace, name)
        return result

    def list(
        self,
        cluster: str,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
    ) -> list[KubeObject]:
        """Cached objects of one cluster, filtered by namespace and label selector."""
        selector = LabelSelector.parse(label_selector) if isinstance(label_selector, str) else label_selector
        informer = self._informer_for_list(cluster, resource, namespace, selector)
        result: list[KubeObject] = informer.cache.list(namespace, selector)
        return result

    def _informer_for_list(
        self, cluster: str, resource: str, namespace: str | None, selector: LabelSelector | None
    ) -> Informer:
        """The informer whose cache answers `list`: one watched with this very selector, or one
        without a selector (the query filters its objects)."""
        canonical = str(selector) if selector is not None else ""
        try:
            informer: Informer = self._informer(cluster, resource, namespace, canonical)
        except NotWatchedError:
            if not canonical:
                raise
            informer = self._informer(cluster, resource, namespace, "")
        return informer

    def list_all(
        self,
        resource: str,
        *,
        clusters: Iterable[str] | None = None,
        cluster_selector: str | LabelSelector | None = None,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        strict: bool = False,
    ) -> ClusterObjects:
        """Cached objects across clusters as (cluster, object) pairs, clusters in name order.

        `clusters` (all by default) and `cluster_selector` (over cluster labels, as in
        `events`) choose the clusters asked. A controller listing "every ingress" wants the
        clusters that can answer rather than nothing because one cannot, so a cluster whose
        cache cannot answer is skipped and named, with the reason, in the result's `skipped`
        (`answered` names the others; both are attributes of the list returned):

        - not discovered yet (`NotDiscoveredError`: just added, or unreachable since);
        - not serving the resource (`UnknownResourceError`, e.g. a CRD installed elsewhere),
          or serving more than one resource by that name (`AmbiguousResourceError`);
        - not watching it there, in this scope (`NotWatchedError`);
        - its cache still in its first list (`NotSyncedError`): part of the objects only,
          which a caller would take for the whole (`list` hands them out as they are).

        A cluster that became unreachable after its first list answers with its objects as
        last seen (`status(name)` says so). Two failures are the caller's mistakes and still
        raise, as waiting cannot fix them: a cluster name the hub does not know
        (`UnknownClusterError`), and a resource that none of the clusters asked watches
        while one of them serves it (`NotWatchedError`: call `watch` first, or query within
        its namespaces and selector). `strict=True` keeps the behaviour of older versions:
        the first cluster that cannot answer raises as `list` does, and caches still in their
        first list answer with what they hold.
        """
        selector = LabelSelector.parse(label_selector) if isinstance(label_selector, str) else label_selector
        found = ClusterObjects()
        for name in self._chosen_clusters(clusters, cluster_selector):
            try:
                objects = self._list_for_all(name, resource, namespace, selector, strict=strict)
            except (NotWatchedError, NotSyncedError, UnknownResourceError, AmbiguousResourceError) as error:
                if strict:
                    raise
                found.skipped[name] = error
                continue
            found.answered.append(name)
            found.extend((name, obj) for obj in objects)
        unwatched = _watched_nowhere(found)
        if unwatched is not None:
            raise unwatched
        return found

    def _chosen_clusters(
        self, clusters: Iterable[str] | None, cluster_selector: str | LabelSelector | None
    ) -> builtins.list[str]:
        names = sorted(set(clusters)) if clusters is not None else sorted(self._clusters)
        wanted = _cluster_selector(cluster_selector)
        if wanted is None:
            return names
        return [name for name in names if wanted.matches(self._cluster(name).labels)]

    def _list_for_all(
        self,
        cluster: str,
        resource: str,
        namespace: str | None,
        selector: LabelSelector | None,
        *,
        strict: bool,
    ) -> builtins.list[KubeObject]:
        informer = self._informer_for_list(cluster, resource, namespace, selector)
        if not strict and not informer.synced:
            raise NotSyncedError(
                f"the cache of {informer.resource.qualified_name} in cluster {cluster!r} has not"
                " completed its first list yet"
            )
        result: builtins.list[KubeObject] = informer.cache.list(namespace, selector)
        return result


@dataclass(frozen=True)
class _Registration:
    """What a handler registered with `Hub.on` consumes."""

    spec: WatchSpec
    types: frozenset[EventType] | None
    cluster_selector: LabelSelector | None


def _cluster_selector(selector: str | LabelSelector | None) -> LabelSelector | None:
    """A selector over cluster labels, parsed (InvalidSelectorError if bad); None selects all."""
    parsed = LabelSelector.parse(selector) if isinstance(selector, str) else selector
    return None if parsed is None or parsed.is_empty else parsed


def _watched_nowhere(found: ClusterObjects) -> NotWatchedError | None:
    """The error `list_all` raises when no cluster asked has a cache of the resource and one
    that serves it says it is not watched: a missing `watch` (or a query outside its scope)
    that no wait fixes, so it must not pass for an empty result."""
    if found.answered or any(isinstance(error, NotSyncedError) for error in found.skipped.values()):
        return None
    return next(
        (
            error
            for error in found.skipped.values()
            if isinstance(error, NotWatchedError) and not isinstance(error, NotDiscoveredError)
        ),
        None,
    )


def _name(handler: Handler) -> str:
    """A handler's name for task names and logs: a `functools.partial` or a callable object
    has no `__name__`."""
    name = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None)
    return name if isinstance(name, str) else repr(handler)
