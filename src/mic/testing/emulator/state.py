"""The emulated cluster's data: objects, the global resourceVersion, the change history.

Everything here is synchronous on purpose: a mutation, its history entry and its fan-out to
open watches happen without an `await` in between, so no watcher can see a state that skips
or reorders an event, and a new watch's "snapshot, then subscribe" is atomic.

One counter numbers every change of every resource (as etcd's revision does); the bounded
history is global too, so a busy resource can push a quiet one's old versions out of reach,
exactly the way a busy cluster expires a quiet informer's resourceVersion.
"""

from __future__ import annotations

import base64
import binascii
import random
import uuid
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from mic.testing.emulator import errors
from mic.testing.emulator.crds import crd_resource_type, crd_status
from mic.testing.emulator.errors import StatusError
from mic.testing.emulator.registry import ResourceRegistry
from mic.testing.emulator.resources import CRD_RESOURCE, NAMESPACES, ResourceType
from mic.testing.emulator.selectors import FieldSelector, LabelSelector

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # kube's generateName alphabet
_SNAPSHOT_CACHE = 8
_EXPIRED_LIST = "The resourceVersion for the provided list is too old."
_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve "
    "the remainder of the results. Continuing with the provided token results in an inconsistent list "
    "- objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list."
)


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deep_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """An independent copy; stored objects are never shared with callers or mutated in place."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return copied


def object_key(namespace: str, name: str) -> str:
    """The sort key of an object, ordered like etcd's `/registry/<resource>/<ns>/<name>` keys."""
    return f"{namespace}/{name}" if namespace else name


@dataclass(slots=True)
class Change:
    """One history entry: `obj` is the state after the change (for DELETED, the last state
    with the deletion's resourceVersion), `prev` the state before it."""

    rv: int
    resource: str
    type: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    _line: bytes | None = field(default=None, repr=False)

    def line(self) -> bytes:
        """The watch-stream line for this change, encoded once and shared by every watcher."""
        if self._line is None:
            self._line = encode_event(self.type, self.obj)
        return self._line


def encode_event(event_type: str, obj: dict[str, Any]) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + orjson.dumps(obj) + b"}\n"


