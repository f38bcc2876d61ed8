"""Informers: list once, then watch, and keep a cache equal to the server's state.

An `Informer` covers one resource of one cluster, optionally narrowed to a set of namespaces
(one `Reflector`, i.e. one list+watch stream, per namespace, so a service account limited to
a few namespaces works) and a label selector (pushed down to the server). It reports every
change exactly once, in the order the server made it:

* a dropped connection resumes the watch from the last resourceVersion seen (events or
  bookmarks), so nothing is lost and nothing is repeated, once one object listed "not older
  than" that version shows the server still has the same history (`_same_history`: a server
  back on a restored etcd, or another cluster at the same address, relists instead);
* a 410 Gone (or a watch `ERROR` with code 410) relists and emits the exact difference between
  the cache and the new list: deletes that happened during the gap are reported, unchanged
  objects are not; so does a 504 "Too large resource version" (the server's history went
  back, e.g. etcd restored from a backup), as client-go does;
* a watch that goes quiet for longer than `stall_timeout` (no event, no bookmark) is
  restarted; quiet again at once, it relists (a server whose history went back waits
  silently for a resourceVersion it has not reached, then skips all before it);
* a caller that kept the state it last saw (`KnownObject` per uid) can hand it over, so the
  first list after a process restart reports only what really changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mic.events import Event, EventType, new_occasion
from mic.kube.backoff import Backoff
from mic.kube.cache import (
    CompactObjectCache,
    ObjectCache,
    ObjectKey,
    object_key,
    object_resource_version,
    object_uid,
)
from mic.kube.client import JsonObject, KubeClient, api_error_from_status_object
from mic.kube.errors import ApiError, ConnectionFailure
from mic.kube.fingerprint import content_hash
from mic.kube.resources import ResourceInfo
from mic.kube.selectors import LabelSelector
from mic.kube.tasks import OwnedTasks

log = logging.getLogger(__name__)

EventSink = Callable[[list[Event]], Awaitable[None]]


class InformerState(StrEnum):
    """Where an informer (or one of its reflectors) stands."""

    PENDING = "pending"
    LISTING = "listing"
    WATCHING = "watching"
    BACKOFF = "backoff"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    STOPPED = "stopped"


# Worst first: the informer reports the worst state among its reflectors.
_SEVERITY = [
    InformerState.UNAUTHORIZED,
    InformerState.FORBIDDEN,
    InformerState.NOT_FOUND,
    InformerState.UNREACHABLE,
    InformerState.BACKOFF,
    InformerState.PENDING,
    InformerState.LISTING,
    InformerState.WATCHING,
    InformerState.STOPPED,
]


@dataclass(frozen=True, slots=True)
class KnownObject:
    """What a caller last saw of one object (keyed by uid in the mapping it hands over)."""

    namespace: str
    name: str
    resource_version: str
    content_hash: str | None = None


@dataclass(frozen=True)
class InformerOptions:
    """Tuning knobs; the defaults follow client-go where it has one."""

    page_size: int = 500
    stall_timeout: float = 300.0
    watch_timeout_range: tuple[int, int] = (300, 600)
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    auth_retry_interval: float = 60.0
    strip_managed_fields: bool = False
    compact_cache: bool = False
    """Keep cached objects as JSON bytes (about 1x their size instead of 4-6x; reads decode)."""


@dataclass
class InformerStatus:
    """A snapshot of an informer's health, for status pages and metrics."""

    state: InformerState = InformerState.PENDING
    synced: bool = False
    last_error: str | None = None
    last_failure: BaseException | None = None
    """The error behind `last_error`, when one is (a consumer's failure has none): what a
    status can classify by type (`mic.hub.reasons`), never by its text."""
    resource_version: str = ""
    object_count: int = 0
    last_event_at: float | None = None
    relists: int = 0
    watch_restarts: int = 0
    stalls: int = 0


SILENT_STALLS_BEFORE_RELIST = 2
"""A watch that stalls this many times in a row, receiving nothing at all in between, relists."""


class StalledWatch(Exception):
    """No event or bookmark arrived within the stall timeout."""


