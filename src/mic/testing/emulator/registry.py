"""Which resource types are served right now, and the discovery documents that describe them.

Built-ins are registered at start; CustomResourceDefinitions add and remove types at runtime,
so discovery is always computed from the registry, never cached.
"""

from __future__ import annotations

from typing import Any

from mic.testing.emulator.resources import BUILTIN_TYPES, ResourceType


class ResourceRegistry:
    """Served resource types, looked up by URL parts or by a kubectl-style name."""

    def __init__(self) -> None:
        self._types: dict[str, ResourceType] = {}
        for rt in BUILTIN_TYPES:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types[rt.key] = rt

    def remove(self, key: str) -> ResourceType | None:
        return self._types.pop(key, None)

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def by_key(self, key: str) -> ResourceType | None:
        return self._types.get(key)

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at `/apis/{group}/{version}/{plural}` (or `/api/v1/{plural}`)."""
        rt = self._types.get(f"{plural}.{group}" if group else plural)
        if rt is None or version not in rt.served_versions:
            return None
        return rt

    def resolve(self, name: str) -> ResourceType | None:
        """A resource from `pods`, `po`, `Pod`, `ingresses`, `ingresses.networking.k8s.io` or `ing`.

        Core types win a name several groups share, as with kubectl.
        """
        if name in self._types:
            return self._types[name]
        lowered = name.lower()
        matches = [
            rt
            for rt in self._types.values()
            if lowered in (rt.plural, rt.singular, rt.kind.lower()) or lowered in rt.short_names
        ]
        matches.sort(key=lambda rt: rt.group != "")
        return matches[0] if matches else None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.kind == kind and version in rt.served_versions:
                return rt
        return None

    # -- discovery documents ------------------------------------------------------------

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (storage version first), in registration order."""
        out: dict[str, list[str]] = {}
        for rt in self._types.values():
            versions = out.setdefault(rt.group, [])
            for v in (rt.version, *rt.served_versions):
                if v not in versions:
                    versions.append(v)
        return out

    def api_group(self, name: str) -> dict[str, Any] | None:
        versions = self.groups().get(name)
        if not name or not versions:
            return None
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(name) for name in self.groups() if name]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """The `APIResourceList` of one group/version, None when nothing is served there."""
        types = [rt for rt in self._types.values() if rt.group == group and version in rt.served_versions]
        if not types:
            return None
        resources = [entry for rt in types for entry in rt.discovery_entries()]
        if not group:
            # kube's /api/v1 document has no apiVersion, /apis/{g}/{v} documents do.
            return {"kind": "APIResourceList", "groupVersion": version, "resources": resources}
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": resources,
        }
