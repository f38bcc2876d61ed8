"""One cluster inside the hub: its client, discovery, informers and health."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mic.events import Event
from mic.hub.reasons import reason_for, reason_for_informer
from mic.hub.spec import WatchSpec
from mic.hub.status import ClusterReason, ClusterState, ClusterStatus, ResourceStatus
from mic.kube.backoff import Backoff
from mic.kube.client import KubeClient
from mic.kube.connection import ClusterConnection
from mic.kube.discover import discover
from mic.kube.discovery import ResourceCatalog
from mic.kube.errors import ApiError, ConnectionFailure, KubeError
from mic.kube.exec_plugin import ExecPluginError
from mic.kube.informer import Informer, InformerOptions, InformerState, KnownObject
from mic.kube.resources import ResourceInfo
from mic.kube.tasks import OwnedTasks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InformerKey:
    """What makes two watches shareable: same resource, namespaces and selector."""

    group: str
    version: str
    resource: str
    namespaces: frozenset[str] | None
    label_selector: str

    @property
    def qualified_resource(self) -> str:
        """`ingresses.networking.k8s.io`, or `pods` for the core group."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def scope(self) -> str:
        """A stable text naming what this informer covers, e.g. `networking.k8s.io/ingresses|*|app=web`.

        Durable state about an informer's objects (the delivery ledger) is kept per scope: an
        object that leaves a selector is deleted for that scope only. The version is left out
        on purpose: the same objects are served under every version.
        """
        namespaces = ",".join(sorted(self.namespaces)) if self.namespaces is not None else "*"
        return f"{self.group}/{self.resource}|{namespaces}|{self.label_selector}"


@dataclass(frozen=True)
class Unresolved:
    """Why a wanted spec has no informer (yet): in words, and as the reason the status shows."""

    why: str
    reason: ClusterReason


KnownStateLoader = Callable[[str, InformerKey], Awaitable[dict[str, KnownObject] | None]]
BatchSink = Callable[["ClusterRuntime", InformerKey, list[Event]], Awaitable[None]]
JoinHook = Callable[["ClusterRuntime", WatchSpec, Informer], None]


