"""The pure half of API discovery: what a server serves, and what a user's resource name means.

The HTTP half fetches `/api/v1`, `/apis` and `/apis/{group}/{version}`; this module turns those
documents into a `ResourceCatalog` and resolves names the way kubectl does, so `ing`, `Ingress`,
`ingresses.networking.k8s.io` and `networking.k8s.io/v1/ingresses` all name the same thing.

Resolution order follows kubectl: plural and singular names beat short names, which beat kinds;
the core group beats every other group; within a group the server's preferred version wins.
Where kubectl would silently pick one of several non-core groups by a fixed priority list, we
raise `AmbiguousResourceError` so the user qualifies the name instead of getting a surprise.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from mic.kube.errors import AmbiguousResourceError, UnknownResourceError
from mic.kube.resources import ResourceInfo

__all__ = [
    "ResourceCatalog",
    "catalog_from_api_group_list",
    "preferred_versions",
    "served_group_versions",
    "version_priority",
]

_KUBE_VERSION_RE: Final = re.compile(r"v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?")
_STABILITY: Final = {None: 0, "beta": 1, "alpha": 2}


def version_priority(version: str) -> tuple[int, int, int, int, str]:
    """A sort key putting versions in Kubernetes' order of preference (smallest first).

    As apimachinery's `CompareKubeAwareVersionStrings`: GA before beta before alpha, higher
    numbers first within each (v2, v1, v2beta1, v1beta2, v1alpha1), then other strings
    alphabetically. Used when the server did not tell us a group's preferred version.
    """
    match = _KUBE_VERSION_RE.fullmatch(version)
    if match is None:
        return (1, 0, 0, 0, version)
    major, stability, minor = match.groups()
    return (0, _STABILITY[stability], -int(major), -int(minor or 0), "")


def _split_group_version(group_version: str) -> tuple[str, str]:
    """`networking.k8s.io/v1` → (`networking.k8s.io`, `v1`); `v1` → (``, `v1`)."""
    group, slash, version = group_version.rpartition("/")
    if not version or "/" in group or (slash and not group):
        raise ValueError(f"invalid groupVersion {group_version!r}: expected 'version' or 'group/version'")
    return group, version


def preferred_versions(api_group_list: Mapping[str, Any]) -> dict[str, str]:
    """{group: preferred version} from an APIGroupList (the `/apis` document).

    A group without `preferredVersion` gets the first of its `versions`, which servers list
    in order of preference.
    """
    preferred: dict[str, str] = {}
    for group in _groups_of(api_group_list):
        name = group.get("name")
        if not isinstance(name, str):
            raise ValueError("invalid APIGroupList: a group has no name")
        choice = (group.get("preferredVersion") or {}).get("version")
        if not choice:
            versions = group.get("versions") or []
            choice = versions[0].get("version") if versions else None
        if choice:
            preferred[name] = choice
    return preferred


def served_group_versions(api_group_list: Mapping[str, Any]) -> list[str]:
    """Every `group/version` an APIGroupList names, preferred version first within each group.

    These are the `/apis/{group}/{version}` documents to fetch for `ResourceCatalog.from_discovery`.
    """
    served: list[str] = []
    for group in _groups_of(api_group_list):
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        listed = [v.get("groupVersion") for v in group.get("versions") or []]
        for group_version in [preferred, *listed]:
            if isinstance(group_version, str) and group_version and group_version not in served:
                served.append(group_version)
    return served


def _groups_of(api_group_list: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    groups = api_group_list.get("groups") if isinstance(api_group_list, Mapping) else None
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        raise ValueError("invalid APIGroupList: 'groups' must be a list of objects")
    return groups


def _resources_of(document: Mapping[str, Any], group_version: str) -> list[ResourceInfo]:
    """The top-level resources of one APIResourceList (subresources such as `pods/log` skipped)."""
    if not isinstance(document, Mapping):
        raise ValueError(f"invalid APIResourceList for {group_version!r}: not an object")
    group, version = _split_group_version(document.get("groupVersion") or group_version)
    entries = document.get("resources")
    if entries is None:  # an empty group version (all its resources are being deleted)
        entries = []
    if not isinstance(entries, list):
        raise ValueError(f"invalid APIResourceList for {group_version!r}: 'resources' must be a list")
    resources: list[ResourceInfo] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        kind = entry.get("kind") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
            raise ValueError(f"invalid APIResourceList for {group_version!r}: a resource lacks name or kind")
        if "/" in name:
            continue
        resources.append(
            ResourceInfo(
                group=group,
                version=version,
                resource=name,
                kind=kind,
                namespaced=bool(entry.get("namespaced", False)),
                # Servers before 1.9 leave singularName empty; kubectl then uses the lowercased kind.
                singular=entry.get("singularName") or kind.lower(),
                short_names=tuple(entry.get("shortNames") or ()),
                verbs=tuple(entry.get("verbs") or ()),
                categories=tuple(entry.get("categories") or ()),
            )
        )
    return resources


class ResourceCatalog:
    """Every resource one API server serves, indexed for kubectl-style name resolution.

    Immutable: re-discovery builds a new catalog (`merged_with`), so a catalog shared between
    tasks never changes under them, and `resolve` can cache its answers.
    """

    __slots__ = (
        "_by_gvr",
        "_by_kind",
        "_by_name",
        "_by_short",
        "_known",
        "_preferred",
        "_resolved",
        "unavailable",
    )

    def __init__(
        self,
        resources: Iterable[ResourceInfo] = (),
        preferred: Mapping[str, str] | None = None,
        *,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        """`resources` in discovery order; `preferred` maps a group to its preferred version.

        `unavailable` maps a `group/version` whose discovery document could not be fetched (an
        aggregated API whose backend is down) to why: its resources are missing from this
        catalog for now, which is not the same as the server not serving them.
        """
        self.unavailable: dict[str, str] = dict(unavailable or {})
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        for info in resources:
            self._by_gvr.setdefault((info.group, info.version, info.resource), info)
        self._preferred = dict(preferred or {})
        self._by_name: dict[str, list[ResourceInfo]] = {}
        self._by_short: dict[str, list[ResourceInfo]] = {}
        self._by_kind: dict[str, list[ResourceInfo]] = {}
        for info in self._by_gvr.values():
            for name in {info.resource.lower(), info.singular.lower()}:
                self._by_name.setdefault(name, []).append(info)
            for short in {s.lower() for s in info.short_names}:
                self._by_short.setdefault(short, []).append(info)
            self._by_kind.setdefault(info.kind.lower(), []).append(info)
        self._resolved: dict[str, ResourceInfo] = {}
        self._known: tuple[str, ...] | None = None

    @classmethod
    def from_discovery(
        cls,
        core: Mapping[str, Any] | None,
        groups: Mapping[str, Mapping[str, Any]],
        *,
        group_list: Mapping[str, Any] | None = None,
        preferred: Mapping[str, str] | None = None,
    ) -> ResourceCatalog:
        """Build from the server's APIResourceList documents.

        `core` is `/api/v1` (None if not fetched); `groups` maps `group/version` to the document
        of `/apis/{group}/{version}` (its own `groupVersion` field wins when present).
        Each group's preferred version comes from `group_list` (the `/apis` APIGroupList),
        overridden by `preferred` ({group: version}); for a group neither mentions, the most
        stable version by `version_priority` is preferred. Raises ValueError naming the
        group/version of a malformed document.
        """
        resources: list[ResourceInfo] = []
        if core is not None:
            resources.extend(_resources_of(core, "v1"))
        for group_version, document in groups.items():
            resources.extend(_resources_of(document, group_version))
        choices = preferred_versions(group_list) if group_list is not None else {}
        choices.update(preferred or {})
        return cls(resources, choices)

    def all(self) -> tuple[ResourceInfo, ...]:
        """Every resource, every served version, in discovery order."""
        return tuple(self._by_gvr.values())

    def __iter__(self) -> Iterator[ResourceInfo]:
        return iter(self._by_gvr.values())

    def __len__(self) -> int:
        return len(self._by_gvr)

    def by_group_version_resource(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        """The exact resource (core group is ""), or None if the server does not serve it."""
        return self._by_gvr.get((group, version, resource))

    def is_unavailable(self, group: str, version: str) -> bool:
        """Whether `group/version` (core: `v1`) could not be discovered this time."""
        return (f"{group}/{version}" if group else version) in self.unavailable

    def preferred_version(self, group: str) -> str | None:
        """The version of `group` that unqualified names resolve to, or None for an unknown group."""
        versions = {info.version for info in self._by_gvr.values() if info.group == group}
        return self._pick_version(group, versions) if versions else None

    def merged_with(self, other: ResourceCatalog) -> ResourceCatalog:
        """A catalog where each group `other` has resources in is replaced by `other`'s view of it.

        For re-discovery when a CRD is added or changes versions: rediscover the affected
        groups (all their versions, since a version missing from `other` is dropped) and
        merge. Other groups keep their resources; `other`'s preferred versions win.
        Use `without_groups` for a group that is no longer served at all.
        """
        replaced = {info.group for info in other}
        kept = [info for info in self if info.group not in replaced]
        return ResourceCatalog([*kept, *other], {**self._preferred, **other._preferred})

    def without_groups(self, groups: Iterable[str]) -> ResourceCatalog:
        """A catalog without these API groups (their CRDs were deleted, their APIService removed)."""
        gone = set(groups)
        kept = [info for info in self if info.group not in gone]
        return ResourceCatalog(kept, {g: v for g, v in self._preferred.items() if g not in gone})

    def known_names(self) -> tuple[str, ...]:
        """Every name `resolve` accepts unqualified, plus `resource.group`: for completion and hints."""
        if self._known is None:
            names: set[str] = set()
            for info in self:
                names.update((info.resource, info.singular, info.qualified_name, *info.short_names))
            self._known = tuple(sorted(names))
        return self._known

    def resolve(self, name: str) -> ResourceInfo:
        """The resource a user means by `name`, as kubectl would resolve it.

        Accepts `ingresses`, `ingress`, `ing`, `Ingress`, `ingresses.networking.k8s.io`,
        `ingresses.v1.networking.k8s.io`, `Ingress.networking.k8s.io`,
        `networking.k8s.io/v1/ingresses` and, for the core group, `v1/pods`.
        Raises `UnknownResourceError` (with close matches) or `AmbiguousResourceError`.
        """
        cached = self._resolved.get(name)
        if cached is not None:
            return cached
        info = self._resolve(name.strip().lower(), name)
        if info is None:
            raise UnknownResourceError(name, self._suggestions(name.strip().lower()))
        self._resolved[name] = info
        return info

    def _resolve(self, key: str, typed: str) -> ResourceInfo | None:
        if "/" in key:
            parts = key.split("/")
            if len(parts) == 3:  # group/version/resource
                return self._find(parts[2], typed, group=parts[0], version=parts[1])
            if len(parts) == 2:  # version/resource (core), else group/resource
                return self._find(parts[1], typed, group="", version=parts[0]) or self._find(
                    parts[1], typed, group=parts[0]
                )
            return None
        name, dot, rest = key.partition(".")
        if not dot:
            return self._find(name, typed)
        # As kubectl's ParseResourceArg: `name.version.group` if that group/version exists,
        # otherwise `name.group` (`ingresses.networking.k8s.io` is not version `networking`).
        version, dot, group = rest.partition(".")
        if dot:
            found = self._find(name, typed, group=group, version=version)
            if found is not None:
                return found
        return self._find(name, typed, group=rest)

    def _find(
        self, name: str, typed: str, *, group: str | None = None, version: str | None = None
    ) -> ResourceInfo | None:
        """Resolve `name` within an optional group and version.

        Plural/singular names beat short names, which beat kinds (kubectl expands a short name
        only when no resource has it as its name).
        """
        for index in (self._by_name, self._by_short, self._by_kind):
            candidates = [
                info
                for info in index.get(name, ())
                if (group is None or info.group == group) and (version is None or info.version == version)
            ]
            if candidates:
                return self._choose(candidates, typed)
        return None

    def _choose(self, candidates: list[ResourceInfo], typed: str) -> ResourceInfo:
        """Core group first, else the only group; then the group's preferred version."""
        groups = {info.group for info in candidates}
        if "" in groups:
            group = ""
        elif len(groups) == 1:
            (group,) = groups
        else:
            qualified = sorted({info.qualified_name for info in candidates})
            raise AmbiguousResourceError(typed, qualified)
        in_group = [info for info in candidates if info.group == group]
        version = self._pick_version(group, {info.version for info in in_group})
        return next(info for info in in_group if info.version == version)

    def _pick_version(self, group: str, versions: set[str]) -> str:
        preferred = self._preferred.get(group)
        if preferred is not None and preferred in versions:
            return preferred
        return min(versions, key=version_priority)

    def _suggestions(self, key: str) -> list[str]:
        return difflib.get_close_matches(key, self.known_names(), n=3)

    def __repr__(self) -> str:
        return f"ResourceCatalog({len(self)} resources)"


def catalog_from_api_group_list(
    api_group_list: Mapping[str, Any],
    core: Mapping[str, Any] | None,
    groups: Mapping[str, Mapping[str, Any]],
) -> ResourceCatalog:
    """`ResourceCatalog.from_discovery` with preferred versions taken from `/apis` (APIGroupList)."""
    return ResourceCatalog.from_discovery(core, groups, group_list=api_group_list)