class Informer:
    """List+watch one resource of one cluster into a cache and report every change."""

    def __init__(
        self,
        client: KubeClient,
        cluster: str,
        resource: ResourceInfo,
        sink: EventSink,
        *,
        namespaces: Iterable[str] | None = None,
        label_selector: LabelSelector | str | None = None,
        known: Mapping[str, KnownObject] | None = None,
        options: InformerOptions | None = None,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.resource = resource
        self.options = options or InformerOptions()
        if isinstance(label_selector, str):
            label_selector = LabelSelector.parse(label_selector)
        self.label_selector = label_selector if label_selector and not label_selector.is_empty else None
        scopes: list[str | None]
        if namespaces is None or not resource.namespaced:
            scopes = [None]
        else:
            scopes = [*sorted(set(namespaces))] or [None]
        self.namespaces: tuple[str, ...] | None = None if scopes == [None] else tuple(s for s in scopes if s)
        self.cache = CompactObjectCache() if self.options.compact_cache else ObjectCache()
        self._sink = sink
        self._consumer_error: str | None = None  # set while the sink fails on a batch
        self._known: dict[str, KnownObject] = dict(known or {})
        self._reflectors = [Reflector(self, scope) for scope in scopes]
        self._tasks = OwnedTasks(f"informer {cluster}/{resource.qualified_name}")
        self._started = False
        self._synced = asyncio.Event()
        self.last_event_at: float | None = None

    def __repr__(self) -> str:
        scope = ",".join(self.namespaces) if self.namespaces else "*"
        return (
            f"<Informer {self.cluster} {self.resource.qualified_name} ns={scope} sel={self.label_selector}>"
        )

    async def start(self) -> None:
        """Start listing and watching; returns at once (see `wait_synced`)."""
        if self._started:
            return
        self._started = True
        for reflector in self._reflectors:
            self._tasks.start(reflector.name, reflector.run())

    async def stop(self) -> None:
        """Stop every stream; the cache keeps its last content."""
        await self._tasks.close()
        for reflector in self._reflectors:
            reflector.state = InformerState.STOPPED

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until every reflector has completed its first list; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    @property
    def synced(self) -> bool:
        """Every reflector has completed its first list: the cache holds the server's state."""
        return self._synced.is_set()

    @property
    def populated(self) -> bool:
        """A first list has begun to fill the cache: what it holds is real, if perhaps not
        complete until `synced`. A consumer that joins now takes the cache as its snapshot
        and gets the rest of the list as it arrives."""
        return any(r.populated for r in self._reflectors)

    @property
    def status(self) -> InformerStatus:
        states = {r.state for r in self._reflectors}
        errors = [(r.last_error, r.last_failure) for r in self._reflectors if r.last_error]
        if self._consumer_error is not None:  # the stream waits for its consumer
            states.add(InformerState.BACKOFF)
            errors.insert(0, (self._consumer_error, None))
        state = next(s for s in _SEVERITY if s in states)
        return InformerStatus(
            state=state,
            synced=self.synced,
            last_error=errors[0][0] if errors else None,
            last_failure=errors[0][1] if errors else None,
            resource_version=max((r.resource_version for r in self._reflectors), key=_rv_order, default=""),
            object_count=len(self.cache),
            last_event_at=self.last_event_at,
            relists=sum(r.relists for r in self._reflectors),
            watch_restarts=sum(r.watch_restarts for r in self._reflectors),
            stalls=sum(r.stalls for r in self._reflectors),
        )

    def _reflector_synced(self) -> None:
        if all(r.synced for r in self._reflectors):
            self._synced.set()

    def _take_known(self, namespace: str | None) -> dict[str, KnownObject]:
        """Hand the known state within one reflector's scope to it, once."""
        if not self._known:
            return {}
        if namespace is None:
            taken, self._known = self._known, {}
            return taken
        taken = {uid: k for uid, k in self._known.items() if k.namespace == namespace}
        for uid in taken:
            del self._known[uid]
        return taken

    def make_event(
        self,
        type_: EventType,
        obj: JsonObject,
        old: JsonObject | None = None,
        observed_at: float | None = None,
        old_json: bytes | None = None,
        object_json: bytes | None = None,
    ) -> Event:
        """An event of this informer's resource; `old_json` is an old state kept as JSON (see
        `Event.old_json`), given instead of `old`; `object_json` is `obj` encoded, if at hand."""
        metadata = obj.get("metadata") or {}
        resource = self.resource
        # Positional: this runs once per change, and keyword passing costs measurably here.
        return Event(
            type_,
            self.cluster,
            resource.group,
            resource.version,
            resource.kind,
            resource.resource,
            metadata.get("namespace") or None,
            metadata.get("name") or "",
            metadata.get("uid") or "",
            metadata.get("resourceVersion") or "",
            obj,
            old,
            time.time() if observed_at is None else observed_at,
            None,
            old_json=old_json,
            object_json=object_json,
        )

    async def emit(self, events: list[Event]) -> None:
        """Hand changes to the sink, until it takes them.

        The cache holds them already, so a change the sink failed on would never be reported
        again (a relist finds the cache equal to the server): the same changes are handed over
        again, with backoff, and the stream waits meanwhile. A consumer that took part of them
        before the failure gets that part twice (at least once, never lost).
        """
        if not events:
            return
        self.last_event_at = time.time()
        backoff: Backoff | None = None
        while True:
            try:
                await self._sink(events)
                self._consumer_error = None
                return
            except Exception as error:
                if backoff is None:
                    backoff = Backoff(initial=self.options.initial_backoff, maximum=self.options.max_backoff)
                delay = backoff.next_delay()
                self._consumer_error = (
                    f"a consumer failed on {len(events)} change(s) ({type(error).__name__}; see the"
                    " MIC log); handing them over again"
                )
                log.exception(
                    "%s %s: a consumer failed on %d change(s); handing them over again in %.1fs",
                    self.cluster,
                    self.resource.qualified_name,
                    len(events),
                    delay,
                )
                await asyncio.sleep(delay)


def _rv_order(rv: str) -> tuple[int, str]:
    """Order resourceVersions for display only (logic compares only integers: `_rv_number`)."""
    return (len(rv), rv)


def _listed(event: Event, occasion: str | None) -> Event:
    event.occasion = occasion
    return event


def _rv_number(rv: str) -> int | None:
    """A resourceVersion as the integer kube-apiserver makes it (digits, no leading zero, not
    "0"; client-go's `resourceversion.CompareResourceVersion` accepts the same); None for any
    other string (an extension API server's opaque version)."""
    if not rv.isascii() or not rv.isdigit() or rv[0] == "0":
        return None
    return int(rv)


class Reflector:
    """One list+watch stream of an informer: all namespaces, or one namespace."""

    def __init__(self, informer: Informer, namespace: str | None) -> None:
        self.informer = informer
        self.namespace = namespace
        self.name = f"reflector ns={namespace or '*'}"
        self.state = InformerState.PENDING
        self.last_error: str | None = None
        self.last_failure: BaseException | None = None
        self.resource_version = ""
        self.synced = False
        self.populated = False
        self.relists = 0
        self.watch_restarts = 0
        self.stalls = 0
        options = informer.options
        self._backoff = Backoff(initial=options.initial_backoff, maximum=options.max_backoff)
        self._path = informer.resource.collection_path(namespace)
        self._need_list = True
        self._check_history = False  # the connection was lost: see `_same_history`
        self._first_list = True
        self._watch_open = False
        self._silent_stalls = 0  # stalls in a row with nothing received in between
        # The caller's known state, held from the first list's start to its completion.
        self._pending_known: dict[str, KnownObject] = {}
        self._known_uid_by_key: dict[ObjectKey, str] = {}

    @property
    def _where(self) -> str:
        informer = self.informer
        return f"{informer.cluster}/{informer.resource.qualified_name} ns={self.namespace or '*'}"

    def _params(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {}
        if self.informer.label_selector is not None:
            params["labelSelector"] = str(self.informer.label_selector)
        return params

    async def run(self) -> None:
        """Keep the cache in sync until cancelled; every failure is retried, none is fatal."""
        while True:
            self._watch_open = False
            try:
                if self._need_list:
                    await self._list_and_sync()
                elif self._check_history and not await self._same_history():
                    self._relist_next()
                    continue
                await self._watch()
            except StalledWatch:
                self._on_stall()
            except ApiError as error:
                await self._on_api_error(error)
            except ConnectionFailure as error:
                self._check_history = True
                await self._pause(InformerState.UNREACHABLE, str(error), self._backoff.next_delay(), error)
            except Exception as error:
                # A defect here (a failing consumer is retried in `Informer.emit`): the stream
                # must go on; log it loudly and resume from the last version seen.
                log.exception("%s: unexpected failure; resuming in a moment", self._where)
                await self._pause(
                    InformerState.BACKOFF, f"internal error: {error!r}", self._backoff.next_delay(), error
                )
            finally:
                if self._watch_open:
                    self.watch_restarts += 1

    async def _same_history(self) -> bool:
        """Whether a server we lost the connection to still has the history our resourceVersion
        belongs to, before the watch resumes from it (a resumed watch keeps every change made
        meanwhile; a relist would fold them into one).

        A server back from a restart on an etcd restored from a backup, or a cluster rebuilt
        at the same address, may not have reached our resourceVersion yet: a watch from it
        waits in silence, then reports only what comes after it. So we list one object not
        older than our version: a server behind it answers "Too large resource version" (an
        `ApiError` that relists, as does 410 Gone). One that went past it with other changes
        has other objects, which the first one listed may give away (`_listed_matches`); an
        empty answer while we cache objects is a change worth a list too.

        A server may answer a page short of its limit, even empty, with a continue token (the
        API allows it when a selector filters; kube's own storage fills pages, others need
        not): an empty page with a continue token says nothing about the history, so the
        list is followed (a doubling limit, up to the page size, bounds the round trips) to
        its first object, or to its end, which is a really empty answer.
        """
        params = self._params()
        params.update(limit=1, resourceVersion=self.resource_version, resourceVersionMatch="NotOlderThan")
        client = self.informer.client
        limit, most = 1, max(1, self.informer.options.page_size)
        while True:
            page = await client.get_json(self._path, params)
            items = page.get("items") or []
            continue_token = str((page.get("metadata") or {}).get("continue") or "")
            if items or not continue_token:
                break
            # A continued list keeps the first page's resourceVersion, one not older than ours
            # (kube forbids resourceVersion and resourceVersionMatch with continue).
            limit = min(2 * limit, most)
            params = self._params()
            params.update({"limit": limit, "continue": continue_token})
        self._check_history = False
        cache = self.informer.cache
        if items:
            same = self._listed_matches(items[0])
        else:
            same = not any(self.namespace in (None, key[0]) for key, _ in cache.items())
        if not same:
            log.warning(
                "%s: the server's objects do not fit resourceVersion %s (an object re-created "
                "meanwhile, a cluster restored from a backup, or another cluster at this "
                "address); listing again to be sure",
                self._where,
                self.resource_version,
            )
        return same

    def _listed_matches(self, obj: JsonObject) -> bool:
        """Whether an object listed at a version not older than ours fits the history we cache.

        Resource versions of one resource compare as integers on kube-apiserver: the API
        concepts documentation says so since Kubernetes 1.35 ("Resource version strings are
        orderable as monotonically increasing integers within the same resource type",
        https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions; KEP-5504,
        client-go's `resourceversion.CompareResourceVersion`), as they did in practice before.
        An object whose version is newer than ours changed after our version; if we hold one
        of that name it must have the same uid. Another uid may be an object deleted and
        re-created meanwhile (the same history) or a cluster whose new history went past our
        version (another one): the two cannot be told apart from one object, and taking the
        second for the first would leave the cache stale for good, so it is relisted (the
        first costs a list, and folds that object's intermediate changes). One not newer has
        not changed since: in the same history we hold it, with that uid and that version;
        anything else is another history.

        An extension API server may use other versions (the documentation asks clients to
        check): when either version is not a well-formed decimal integer, an object of a
        name we hold must have the uid we hold (re-creating it looks like another history
        then, and costs a relist).
        """
        metadata = obj.get("metadata") or {}
        cached = self.informer.cache.get(metadata.get("namespace"), str(metadata.get("name") or ""))
        uid = str(metadata.get("uid") or "")
        listed_rv = str(metadata.get("resourceVersion") or "")
        listed, ours = _rv_number(listed_rv), _rv_number(self.resource_version)
        if listed is None or ours is None:
            return cached is None or object_uid(cached) == uid
        if listed > ours:
            return cached is None or object_uid(cached) == uid
        return (
            cached is not None and object_uid(cached) == uid and object_resource_version(cached) == listed_rv
        )

    def _on_stall(self) -> None:
        self.stalls += 1
        self._silent_stalls += 1
        if self._silent_stalls < SILENT_STALLS_BEFORE_RELIST:
            log.warning("%s: watch stalled for %.0fs; restarting it", self._where, self._stall_timeout)
            return
        # Resumed and silent again (no bookmark either): a server whose history went back (etcd
        # restored from a backup) waits quietly for our resourceVersion and would then skip
        # everything before it. Only a list is safe.
        self._silent_stalls = 0
        self._relist_next()
        log.warning(
            "%s: watch silent again for %.0fs after a restart; relisting", self._where, self._stall_timeout
        )

    def _relist_next(self) -> None:
        self.relists += 1
        self._need_list = True

    @property
    def _stall_timeout(self) -> float:
        return self.informer.options.stall_timeout

    async def _on_api_error(self, error: ApiError) -> None:
        options = self.informer.options
        if error.is_gone or error.is_resource_version_too_large:
            # Expired, or ahead of what the server has (its history went back): either way the
            # only safe start is a fresh list, which reports every difference. Watching again
            # from a version the server has not reached would, once it gets there, skip all
            # that changed before.
            self._relist_next()
            log.info(
                "%s: resourceVersion %s is unusable (%s); relisting",
                self._where,
                self.resource_version,
                error,
            )
            if self.relists > 1 and self._backoff.failing:
                await asyncio.sleep(self._backoff.next_delay())
            else:
                self._backoff.next_delay()
            return
        if error.is_unauthorized:
            await self._pause(InformerState.UNAUTHORIZED, error.message, options.auth_retry_interval, error)
        elif error.is_forbidden:
            await self._pause(InformerState.FORBIDDEN, error.message, options.auth_retry_interval, error)
        elif error.is_not_found:
            await self._pause(InformerState.NOT_FOUND, error.message, options.auth_retry_interval, error)
        elif error.status == 429 and error.retry_after is not None:
            await self._pause(InformerState.BACKOFF, str(error), error.retry_after, error)
        else:
            delay = self._backoff.next_delay()
            if error.retry_after is not None:
                delay = max(delay, error.retry_after)
            await self._pause(InformerState.BACKOFF, str(error), delay, error)

    async def _pause(self, state: InformerState, message: str, delay: float, failure: BaseException) -> None:
        self.state = state
        self.last_error = message
        # Without its traceback: the frames of a failed list hold its page and every key seen.
        self.last_failure = failure.with_traceback(None)
        log.warning("%s: %s: %s; retrying in %.1fs", self._where, state.value, message, delay)
        await asyncio.sleep(delay)

    # -- list -----------------------------------------------------------------------------

    async def _list_and_sync(self) -> None:
        """List everything in scope and bring the cache to it, reporting each difference.

        Pages are applied and their changes emitted as they arrive, so a list holds at most
        one page of decoded objects (and their events) at a time, not the whole collection;
        what disappeared is only known at the end and is reported then.
        """
        if self.state not in (InformerState.UNREACHABLE, InformerState.BACKOFF):
            self.state = InformerState.LISTING
        if self._first_list:
            self._hold_known_state()
        page_size = self.informer.options.page_size
        # If the continue token expires between pages (410), start over once; if that fails
        # too, list without pagination, as client-go's pager falls back. Pages applied by a
        # failed attempt stay in the cache, so the next attempt reports only what differs.
        for limit in (page_size, page_size, 0):
            seen: set[ObjectKey] = set()
            try:
                list_rv = await self._list_pages(limit, seen)
                break
            except ApiError as error:
                if not (error.is_gone and limit):
                    raise
                log.info("%s: list continuation expired; listing again", self._where)
        deletions = self._deletions(seen)
        self.resource_version = list_rv
        self._need_list = False
        self._check_history = False  # a list is the answer to that question too
        self._first_list = False
        self._pending_known, self._known_uid_by_key = {}, {}
        self.synced = True
        self.informer._reflector_synced()
        self._backoff.reset()
        await self.informer.emit(deletions)

    async def _list_pages(self, limit: int, seen: set[ObjectKey]) -> str:
        """Apply every page of one consistent list; return the list's resourceVersion."""
        client = self.informer.client
        strip = self.informer.options.strip_managed_fields
        continue_token = ""
        list_rv = ""
        occasion = new_occasion()
        while True:
            params = self._params()
            if limit:
                params["limit"] = limit
            if continue_token:
                params["continue"] = continue_token
            page = await client.get_json(self._path, params)
            metadata = page.get("metadata") or {}
            page_items = page.get("items") or []
            del page
            if strip:
                for obj in page_items:
                    _strip_managed_fields(obj)
            events = self._sync_page(page_items, seen, occasion)
            self.populated = True
            await self.informer.emit(events)
            del page_items
            if not list_rv:
                list_rv = str(metadata.get("resourceVersion") or "")
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                return list_rv

    def _sync_page(
        self, items: list[JsonObject], seen: set[ObjectKey], occasion: str | None = None
    ) -> list[Event]:
        """Put one page of a list into the cache; return what changed, in order per object.

        An object whose name now belongs to a new uid is reported deleted, then added. When
        the informer started from a known state, an object known under the same name but
        another uid is reported deleted before the new one is added.

        An ADDED found by a list carries `occasion` (one per list): its object was neither
        cached nor known, so this message was never sent before, yet its stable id (cluster,
        uid, resourceVersion, type) may have been: by a registration of the same cluster
        deleted since, whose recipients then dropped the object. Without it, a recipient that
        drops ids it has seen would drop these as duplicates and stay without the objects.
        """
        informer = self.informer
        cache = informer.cache
        known = self._pending_known
        events: list[Event] = []
        kind, api_version = informer.resource.kind, informer.resource.group_version
        for obj in items:
            if "kind" not in obj or "apiVersion" not in obj:
                # Lists omit kind/apiVersion on items; watch events carry them, first. Make them
                # alike, key order included: the bytes of a state from a list and of the same
                # state from a watch must be equal (`routing.changes.json_is_noop`).
                obj = {"kind": obj.get("kind", kind), "apiVersion": obj.get("apiVersion", api_version), **obj}
            key = object_key(obj)
            seen.add(key)
            entry = cache.put_entry(key, obj)
            obj_json = cache.last_json
            uid = object_uid(obj)
            if entry is None:
                previous = known.pop(uid, None)
                if previous is None:
                    replaced_uid = self._known_uid_by_key.pop(key, "")
                    replaced = known.pop(replaced_uid, None)
                    if replaced is not None:
                        gone = tombstone(replaced_uid, replaced, informer.resource)
                        events.append(informer.make_event(EventType.DELETED, gone))
                    events.append(
                        _listed(informer.make_event(EventType.ADDED, obj, object_json=obj_json), occasion)
                    )
                elif not _same_state(previous, obj):
                    events.append(informer.make_event(EventType.MODIFIED, obj, object_json=obj_json))
            else:
                old_uid, old_rv = cache.identity(entry)
                if old_uid != uid:
                    events.append(informer.make_event(EventType.DELETED, cache.unpack(entry)))
                    events.append(
                        _listed(informer.make_event(EventType.ADDED, obj, object_json=obj_json), occasion)
                    )
                elif old_rv != object_resource_version(obj):
                    old, old_json = cache.old_state(entry)
                    events.append(informer.make_event(EventType.MODIFIED, obj, old, None, old_json, obj_json))
        return events

    def _hold_known_state(self) -> None:
        """Take this reflector's part of the caller's known state, once (a first list that
        fails part way keeps what it holds for the next attempt)."""
        if self._pending_known:
            return
        self._pending_known = self.informer._take_known(self.namespace)
        self._known_uid_by_key = {(k.namespace, k.name): uid for uid, k in self._pending_known.items()}

    def _deletions(self, seen: set[ObjectKey]) -> list[Event]:
        """Objects of the cache or of the known state that the completed list no longer has."""
        informer = self.informer
        deletions: list[Event] = []
        for key in self._keys_in_scope():
            if key not in seen:
                gone = informer.cache.remove(key)
                if gone is not None:
                    deletions.append(informer.make_event(EventType.DELETED, gone))
        for uid, previous in self._pending_known.items():
            deletions.append(
                informer.make_event(EventType.DELETED, tombstone(uid, previous, informer.resource))
            )
        return deletions

    def _keys_in_scope(self) -> list[ObjectKey]:
        keys = self.informer.cache.keys()
        if self.namespace is None:
            return keys
        return [key for key in keys if key[0] == self.namespace]

    # -- watch ----------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Watch from the last known version until the stream ends; raise on failure."""
        low, high = self.informer.options.watch_timeout_range
        params = self._params()
        params.update(
            resourceVersion=self.resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=random.randint(low, high),
        )
        started = time.monotonic()
        received = 0
        async with self.informer.client.watch(self._path, params) as stream:
            self._watch_open = True
            self.state = InformerState.WATCHING
            self.last_error = self.last_failure = None
            while True:
                try:
                    async with asyncio.timeout(self._stall_timeout):
                        batch = await stream.next_batch()
                except TimeoutError as error:
                    raise StalledWatch from error
                if batch is None:
                    break
                if batch:
                    self._silent_stalls = 0
                received += len(batch)
                if batch:
                    await self._apply(batch)
                    self._backoff.reset()
        if received == 0 and time.monotonic() - started < 1.0:
            # The server keeps ending watches at once: do not spin.
            await asyncio.sleep(self._backoff.next_delay())

    async def _apply(self, batch: list[JsonObject]) -> None:
        """Apply one chunk of watch events to the cache and report the changes.

        This is the hot path of ingest: metadata is read once per object, and one timestamp
        serves the whole chunk (its events arrived together).
        """
        informer = self.informer
        cache = informer.cache
        strip = informer.options.strip_managed_fields
        make_event = informer.make_event
        now = time.time()
        events: list[Event] = []
        for raw in batch:
            type_ = raw.get("type")
            obj = raw.get("object")
            if not isinstance(obj, dict):
                continue
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict):
                metadata = {}
            rv = metadata.get("resourceVersion") or ""
            if type_ == "BOOKMARK":
                self.resource_version = rv or self.resource_version
                continue
            if type_ == "ERROR":
                await informer.emit(events)
                raise api_error_from_status_object(obj)
            if strip:
                metadata.pop("managedFields", None)
            key = (metadata.get("namespace") or "", metadata.get("name") or "")
            if type_ == "DELETED":
                entry = cache.remove_entry(key)
                if entry is not None:
                    old, old_json = cache.old_state(entry)
                    events.append(make_event(EventType.DELETED, obj, old, now, old_json))
            elif type_ == "ADDED" or type_ == "MODIFIED":
                entry = cache.put_entry(key, obj)
                obj_json = cache.last_json
                if entry is None:
                    events.append(make_event(EventType.ADDED, obj, None, now, None, obj_json))
                else:
                    old_uid, old_rv = cache.identity(entry)
                    if old_uid != (metadata.get("uid") or ""):
                        events.append(make_event(EventType.DELETED, cache.unpack(entry), None, now))
                        events.append(make_event(EventType.ADDED, obj, None, now, None, obj_json))
                    elif old_rv != rv:
                        old, old_json = cache.old_state(entry)
                        events.append(make_event(EventType.MODIFIED, obj, old, now, old_json, obj_json))
            else:
                log.warning("%s: ignoring watch event of unknown type %r", self._where, type_)
                continue
            if rv:
                self.resource_version = rv
        await informer.emit(events)


def _same_state(previous: KnownObject, obj: JsonObject) -> bool:
    if previous.resource_version == object_resource_version(obj):
        return True
    return previous.content_hash is not None and previous.content_hash == content_hash(obj)


def tombstone(uid: str, previous: KnownObject, resource: ResourceInfo) -> JsonObject:
    """The last state we can name of an object known only by its ledger entry (deleted while
    nobody watched, say): its identity and last resourceVersion (see `is_tombstone`)."""
    metadata: dict[str, Any] = {
        "name": previous.name,
        "uid": uid,
        "resourceVersion": previous.resource_version,
    }
    if previous.namespace:
        metadata["namespace"] = previous.namespace
    return {
        "apiVersion": resource.group_version,
        "kind": resource.kind,
        "metadata": metadata,
    }


_TOMBSTONE_KEYS = frozenset(("apiVersion", "kind", "metadata"))
_TOMBSTONE_METADATA_KEYS = frozenset(("name", "namespace", "uid", "resourceVersion"))


def is_tombstone(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is what `tombstone` makes: no state of it is known but its identity.

    A stored object always has more metadata (at least `creationTimestamp`), so a filter
    over its content can tell that it has nothing to judge.
    """
    metadata = obj.get("metadata")
    return (
        isinstance(metadata, dict)
        and obj.keys() <= _TOMBSTONE_KEYS
        and metadata.keys() <= _TOMBSTONE_METADATA_KEYS
    )


def _strip_managed_fields(obj: JsonObject) -> None:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)


__all__ = [
    "EventSink",
    "Informer",
    "InformerOptions",
    "InformerState",
    "InformerStatus",
    "KnownObject",
    "is_tombstone",
    "tombstone",
]
