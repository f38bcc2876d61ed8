"""The objects an informer currently knows, queryable by namespace, name and labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from mic.kube.selectors import LabelSelector

KubeObject = dict[str, Any]
ObjectKey = tuple[str, str]  # (namespace or "", name)


def object_key(obj: KubeObject) -> ObjectKey:
    """(namespace, name) of an object; the namespace is "" for cluster-scoped objects."""
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


def object_uid(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def object_resource_version(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class ObjectCache:
    """Current objects of one informer, keyed by (namespace, name).

    Objects are the dicts decoded from the wire, shared, never copied: callers must treat
    them as read-only. A per-namespace index keeps namespace queries proportional to the
    namespace, not to the cluster. Subclasses change how an object is kept by overriding
    `_pack`/`_unpack` (see `CompactObjectCache`).
    """

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Any] = {}
        self._by_namespace: dict[str, dict[str, Any]] = {}
        self.last_json: bytes | None = None
        """The JSON bytes the latest `put`/`put_entry` kept, when the cache keeps objects so
        (a compact cache; None otherwise): an informer's event reuses them (`Event.object_json`)."""

    def _pack(self, obj: KubeObject) -> Any:
        """What the cache keeps for `obj`."""
        return obj

    def unpack(self, entry: Any) -> KubeObject:
        """The object an entry (from `put_entry`, `remove_entry`) stands for."""
        return self._unpack(entry)

    def _unpack(self, entry: Any) -> KubeObject:
        """The object an entry made by `_pack` stands for."""
        result: KubeObject = entry
        return result

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def get(self, namespace: str | None, name: str) -> KubeObject | None:
        return self.get_by_key((namespace or "", name))

    def get_by_key(self, key: ObjectKey) -> KubeObject | None:
        entry = self._objects.get(key)
        return None if entry is None else self._unpack(entry)

    def identity(self, entry: Any) -> tuple[str, str]:
        """(uid, resourceVersion) of the object an entry stands for, without decoding it."""
        metadata = entry.get("metadata") or {}
        return (metadata.get("uid") or "", metadata.get("resourceVersion") or "")

    def old_state(self, entry: Any) -> tuple[KubeObject | None, bytes | None]:
        """An entry as an event's old state: the object, or its JSON to decode on demand."""
        return entry, None

    def put(self, key: ObjectKey, obj: KubeObject) -> KubeObject | None:
        """Store `obj` under `key` and return the object it replaced, if any."""
        previous = self.put_entry(key, obj)
        return None if previous is None else self._unpack(previous)

    def put_entry(self, key: ObjectKey, obj: KubeObject) -> Any:
        """Store `obj` under `key`; return the replaced entry as kept (None if new).

        The informers' hot path: it reads the entry with `identity` and `old_state`, so a
        compact cache never decodes an old object nobody asks for, and `last_json`, so the
        event reuses the cache's encoding.
        """
        objects = self._objects
        previous = objects.get(key)
        entry = self._pack(obj)
        objects[key] = entry
        if previous is None:
            self._by_namespace.setdefault(key[0], {})[key[1]] = entry
        else:
            self._by_namespace[key[0]][key[1]] = entry
        return previous

    def remove(self, key: ObjectKey) -> KubeObject | None:
        """Drop the object under `key` and return it, if it was there."""
        previous = self.remove_entry(key)
        return None if previous is None else self._unpack(previous)

    def remove_entry(self, key: ObjectKey) -> Any:
        """Drop the object under `key`; return its entry as kept (None if absent)."""
        previous = self._objects.pop(key, None)
        if previous is None:
            return None
        names = self._by_namespace.get(key[0])
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self._by_namespace[key[0]]
        return previous

    def keys(self) -> list[ObjectKey]:
        return list(self._objects)

    def items(self) -> Iterator[tuple[ObjectKey, KubeObject]]:
        unpack = self._unpack
        for key, entry in list(self._objects.items()):
            yield key, unpack(entry)

    def clear(self) -> None:
        self._objects.clear()
        self._by_namespace.clear()

    def list(
        self,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
    ) -> list[KubeObject]:
        """Objects in `namespace` (all when None) matching `label_selector`, sorted by key."""
        unpack = self._unpack
        if namespace is None:
            candidates = [unpack(self._objects[key]) for key in sorted(self._objects)]
        else:
            names = self._by_namespace.get(namespace, {})
            candidates = [unpack(names[name]) for name in sorted(names)]
        if label_selector is None or label_selector.is_empty:
            return candidates
        return [
            obj for obj in candidates if label_selector.matches((obj.get("metadata") or {}).get("labels"))
        ]


class CompactObjectCache(ObjectCache):
    """A cache that keeps each object as its compact JSON bytes instead of a dict.

    Faster to ingest, too: an informer's event carries the replaced object as these bytes,
    decoded only if a consumer reads `Event.old_object`, and the decoded tree of each change
    is freed while still in the CPU's cache (a dict cache frees the tree it replaces, decoded
    many changes ago, from cold memory: a third of ingest time with 200 objects changing).

    A decoded Kubernetes object costs 4-6x its JSON size in Python dicts and strings; its
    JSON bytes cost little more than the JSON itself. The price is CPU: every read decodes
    (orjson, a few microseconds per KB) and every write encodes. Each read returns a fresh
    dict, so callers may keep or even change what they get.
    """

    def _pack(self, obj: KubeObject) -> tuple[str, str, bytes]:
        # uid and resourceVersion beside the JSON: the informer compares them on every change
        # (about 200 bytes an object), and that must not cost a decode. orjson returns its
        # growable buffer (4 KB at least) trimmed only in name; a copy of exactly the JSON's
        # length is what makes this cache small.
        metadata = obj.get("metadata") or {}
        self.last_json = encoded = bytes(memoryview(orjson.dumps(obj)))
        return (metadata.get("uid") or "", metadata.get("resourceVersion") or "", encoded)

    def _unpack(self, entry: Any) -> KubeObject:
        result: KubeObject = orjson.loads(entry[2])
        return result

    def identity(self, entry: Any) -> tuple[str, str]:
        return entry[0], entry[1]

    def old_state(self, entry: Any) -> tuple[KubeObject | None, bytes | None]:
        return None, entry[2]