class ClusterRuntime:
    """Connects to one cluster, discovers its resources, runs the informers asked of it.

    Everything here is owned by `tasks`; a cluster that is down, slow or forbidden only ever
    affects its own state, never the hub or other clusters.
    """

    def __init__(
        self,
        name: str,
        connection: ClusterConnection,
        *,
        labels: dict[str, str],
        sink: BatchSink,
        informer_options: InformerOptions,
        discovery_refresh_interval: float,
        known_state: KnownStateLoader | None = None,
        joined: JoinHook | None = None,
    ) -> None:
        """`joined(runtime, spec, informer)` is called when `spec` starts sharing an informer
        that already holds objects (so the hub can hand them to the spec's new consumers); it
        runs in the same step as the spec joins, so no change falls between the two."""
        self.name = name
        self.labels = dict(labels)
        self.connection = connection
        self.client = KubeClient(connection)
        self.catalog: ResourceCatalog | None = None
        self.server_version: str | None = None
        self.last_error: str | None = None
        self._discovery_state = ClusterState.CONNECTING
        self._discovery_reason = ClusterReason.CONNECTING
        self._sink = sink
        self._informer_options = informer_options
        self._refresh_interval = discovery_refresh_interval
        self._known_state = known_state
        self._joined = joined
        self._closed = False
        self._wants: dict[WatchSpec, int] = {}
        self._resolved: dict[WatchSpec, InformerKey] = {}
        self._unresolved: dict[WatchSpec, Unresolved] = {}
        self._informers: dict[InformerKey, Informer] = {}
        self._users: dict[InformerKey, set[WatchSpec]] = {}
        self._discovered = asyncio.Event()
        self._wants_changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_discovery = 0.0
        self.tasks = OwnedTasks(f"cluster {name}")

    def start(self) -> None:
        self.tasks.start("connect", self._connect_loop())

    async def close(self) -> None:
        # Marked first: a `want` or a discovery pass suspended in the middle of starting an
        # informer (loading its known state) must not start it once it resumes.
        self._closed = True
        await self.tasks.close()
        for informer in list(self._informers.values()):
            await informer.stop()
        self._informers.clear()
        await self.client.close()

    # -- discovery ------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        """Discover until it works, then keep discovery fresh while some name is unresolved."""
        backoff = Backoff(initial=0.5, maximum=30.0)
        while True:
            try:
                await self._guarded_rediscover()
                backoff.reset()
            except ApiError as error:
                self._discovery_failed(error, error.status)
                auth_failed = error.status in (401, 403)
                delay = self._informer_options.auth_retry_interval if auth_failed else backoff.next_delay()
                await asyncio.sleep(max(delay, error.retry_after or 0.0))
                continue
            except ExecPluginError as error:
                # The credential plugin failed (a login expired, the plugin is gone): the
                # cluster is not unreachable, MIC has no credential for it.
                self._discovery_failed(error, 401)
                await asyncio.sleep(max(self._informer_options.auth_retry_interval, backoff.next_delay()))
                continue
            except (ConnectionFailure, KubeError) as error:
                self._discovery_failed(error, None)
                await asyncio.sleep(backoff.next_delay())
                continue
            await self._wait_for_rediscovery()

    async def _wait_for_rediscovery(self) -> None:
        """Return when discovery should run again: the wants changed, or every refresh interval
        while a requested name is unresolved (a CRD not created yet) or an informer finds its
        resource gone (a CRD deleted, or re-created serving other versions)."""
        while True:
            self._wants_changed.clear()
            try:
                async with asyncio.timeout(self._refresh_interval):
                    await self._wants_changed.wait()
                return
            except TimeoutError:
                if self._unresolved or self._missing_resources():
                    return
                if not self._informers and not await self._still_reachable():
                    return  # nothing watched shows it: discover again until it answers

    async def _still_reachable(self) -> bool:
        """Ask a cluster nothing is watched in whether it still answers (`/version`).

        Informers report a cluster going away or revoking MIC's credentials; without any,
        its status would say "ready" for ever after the first discovery.
        """
        try:
            await self.client.server_version()
        except ApiError as error:
            self._discovery_failed(error, error.status)
            return False
        except KubeError as error:
            self._discovery_failed(error, 401 if isinstance(error, ExecPluginError) else None)
            return False
        except Exception as error:
            log.error("cluster %s: unexpected error asking for /version", self.name, exc_info=error)
            failure = ConnectionFailure(f"unexpected error ({type(error).__name__}); see the MIC log")
            failure.__cause__ = error  # so its reason is `Error`, not a network failure
            self._discovery_failed(failure, None)
            return False
        return True

    def _missing_resources(self) -> bool:
        return any(informer.status.state is InformerState.NOT_FOUND for informer in self._informers.values())

    def _discovery_failed(self, error: Exception, status: int | None) -> None:
        self.last_error = str(error)
        self._discovery_reason = reason_for(error)
        if status in (401, 403):
            self._discovery_state = ClusterState.UNAUTHORIZED
        else:
            self._discovery_state = ClusterState.UNREACHABLE
        log.warning("cluster %s: discovery failed: %s", self.name, error)

    async def _guarded_rediscover(self) -> None:
        """`rediscover`, with an unexpected error turned into a ConnectionFailure.

        Anything else (a bug, or a connection that slipped past validation and that aiohttp
        refuses to use) would otherwise end the connect task silently, leaving the cluster
        "connecting" forever and a query on it answered with a 500. As a ConnectionFailure it
        is reported in the status and retried like any failed attempt. The message names only
        the error's type: its text is unknown and could quote a credential; the log has it all.
        """
        try:
            await self.rediscover()
        except KubeError:
            raise
        except Exception as error:
            log.error("cluster %s: unexpected error during discovery", self.name, exc_info=error)
            raise ConnectionFailure(
                f"unexpected error during discovery ({type(error).__name__}); see the MIC log"
            ) from error

    async def rediscover(self) -> None:
        """Fetch the server version and resource catalog, then start what can now be resolved."""
        version = await self.client.server_version()
        self.server_version = str(version.get("gitVersion") or "") or None
        catalog = await discover(self.client)
        if self._closed:
            return
        self.catalog = catalog
        self._last_discovery = time.monotonic()
        self._discovery_state = ClusterState.READY
        self._discovery_reason = ClusterReason.CONNECTED
        self.last_error = None
        self._discovered.set()
        await self._release_vanished(catalog)
        await self._apply_wants()

    async def _release_vanished(self, catalog: ResourceCatalog) -> None:
        """Let go of informers whose resource the server no longer serves in their version.

        A CRD deleted (or re-created serving other versions) leaves its informer answered 404
        forever; its specs go back to being resolved, so they follow the resource to its new
        version, or show that it is gone. A group version whose discovery failed this time
        (an aggregated API that is down) is not taken as gone.
        """
        async with self._lock:
            vanished = [
                spec
                for spec, key in self._resolved.items()
                if catalog.by_group_version_resource(key.group, key.version, key.resource) is None
                and not catalog.is_unavailable(key.group, key.version)
            ]
            for spec in vanished:
                key = self._resolved.pop(spec)
                log.info(
                    "cluster %s: %s/%s is no longer served; resolving %r again",
                    self.name,
                    key.qualified_resource,
                    key.version,
                    spec.resource,
                )
                # unresolved at once, so no status read shows it neither watched nor missing
                self._unresolved[spec] = Unresolved(
                    f"{key.qualified_resource}/{key.version} is no longer served",
                    ClusterReason.RESOURCE_NOT_SERVED,
                )
                await self._release(key, spec)

    async def wait_discovered(self, timeout: float | None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._discovered.wait()
        except TimeoutError:
            return False
        return True

    async def resolve(self, name: str, *, refresh_if_unknown: bool = True) -> ResourceInfo:
        """Resolve a resource name as kubectl does; re-discovers once if the name is new.

        Raises UnknownResourceError / AmbiguousResourceError, or ConnectionFailure/ApiError
        when the cluster cannot be asked.
        """
        if self.catalog is None:
            await self._guarded_rediscover()
        if self.catalog is None:  # closed meanwhile
            raise ConnectionFailure(f"cluster {self.name!r} was removed")
        try:
            return self.catalog.resolve(name)
        except KubeError:
            if not refresh_if_unknown or time.monotonic() - self._last_discovery < 1.0:
                raise
        await self._guarded_rediscover()
        return self.catalog.resolve(name)

    # -- wants and informers --------------------------------------------------------------

    async def want(self, spec: WatchSpec) -> None:
        """Start (or share) an informer for `spec`."""
        self._wants[spec] = self._wants.get(spec, 0) + 1
        if self._wants[spec] == 1:
            await self._apply_wants()
            self._wants_changed.set()

    async def unwant(self, spec: WatchSpec) -> None:
        """Release `spec`; its informer stops when nobody else uses it."""
        count = self._wants.get(spec, 0) - 1
        if count > 0:
            self._wants[spec] = count
            return
        self._wants.pop(spec, None)
        self._unresolved.pop(spec, None)
        key = self._resolved.pop(spec, None)
        if key is not None:
            await self._release(key, spec)

    async def _release(self, key: InformerKey, spec: WatchSpec) -> None:
        """`spec` no longer uses the informer of `key`; stop it when nobody else does."""
        users = self._users.get(key, set())
        users.discard(spec)
        if not users:
            self._users.pop(key, None)
            informer = self._informers.pop(key, None)
            if informer is not None:
                await informer.stop()

    def specs_for(self, key: InformerKey) -> frozenset[WatchSpec]:
        return frozenset(self._users.get(key, ()))

    async def _apply_wants(self) -> None:
        if self._closed:
            return
        if self.catalog is None:
            self._unresolved.update(
                dict.fromkeys(self._wants, Unresolved("waiting for discovery", ClusterReason.CONNECTING))
            )
            return
        async with self._lock:
            # First every pending spec is resolved and counted as a user of its informer, then
            # the new informers start: an informer's known state depends on who uses it (the
            # delivery engine hands its ledger only to informers a subscription uses), and a
            # subscription's spec resolved after the informer started would come too late.
            starting: dict[InformerKey, tuple[ResourceInfo, list[WatchSpec]]] = {}
            catalog = self.catalog
            for spec in list(self._wants):
                if spec in self._resolved:
                    continue
                try:
                    info = catalog.resolve(spec.resource)
                except KubeError as error:
                    self._unresolved[spec] = Unresolved(
                        str(error) + _unavailable_hint(catalog), reason_for(error)
                    )
                    continue
                self._unresolved.pop(spec, None)
                key = InformerKey(
                    info.group, info.version, info.resource, spec.namespaces, spec.label_selector
                )
                self._resolved[spec] = key
                self._users.setdefault(key, set()).add(spec)
                informer = self._informers.get(key)
                if informer is None:
                    starting.setdefault(key, (info, []))[1].append(spec)
                elif self._joined is not None and informer.populated:
                    self._joined(self, spec, informer)
            # Starting an informer waits (for its known state); meanwhile specs may be
            # released and the runtime closed, so each start checks again.
            for key, (info, specs) in starting.items():
                if self._closed:
                    return
                if self._users.get(key):
                    await self._start_or_retry_later(specs, key, info)

    async def _start_or_retry_later(
        self, specs: list[WatchSpec], key: InformerKey, info: ResourceInfo
    ) -> None:
        """Start the informer newly resolved specs use; if that fails, leave them unresolved.

        Loading the known state reads the store, which can fail for a moment (locked, restarting).
        Left resolved without an informer, a spec would never be started again (and the
        cluster would say "connecting" for ever); unresolved, it shows why and the next
        discovery pass (every refresh interval while something is unresolved) tries again.
        """
        try:
            await self._start_informer(key, info)
        except BaseException as error:
            if key not in self._informers:
                users = self._users.get(key)
                for spec in specs:
                    if self._resolved.get(spec) == key:
                        del self._resolved[spec]
                    if users is not None:
                        users.discard(spec)
                if users is not None and not users:
                    del self._users[key]
            if not isinstance(error, Exception):
                raise
            log.error("cluster %s: cannot start watching %s", self.name, info.qualified_name, exc_info=error)
            for spec in specs:
                if spec in self._wants:
                    self._unresolved[spec] = Unresolved(
                        f"cannot start watching {info.qualified_name} ({type(error).__name__}; see the "
                        "MIC log); retrying",
                        ClusterReason.ERROR,
                    )

    async def _start_informer(self, key: InformerKey, info: ResourceInfo) -> None:
        known = await self._known_state(self.name, key) if self._known_state else None
        if self._closed or not self._users.get(key) or key in self._informers:
            return  # closed, or every spec that wanted it was released while its state loaded

        async def sink(events: list[Event]) -> None:
            await self._sink(self, key, events)

        informer = Informer(
            self.client,
            self.name,
            info,
            sink,
            namespaces=key.namespaces,
            label_selector=key.label_selector or None,
            known=known,
            options=self._informer_options,
        )
        self._informers[key] = informer
        await informer.start()

    def key_for(self, spec: WatchSpec) -> InformerKey | None:
        return self._resolved.get(spec)

    def informer_for(self, spec: WatchSpec) -> Informer | None:
        key = self._resolved.get(spec)
        return self._informers.get(key) if key is not None else None

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def find_informer(
        self, info: ResourceInfo, namespace: str | None, label_selector: str
    ) -> Informer | None:
        """An informer whose cache can answer a query on `info` in `namespace`.

        Prefers the widest informer: no selector (or the same selector), all namespaces (or
        one including `namespace`).
        """
        candidates: list[tuple[int, Informer]] = []
        for key, informer in self._informers.items():
            if (key.group, key.version, key.resource) != (info.group, info.version, info.resource):
                continue
            if key.label_selector and key.label_selector != label_selector:
                continue
            if key.namespaces is not None and (namespace is None or namespace not in key.namespaces):
                continue
            candidates.append(((key.namespaces is not None) + bool(key.label_selector), informer))
        candidates.sort(key=lambda pair: pair[0])
        return candidates[0][1] if candidates else None

    def informer_scopes(self, info: ResourceInfo) -> list[str]:
        """How `info` is watched here, in words (for errors): one entry per informer."""
        scopes = []
        for key in self._informers:
            if (key.group, key.version, key.resource) != (info.group, info.version, info.resource):
                continue
            parts = [f"label selector {key.label_selector!r}"] if key.label_selector else []
            if key.namespaces is not None:
                parts.append(f"namespaces {', '.join(sorted(key.namespaces))}")
            scopes.append(" and ".join(parts) or "no filter")
        return sorted(scopes)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        resources = []
        last_event = None
        for key, informer in self._informers.items():
            status = informer.status
            resources.append(
                ResourceStatus(
                    resource=informer.resource.qualified_name,
                    namespaces=tuple(sorted(key.namespaces)) if key.namespaces is not None else None,
                    label_selector=key.label_selector,
                    state=status.state,
                    synced=status.synced,
                    object_count=status.object_count,
                    resource_version=status.resource_version,
                    last_error=status.last_error,
                    last_event_at=status.last_event_at,
                    reason=reason_for_informer(status.state, status.last_failure),
                )
            )
            if status.last_event_at and (last_event is None or status.last_event_at > last_event):
                last_event = status.last_event_at
        state, reason, error = self._overall_state(resources)
        return ClusterStatus(
            name=self.name,
            state=state,
            reason=reason,
            labels=dict(self.labels),
            server_version=self.server_version,
            last_error=error,
            last_event_at=last_event,
            resources=tuple(sorted(resources, key=lambda r: r.resource)),
            unresolved=tuple(
                sorted(f"{spec.resource}: {entry.why}" for spec, entry in self._unresolved.items())
            ),
        )

    def _overall_state(
        self, resources: list[ResourceStatus]
    ) -> tuple[ClusterState, ClusterReason, str | None]:
        """The cluster's state, its reason and the message that explains it."""
        if self._closed:
            return ClusterState.STOPPED, ClusterReason.STOPPED, None
        if self._discovery_state is not ClusterState.READY:
            return self._discovery_state, self._discovery_reason, self.last_error
        starting = [
            spec
            for spec in self._wants
            if spec not in self._unresolved and self._resolved.get(spec) not in self._informers
        ]
        if starting:
            return ClusterState.CONNECTING, ClusterReason.CONNECTING, None  # informer not started yet
        if not resources:
            return self._unresolved_verdict() if self._unresolved else _CONNECTED
        states = [r.state for r in resources]
        auth_states = {InformerState.UNAUTHORIZED, InformerState.FORBIDDEN}
        if all(s in auth_states for s in states):
            return ClusterState.UNAUTHORIZED, *_first_failure(resources)
        if all(s is InformerState.UNREACHABLE for s in states):
            return ClusterState.UNREACHABLE, *_first_failure(resources)
        if any(
            s not in (InformerState.WATCHING, InformerState.LISTING, InformerState.PENDING) for s in states
        ):
            return ClusterState.DEGRADED, *_first_failure(resources)
        if self._unresolved:
            return self._unresolved_verdict()
        if not all(r.synced for r in resources):
            return ClusterState.CONNECTING, ClusterReason.CONNECTING, None
        return _CONNECTED

    def _unresolved_verdict(self) -> tuple[ClusterState, ClusterReason, str | None]:
        """Degraded by the first spec that cannot be watched: not served, ambiguous, or failed to start."""
        first = next(iter(self._unresolved.values()))
        return ClusterState.DEGRADED, first.reason, first.why


_CONNECTED: tuple[ClusterState, ClusterReason, str | None] = (
    ClusterState.READY,
    ClusterReason.CONNECTED,
    None,
)


def _first_failure(resources: list[ResourceStatus]) -> tuple[ClusterReason, str | None]:
    """The reason and message of the first failing resource, which explain the cluster's state.

    A resource that works again may still show its last error (a list retried after a 403
    keeps it until the watch starts): one that fails now is preferred, so the reason and the
    message shown always come from the same resource when one has both.
    """
    for resource in resources:
        if resource.reason is not None and resource.last_error:
            return resource.reason, resource.last_error
    reason = next((r.reason for r in resources if r.reason is not None), ClusterReason.ERROR)
    return reason, next((r.last_error for r in resources if r.last_error), None)


def _unavailable_hint(catalog: ResourceCatalog) -> str:
    """Why a name may be unknown for now: API group versions whose discovery failed."""
    if not catalog.unavailable:
        return ""
    failed = "; ".join(f"{gv}: {why}" for gv, why in sorted(catalog.unavailable.items())[:3])
    more = len(catalog.unavailable) - 3
    return f" (discovery of some API groups failed, it may be served by one of them: {failed}" + (
        f"; and {more} more)" if more > 0 else ")"
    )
