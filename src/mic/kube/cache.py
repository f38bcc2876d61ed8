"""The objects an informer currently knows, queryable by namespace, name and labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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
    namespace, not to the cluster.
    """

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, KubeObject] = {}
        self._by_namespace: dict[str, dict[str, KubeObject]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def get(self, namespace: str | None, name: str) -> KubeObject | None:
        return self._objects.get((namespace or "", name))

    def get_by_key(self, key: ObjectKey) -> KubeObject | None:
        return self._objects.get(key)

    def put(self, key: ObjectKey, obj: KubeObject) -> KubeObject | None:
        """Store `obj` under `key` and return the object it replaced, if any."""
        previous = self._objects.get(key)
        self._objects[key] = obj
        self._by_namespace.setdefault(key[0], {})[key[1]] = obj
        return previous

    def remove(self, key: ObjectKey) -> KubeObject | None:
        """Drop the object under `key` and return it, if it was there."""
        previous = self._objects.pop(key, None)
        if previous is not None:
            names = self._by_namespace.get(key[0])
            if names is not None:
                names.pop(key[1], None)
                if not names:
                    del self._by_namespace[key[0]]
        return previous

    def keys(self) -> list[ObjectKey]:
        return list(self._objects)

    def items(self) -> Iterator[tuple[ObjectKey, KubeObject]]:
        return iter(list(self._objects.items()))

    def clear(self) -> None:
        self._objects.clear()
        self._by_namespace.clear()

    def list(
        self,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
    ) -> list[KubeObject]:
        """Objects in `namespace` (all when None) matching `label_selector`, sorted by key."""
        if namespace is None:
            candidates = [self._objects[key] for key in sorted(self._objects)]
        else:
            names = self._by_namespace.get(namespace, {})
            candidates = [names[name] for name in sorted(names)]
        if label_selector is None or label_selector.is_empty:
            return candidates
        return [
            obj for obj in candidates if label_selector.matches((obj.get("metadata") or {}).get("labels"))
        ]