class Subscriber(Protocol):
    """What the state needs from an open watch: take one change, synchronously."""

    def offer(self, change: Change) -> None: ...

    def close(self, how: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[dict[str, Any]]
    resource_version: int
    continue_token: str | None
    remaining: int | None


def _with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta["resourceVersion"] = str(rv)
    out = dict(obj)
    out["metadata"] = meta
    return out


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


_META_SYSTEM = ("resourceVersion", "generation", "managedFields")


class ClusterState:
    """Objects by resource, the resourceVersion counter, history, open watches."""

    def __init__(self, history_size: int = 1000, *, short_pages: bool = False) -> None:
        self.registry = ResourceRegistry()
        # Paged lists read at most `limit` stored objects per page, so a selective selector
        # gives short (even empty) pages with a continue token. The API contract allows it,
        # but kube's etcd3 storage and watch cache keep reading until a page is full, so it is
        # off unless a test asks for it.
        self.short_pages = short_pages
        self.rv = 0
        self.history: deque[Change] = deque(maxlen=max(1, history_size))
        # Watches from a resourceVersion below `floor` cannot be served (410): the changes
        # after it are no longer all retained.
        self.floor = 0
        self._objects: dict[str, dict[str, dict[str, Any]]] = {rt.key: {} for rt in self.registry.all()}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._snapshots: OrderedDict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = OrderedDict()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.registry.resolve(NAMESPACES), {"metadata": {"name": ns}})  # type: ignore[arg-type]

    # -- bookkeeping --------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _record(self, change: Change) -> None:
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0].rv
        self.history.append(change)
        for sub in list(self._subscribers.get(change.resource, ())):
            sub.offer(change)

    def compact(self, keep: int = 0) -> None:
        """Forget all but the newest `keep` changes, so older resourceVersions become 410."""
        keep = max(0, keep)
        while len(self.history) > keep:
            self.floor = self.history.popleft().rv
        if keep == 0:
            self.floor = self.rv
        self._snapshots.clear()

    def subscribe(self, key: str, sub: Subscriber) -> None:
        self._subscribers.setdefault(key, set()).add(sub)

    def unsubscribe(self, key: str, sub: Subscriber) -> None:
        subs = self._subscribers.get(key)
        if subs is not None:
            subs.discard(sub)

    def subscribers(self) -> list[Subscriber]:
        return [s for subs in self._subscribers.values() for s in subs]

    def changes_since(self, key: str, rv: int) -> list[Change]:
        """Retained changes of one resource after `rv`; 410 when some may have been dropped."""
        if rv < self.floor:
            raise errors.gone(f"too old resource version: {rv} ({self.floor})")
        return [c for c in self.history if c.rv > rv and c.resource == key]

    # -- reads --------------------------------------------------------------------------

    def type_for(self, resource: str) -> ResourceType:
        """A served type by kubectl-style name, or a 404 the way kube words it."""
        rt = self.registry.resolve(resource)
        if rt is None:
            raise errors.page_not_found()
        return rt

    def _bucket(self, rt: ResourceType) -> dict[str, dict[str, Any]]:
        return self._objects.setdefault(rt.key, {})

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self._bucket(rt).get(object_key(namespace if rt.namespaced else "", name))
        if obj is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return obj

    def find(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self._bucket(rt).get(object_key(namespace if rt.namespaced else "", name))

    def objects(self, rt: ResourceType) -> list[dict[str, Any]]:
        """Current objects of a type, in key order."""
        bucket = self._bucket(rt)
        return [bucket[k] for k in sorted(bucket)]

    def _objects_at(self, rt: ResourceType, rv: int) -> list[tuple[str, dict[str, Any]]]:
        """The type's objects as they were at `rv`, rebuilt by undoing newer history (MVCC)."""
        if rv < self.floor:
            raise errors.gone(f"too old resource version: {rv} ({self.floor})")
        cache_key = (rt.key, rv)
        cached = self._snapshots.get(cache_key)
        if cached is not None:
            self._snapshots.move_to_end(cache_key)
            return cached
        if rv > self.rv:
            raise errors.too_large_resource_version(rv, self.rv)
        objs = dict(self._bucket(rt))
        for change in reversed(self.history):
            if change.rv <= rv:
                break
            if change.resource != rt.key:
                continue
            meta = change.obj["metadata"]
            key = object_key(meta.get("namespace", ""), meta["name"])
            if change.type == ADDED:
                objs.pop(key, None)
            elif change.prev is not None:
                objs[key] = change.prev
        snapshot = sorted(objs.items())
        self._snapshots[cache_key] = snapshot
        while len(self._snapshots) > _SNAPSHOT_CACHE:
            self._snapshots.popitem(last=False)
        return snapshot

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: int | None = None,
    ) -> ListPage:
        """One page of a list, consistent at one resourceVersion across continue tokens.

        `resource_version` None means "the current state"; a number means the state at
        exactly that version (kube's resourceVersionMatch=Exact), rebuilt from history.
        """
        start = ""
        if continue_token:
            rv, start = decode_continue(continue_token)
            try:
                snapshot = self._objects_at(rt, rv)
            except StatusError as exc:
                if exc.code == 410:
                    raise errors.gone(_INCONSISTENT_CONTINUE) from None
                raise
        else:
            rv = self.rv if resource_version is None else resource_version
            try:
                snapshot = self._objects_at(rt, rv) if rv != self.rv else sorted(self._bucket(rt).items())
            except StatusError as exc:
                if exc.code == 410:
                    # etcd3's interpretListError: a paged list answers as for an old token.
                    raise errors.gone(_INCONSISTENT_CONTINUE if limit else _EXPIRED_LIST) from None
                raise
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        filtered = not labels.empty or not fields.empty
        # Keys sort by namespace then name, so one namespace is a contiguous range.
        prefix = f"{namespace}/" if rt.namespaced and namespace else ""
        lo = bisect_left(snapshot, max(start, prefix), key=_first)
        hi = bisect_left(snapshot, f"{namespace}0", key=_first) if prefix else len(snapshot)
        items: list[dict[str, Any]] = []
        next_key: str | None = None
        index = lo
        scanned = 0
        for index in range(lo, hi):
            key, obj = snapshot[index]
            if limit and (scanned if self.short_pages else len(items)) == limit:
                next_key = key
                break
            scanned += 1
            if filtered and not (labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)):
                continue
            items.append(obj)
        if next_key is None:
            return ListPage(items, rv, None, None)
        if rv == self.rv and (rt.key, rv) not in self._snapshots:
            self._snapshots[(rt.key, rv)] = snapshot
            while len(self._snapshots) > _SNAPSHOT_CACHE:
                self._snapshots.popitem(last=False)
        # kube reports remainingItemCount only when it can count without filtering.
        remaining = None if filtered else hi - index
        return ListPage(items, rv, encode_continue(rv, next_key), remaining)

    # -- writes -------------------------------------------------------------------------

    @staticmethod
    def _stamp(rt: ResourceType, obj: dict[str, Any], version: str | None) -> dict[str, Any]:
        """`obj` with kind and apiVersion first, as kube serializes objects."""
        body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        return {"kind": rt.kind, "apiVersion": rt.api_version_for(version or rt.version), **body}

    def create(
        self, rt: ResourceType, obj: dict[str, Any], namespace: str = "", version: str | None = None
    ) -> dict[str, Any]:
        """Store a new object; 409 if it exists, 404 if its namespace does not."""
        obj = deep_copy(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
            meta["name"] = name
        if not name:
            raise errors.invalid(
                rt.kind, "", rt.group, [("metadata.name", "Required value: name or generateName is required")]
            )
        body_ns = meta.get("namespace") or ""
        if rt.namespaced:
            namespace = namespace or body_ns or "default"
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            ns_obj = self.find(self.type_for(NAMESPACES), "", namespace)
            if ns_obj is None:
                raise errors.not_found("namespaces", namespace)
            if ns_obj["metadata"].get("deletionTimestamp"):
                raise StatusError(
                    403,
                    "Forbidden",
                    f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace '
                    f"{namespace} because it is being terminated",
                )
        else:
            meta.pop("namespace", None)
        key = object_key(meta.get("namespace", ""), name)
        bucket = self._bucket(rt)
        if key in bucket:
            raise errors.already_exists(rt.plural, name, rt.group)
        obj = self._stamp(rt, obj, version)
        created = now_rfc3339()
        for system in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(system, None)
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = created
        if rt.key == NAMESPACES:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        if rt.key == CRD_RESOURCE:
            new_type = crd_resource_type(obj)
            existing = self.registry.by_key(new_type.key)
            if existing is not None and existing.builtin:
                raise errors.invalid(
                    "CustomResourceDefinition",
                    name,
                    "apiextensions.k8s.io",
                    [("spec.group", f'Invalid value: "{new_type.group}": is a built-in group')],
                )
            obj["status"] = crd_status(obj, created)
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        bucket[key] = obj
        if rt.key == CRD_RESOURCE:
            self.registry.add(crd_resource_type(obj))
        self._record(Change(rv, rt.key, ADDED, obj, None))
        return obj

    def update(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        namespace: str = "",
        name: str | None = None,
        subresource: str = "",
        version: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object (PUT semantics); 409 on a stale metadata.resourceVersion.

        A main-resource update keeps the old status of types with a status subresource; a
        `status` update changes only the status. An update that changes nothing is not a
        change: no new resourceVersion, no watch event (as kube does).
        """
        obj = deep_copy(obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        url_name = name or meta.get("name") or ""
        if meta.get("name") and meta["name"] != url_name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({url_name})"
            )
        namespace = (namespace or meta.get("namespace") or "default") if rt.namespaced else ""
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        key = object_key(namespace, url_name)
        bucket = self._bucket(rt)
        old = bucket.get(key)
        if old is None:
            raise errors.not_found(rt.plural, url_name, rt.group)
        old_meta = old["metadata"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, url_name, rt.group)
        if subresource == "status":
            new = dict(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            new["metadata"] = dict(old_meta)
        else:
            new = obj
            new_meta = dict(meta)
            for system in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if system in old_meta:
                    new_meta[system] = old_meta[system]
                else:
                    new_meta.pop(system, None)
            new_meta["name"] = url_name
            if rt.namespaced:
                new_meta["namespace"] = namespace
            else:
                new_meta.pop("namespace", None)
            new_meta["generation"] = old_meta.get("generation", 1)
            new_meta["resourceVersion"] = old_meta["resourceVersion"]
            new_meta.pop("managedFields", None)
            new["metadata"] = new_meta
            if rt.has_status or rt.key == NAMESPACES:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if rt.key == NAMESPACES:
                new_meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = url_name
            if rt.key == CRD_RESOURCE:
                crd_resource_type(new)
                new["status"] = crd_status(new, now_rfc3339())
        new = self._stamp(rt, new, version or old["apiVersion"].rpartition("/")[2])
        if new == old:
            return old
        if _without(new, "metadata", "status") != _without(old, "metadata", "status"):
            new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        rv = self._next_rv()
        new["metadata"]["resourceVersion"] = str(rv)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The update that removes the last finalizer is not stored: as in kube, the object
            # goes and watches get its last stored state (selectors decide on that state).
            del bucket[key]
            gone = dict(old, metadata=dict(old["metadata"], resourceVersion=str(rv)))
            self._record(Change(rv, rt.key, DELETED, gone, old))
            return gone
        bucket[key] = new
        if rt.key == CRD_RESOURCE:
            self.registry.add(crd_resource_type(new))
        self._record(Change(rv, rt.key, MODIFIED, new, old))
        return new

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Delete an object; returns (last state, deleted now?).

        An object with finalizers is only marked (deletionTimestamp, MODIFIED event) and goes
        away when an update removes its last finalizer. Deleting a namespace deletes its
        contents; deleting a CRD deletes its objects and stops serving the type.
        """
        namespace = namespace if rt.namespaced else ""
        key = object_key(namespace, name)
        bucket = self._bucket(rt)
        old = bucket.get(key)
        if old is None:
            raise errors.not_found(rt.plural, name, rt.group)
        old_meta = old["metadata"]
        if uid and uid != old_meta.get("uid"):
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_meta.get('uid')}",
            )
        if resource_version and resource_version != old_meta.get("resourceVersion"):
            raise errors.conflict(
                rt.plural,
                name,
                rt.group,
                f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                f"ResourceVersion in object meta: {old_meta.get('resourceVersion')}",
            )
        if old_meta.get("finalizers") and rt.key != NAMESPACES:
            if old_meta.get("deletionTimestamp"):
                return old, False
            marked = dict(old)
            marked["metadata"] = dict(old_meta, deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0)
            rv = self._next_rv()
            marked["metadata"]["resourceVersion"] = str(rv)
            bucket[key] = marked
            self._record(Change(rv, rt.key, MODIFIED, marked, old))
            return marked, False
        if rt.key == NAMESPACES:
            for other in self.registry.all():
                if other.namespaced:
                    for obj in [
                        o for o in self._bucket(other).values() if o["metadata"].get("namespace") == name
                    ]:
                        self._remove(other, obj)
        if rt.key == CRD_RESOURCE:
            served = crd_resource_type(old)
            for obj in list(self._bucket(served).values()):
                self._remove(served, obj)
            self.registry.remove(served.key)
            self._objects.pop(served.key, None)
            for sub in list(self._subscribers.pop(served.key, ())):
                sub.close("ended")
        gone = self._remove(rt, old)
        return gone, True

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        del self._bucket(rt)[object_key(meta.get("namespace", "") if rt.namespaced else "", meta["name"])]
        rv = self._next_rv()
        final = _with_rv(obj, rv)
        self._record(Change(rv, rt.key, DELETED, final, obj))
        return final

    def iter_types(self) -> Iterator[ResourceType]:
        return iter(self.registry.all())


def encode_continue(rv: int, start: str) -> str:
    """kube's continue token format: base64 JSON {"v", "rv", "start"}; `start` is the next key."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        rv, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("unknown version")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from None
    return rv, start


def strip_type_meta(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """List items without kind/apiVersion, as kube's typed (built-in) list encoding has them."""
    return [_without(item, "kind", "apiVersion") for item in items]
