"""The supervisor (the original MIC's "scheduler"): makes what runs match what is stored.

The store is the truth; the hub is what runs. Every API write goes to the store first and then
asks the supervisor to reconcile that one cluster, so a failed write never leaves the hub
ahead of the store. Reconciling compares the stored record with what was last applied and
does the least that makes them equal:

- connection changed: the cluster is removed from the hub and added again (new client, new
  informers, because every informer holds the old connection);
- labels changed: updated in place, no watch restarts;
- default resources changed: only the difference is watched or unwatched;
- deleted: its watches are released and the cluster removed, which frees its caches.

A periodic pass re-reads the store, which picks up changes made by another MIC sharing the
database and retries connections that could not be built (a kubeconfig file fixed on disk).

A query on a resource no watch covers starts a cache for it (`ensure_cached`); such an
on-demand cache is released once no query has used it for `cache_idle_seconds`, so queries
(a viewer's too) cannot grow what MIC watches for good.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from mic.hub import (
    ClusterReason,
    ClusterState,
    ClusterStatus,
    Hub,
    ResourceStatus,
    UnknownClusterError,
    WatchSpec,
)
from mic.kube.connection import ClusterConnection
from mic.kube.errors import ConfigError
from mic.kube.informer import InformerState
from mic.kube.resources import ResourceInfo
from mic.kube.tasks import OwnedTasks
from mic.service.connections import (
    ConnectionPolicy,
    build_connection,
    parse_connection,
    source_fingerprint,
)
from mic.service.defaults import CACHE_IDLE_SECONDS
from mic.store import ClusterRecord, NotFoundError, Store, StoreError

log = logging.getLogger(__name__)

_FAILED_STATES = frozenset({InformerState.UNAUTHORIZED, InformerState.FORBIDDEN, InformerState.NOT_FOUND})


class DeletionHook(Protocol):
    """What wraps the deletion of a cluster (`Supervisor.on_delete`)."""

    def __call__(
        self, name: str, labels: Mapping[str, str], /, *, force: bool = False
    ) -> AbstractAsyncContextManager[None]: ...


@asynccontextmanager
async def _nothing_around(
    name: str, labels: Mapping[str, str], *, force: bool = False
) -> AsyncIterator[None]:
    yield


class ClusterUnavailableError(Exception):
    """A cluster cannot answer right now (unreachable, unauthorized, unusable connection)."""


class CacheNotReadyError(Exception):
    """A cache did not complete its first list within the allowed time."""


@dataclass
class _Applied:
    """What the supervisor last applied for one cluster."""

    record: ClusterRecord
    connection: ClusterConnection | None
    error: str | None = None
    source: str | None = None
    """Digest of the host files the connection was built from (`source_fingerprint`)."""
    watches: dict[str, WatchSpec] = field(default_factory=dict)
    """Default resources (as stored) → the hub watch declared for each."""
    on_demand: dict[str, _OnDemand] = field(default_factory=dict)
    """Caches started by resource queries (qualified resource name → watch), released when idle."""
    querying: Counter[str] = field(default_factory=Counter)
    """Queries waiting in `ensure_cached` now, per qualified resource name: their cache is in use."""


@dataclass
class _OnDemand:
    """A cache a query started: its watch, and when a query last used it (`time.monotonic`)."""

    spec: WatchSpec
    last_used: float


@dataclass(frozen=True)
class RuntimeView:
    """How one cluster is doing, for the API: hub status plus what the supervisor knows."""

    status: ClusterStatus
    server: str | None


class Supervisor:
    """Owns the reconciliation of stored clusters into the hub; see the module docstring.

    Reconciliations are serialized by one lock, and each reads the store inside it: they only
    read a row and start or stop tasks, so they are quick, and reading under the lock means a
    slower reconcile can never apply an older state over a newer one.
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        policy: ConnectionPolicy,
        *,
        resync_interval: float = 30.0,
        sync_timeout: float = 10.0,
        cache_idle_seconds: float = CACHE_IDLE_SECONDS,
    ) -> None:
        """`cache_idle_seconds`: an on-demand cache no query
        used for this long is released."""
        self.store = store
        self.hub = hub
        self.policy = policy
        self.sync_timeout = sync_timeout
        self.cache_idle_seconds = cache_idle_seconds
        self.on_delete: DeletionHook = _nothing_around
        """What wraps the deletion of a cluster (`delete`); the service sets the delivery
        engine's `cluster_deletion`."""
        self._resync_interval = resync_interval
        self._applied: dict[str, _Applied] = {}
        self._lock = asyncio.Lock()
        self._tasks = OwnedTasks("supervisor")
        self._ready = False
        self._revision = -1

    @property
    def ready(self) -> bool:
        """Whether the first pass over the store has completed."""
        return self._ready

    async def start(self) -> None:
        """Start every stored cluster, then keep re-reading the store in the background."""
        await self.reconcile_all()
        self._ready = True
        self._tasks.start("resync", self._resync_loop())
        self._tasks.start("release idle caches", self._release_idle_loop())

    async def close(self) -> None:
        """Stop the background pass; the hub (closed by its owner) stops the clusters."""
        await self._tasks.close()

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            try:
                revision = await self.store.clusters_revision()
                if (
                    revision != self._revision
                    or any(a.connection is None for a in self._applied.values())
                    or any(self._source_changed(a) for a in self._applied.values())
                ):
                    await self.reconcile_all()
            except StoreError as error:
                log.warning("supervisor: cannot re-read the store, keeping what runs: %s", error)
            except Exception:
                # This loop is what retries connections and follows other replicas: it must
                # outlive any one failure.
                log.exception("supervisor: resync pass failed; trying again in %gs", self._resync_interval)

    async def _release_idle_loop(self) -> None:
        while True:
            # Checked several times per idle period, so a cache lives at most ~1.25 of it.
            await asyncio.sleep(min(max(self.cache_idle_seconds / 4, 0.01), 30.0))
            try:
                await self.release_idle_caches()
            except Exception:
                log.exception("supervisor: releasing idle on-demand caches failed; trying again")

    async def release_idle_caches(self) -> None:
        """Release the on-demand caches no query has used for `cache_idle_seconds`.

        Only the supervisor's own watch is released: an informer that configured resources,
        subscriptions or tails also use goes on serving them (the hub counts its users).
        """
        async with self._lock:
            now = time.monotonic()
            for name, applied in list(self._applied.items()):
                for resource, entry in list(applied.on_demand.items()):
                    if applied.querying[resource] or now - entry.last_used < self.cache_idle_seconds:
                        continue
                    del applied.on_demand[resource]
                    await self.hub.unwatch(entry.spec)
                    log.info(
                        "cluster %s: released the on-demand cache of %s (no query for %gs)",
                        name,
                        resource,
                        self.cache_idle_seconds,
                    )

    def _source_changed(self, applied: _Applied) -> bool:
        if applied.source is None or applied.connection is None:
            return False
        try:
            spec = parse_connection(applied.record.connection)
        except ValidationError:
            return False
        return source_fingerprint(spec, self.policy) != applied.source

    # -- writes (store first, then reconcile) -----------------------------------------------

    def validate(self, connection: Mapping[str, Any]) -> ClusterConnection:
        """Build the connection as the supervisor will; raises ConfigError saying what to fix."""
        try:
            spec = parse_connection(connection)
        except ValidationError as error:
            raise ConfigError(f"invalid connection: {error.errors()[0]['msg']}") from None
        return build_connection(spec, self.policy)

    async def create(self, record: ClusterRecord) -> ClusterRecord:
        """Validate, store, then start the cluster. Raises ConfigError, AlreadyExistsError."""
        self.validate(record.connection)
        stored = await self.store.create_cluster(record)
        await self.reconcile(stored.name)
        return stored

    async def replace(
        self, record: ClusterRecord, *, expected_generation: int | None = None
    ) -> ClusterRecord:
        """Validate, store, reconcile. Raises ConfigError, NotFoundError, ConflictError."""
        self.validate(record.connection)
        stored = await self.store.replace_cluster(record, expected_generation=expected_generation)
        await self.reconcile(stored.name)
        return stored

    async def delete(self, name: str, *, force: bool = False) -> None:
        """Delete from the store, then stop the cluster and free its caches. Raises NotFoundError.

        Both run inside `on_delete` (the delivery engine's farewell: DELETED for the cluster's
        objects to every subscription that selects it; `force` as there), under the
        supervisor's lock, so that no reconcile (a label change, say) runs in between."""
        async with self._lock:
            record = await self.store.get_cluster(name)
            async with self.on_delete(name, dict(record.labels), force=force):
                await self.store.delete_cluster(name)
                try:
                    await self._apply(name, None)
                except Exception:
                    # Deleted: the next pass stops what is left (no reason to tell the engine
                    # the deletion failed, which would announce the cluster again).
                    self._revision = -1
                    log.exception("cluster %s: deleted, but stopping it failed; the next pass retries", name)

    # -- reconciliation ----------------------------------------------------------------------

    async def reconcile_all(self) -> None:
        """Make the hub match every stored cluster (and drop clusters no longer stored)."""
        async with self._lock:
            revision = await self.store.clusters_revision()
            records = {record.name: record for record in await self.store.list_clusters()}
            failed = False
            for name in sorted(set(self._applied) | set(records)):
                try:
                    await self._apply(name, records.get(name))
                except Exception:
                    # One cluster's failure must neither stop the others nor MIC's start-up.
                    failed = True
                    log.exception("cluster %s: reconciling failed; retrying on the next pass", name)
            self._revision = revision if not failed else -1

    async def reconcile(self, name: str) -> None:
        """Make the hub match the stored state of one cluster."""
        async with self._lock:
            try:
                record: ClusterRecord | None = await self.store.get_cluster(name)
            except NotFoundError:
                record = None
            await self._apply(name, record)

    async def _apply(self, name: str, record: ClusterRecord | None) -> None:
        applied = self._applied.get(name)
        if record is None:
            if applied is not None:
                await self._stop(name, applied)
            return
        if applied is None:
            applied = _Applied(record=record, connection=None)
            self._applied[name] = applied
            await self._connect(name, applied, record)
            await self._sync_watches(name, applied, record.resources)
            log.info("cluster %s: started (generation %d)", name, record.generation)
            return
        source_changed = self._source_changed(applied)
        if (
            applied.record.generation == record.generation
            and applied.connection is not None
            and not source_changed
        ):
            return
        if (
            applied.connection is None
            or source_changed
            or dict(applied.record.connection) != dict(record.connection)
        ):
            if applied.connection is not None and dict(applied.record.labels) != dict(record.labels):
                # Relabelled first, on the running cluster: subscriptions it joins or leaves
                # get its objects or their deletes (a re-added cluster resumes from the ledger
                # and would report only what changed).
                await self.hub.set_cluster_labels(name, dict(record.labels))
            await self._connect(name, applied, record)
            log.info("cluster %s: connection changed, reconnected (generation %d)", name, record.generation)
        elif dict(applied.record.labels) != dict(record.labels):
            await self.hub.set_cluster_labels(name, dict(record.labels))
            log.info("cluster %s: labels updated in place", name)
        await self._sync_watches(name, applied, record.resources)
        applied.record = record

    async def _connect(self, name: str, applied: _Applied, record: ClusterRecord) -> None:
        """(Re)create the cluster in the hub; watches declared for it are re-applied by the hub."""
        if applied.connection is not None:
            await self.hub.remove_cluster(name)
            applied.connection = None
        applied.record = record
        try:
            source = source_fingerprint(parse_connection(record.connection), self.policy)
            connection = self.validate(record.connection)
        except ConfigError as error:
            applied.error = f"invalid connection: {error}"
            log.warning("cluster %s: cannot build its connection: %s", name, error)
            return
        except Exception as error:
            # Not a message to show (its text is unknown and could quote a credential), but
            # the cluster is still registered, reported, and retried like an invalid one.
            applied.error = f"invalid connection ({type(error).__name__}; see the MIC log)"
            log.exception("cluster %s: cannot build its connection", name)
            return
        await self.hub.add_cluster(name, connection, labels=dict(record.labels))
        applied.connection = connection
        applied.source = source
        applied.error = None

    async def _sync_watches(self, name: str, applied: _Applied, resources: tuple[str, ...]) -> None:
        wanted = dict.fromkeys(resources)
        for resource in [r for r in applied.watches if r not in wanted]:
            await self.hub.unwatch(applied.watches.pop(resource))
        for resource in wanted:
            if resource not in applied.watches:
                applied.watches[resource] = await self.hub.watch(resource, clusters=[name])

    async def _stop(self, name: str, applied: _Applied) -> None:
        for spec in [*applied.watches.values(), *(entry.spec for entry in applied.on_demand.values())]:
            await self.hub.unwatch(spec)
        if applied.connection is not None:
            await self.hub.remove_cluster(name)
        del self._applied[name]
        log.info("cluster %s: stopped and its caches freed", name)

    # -- reads -------------------------------------------------------------------------------

    def view(self, name: str) -> RuntimeView:
        """The runtime status of a stored cluster (connecting if not applied yet)."""
        applied = self._applied.get(name)
        if applied is None:
            return RuntimeView(ClusterStatus(name=name, state=ClusterState.CONNECTING), None)
        if applied.connection is None:
            status = ClusterStatus(
                name=name,
                state=ClusterState.UNREACHABLE,
                reason=ClusterReason.CONFIG_INVALID,
                labels=dict(applied.record.labels),
                last_error=applied.error,
            )
            return RuntimeView(status, None)
        return RuntimeView(self.hub.status(name), applied.connection.server)

    def statuses(self) -> list[ClusterStatus]:
        """Every applied cluster's status, for metrics."""
        return [self.view(name).status for name in sorted(self._applied)]

    async def ensure_cached(
        self, cluster: str, resource: str, *, timeout: float | None = None
    ) -> ResourceInfo:
        """Make sure `resource` in `cluster` is cached and synced, starting a cache if needed.

        Decision: a query on a resource that is not watched starts caching it (all namespaces,
        no selector) rather than doing one live list: the next queries are then as fast as
        any, at the cost of one watch. That cache is kept while queries use it and released
        once none has for `cache_idle_seconds` (`release_idle_caches`), so what queries start
        does not add up for good. Waits up to `timeout` (default `sync_timeout`) for the
        first list.

        Raises UnknownClusterError, UnknownResourceError, AmbiguousResourceError,
        ClusterUnavailableError, CacheNotReadyError.
        """
        applied = self._applied.get(cluster)
        if applied is None:
            raise UnknownClusterError(cluster)
        if applied.connection is None:
            raise ClusterUnavailableError(f"cluster {cluster!r} cannot be reached: {applied.error}")
        limit = self.sync_timeout if timeout is None else timeout
        stage = "did not answer discovery"
        try:
            async with asyncio.timeout(limit):
                info = await self.hub.resolve(cluster, resource)
                stage = f"did not complete the first list of {info.qualified_name}"
                with self._using(applied, info.qualified_name):
                    await self._wait_cache(cluster, applied, resource, info)
        except TimeoutError:
            detail = self._cache_error(cluster, stage)
            raise CacheNotReadyError(f"cluster {cluster!r} {stage} within {limit:g}s{detail}") from None
        return info

    @contextmanager
    def _using(self, applied: _Applied, resource: str) -> Iterator[None]:
        """A query uses the cache of `resource`: not released meanwhile, idle from its end on.

        The caller reads the cache right after, without awaiting, so no release falls between."""
        applied.querying[resource] += 1
        try:
            yield
        finally:
            applied.querying[resource] -= 1
            if not applied.querying[resource]:
                del applied.querying[resource]
            entry = applied.on_demand.get(resource)
            if entry is not None:
                entry.last_used = time.monotonic()

    async def _wait_cache(self, cluster: str, applied: _Applied, resource: str, info: ResourceInfo) -> None:
        while True:
            entry = self._full_cache_status(cluster, info)
            if entry is None:
                async with self._lock:
                    if self._applied.get(cluster) is not applied:
                        raise UnknownClusterError(cluster)
                    if (
                        info.qualified_name not in applied.on_demand
                        and self._full_cache_status(cluster, info) is None
                    ):
                        spec = await self.hub.watch(resource, clusters=[cluster])
                        applied.on_demand[info.qualified_name] = _OnDemand(spec, time.monotonic())
                        log.info("cluster %s: caching %s on demand", cluster, info.qualified_name)
            elif entry.synced:
                return
            elif entry.state in _FAILED_STATES:
                raise ClusterUnavailableError(
                    f"cluster {cluster!r} cannot list {info.qualified_name}: "
                    f"{entry.last_error or entry.state}"
                )
            await asyncio.sleep(0.02)

    def _full_cache_status(self, cluster: str, info: ResourceInfo) -> ResourceStatus | None:
        for entry in self.hub.status(cluster).resources:
            if (
                entry.resource == info.qualified_name
                and entry.namespaces is None
                and not entry.label_selector
            ):
                return entry
        return None

    def _cache_error(self, cluster: str, stage: str) -> str:
        try:
            status = self.hub.status(cluster)
        except UnknownClusterError:
            return ""
        return f": {status.last_error}" if status.last_error else ""
