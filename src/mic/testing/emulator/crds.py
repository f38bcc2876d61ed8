"""What a CustomResourceDefinition object means to the emulator: a resource type to serve.

kube-apiserver validates far more than this; the emulator checks only what it needs to serve
the resource (group, names, scope, at least one served version) so tests fail loudly on a CRD
that kube would reject for those reasons.
"""

from __future__ import annotations

from typing import Any

from mic.testing.emulator.errors import invalid
from mic.testing.emulator.resources import ResourceType, custom_resource_type


def crd_resource_type(crd: dict[str, Any]) -> ResourceType:
    """The type a CRD declares; a 422 Invalid `StatusError` names the first bad field."""
    name = str(crd.get("metadata", {}).get("name", ""))
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    kind = names.get("kind") or ""
    scope = spec.get("scope") or ""
    causes: list[tuple[str, str]] = []
    if not group:
        causes.append(("spec.group", "Required value"))
    if not plural:
        causes.append(("spec.names.plural", "Required value"))
    if not kind:
        causes.append(("spec.names.kind", "Required value"))
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            ("spec.scope", f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"')
        )
    if group and plural and name != f"{plural}.{group}":
        causes.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("name")]
    served = tuple(str(v["name"]) for v in versions if v.get("served", True))
    storage = [str(v["name"]) for v in versions if v.get("storage")]
    if not served:
        causes.append(("spec.versions", "Invalid value: must have at least one served version"))
    if len(storage) != 1:
        causes.append(
            ("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    if causes:
        raise invalid("CustomResourceDefinition", name, "apiextensions.k8s.io", causes)
    has_status = any("status" in (v.get("subresources") or {}) for v in versions)
    return custom_resource_type(
        group=group,
        versions=served,
        storage_version=storage[0],
        kind=kind,
        plural=plural,
        singular=names.get("singular") or "",
        namespaced=scope == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        has_status=has_status,
        list_kind=names.get("listKind") or "",
    )


def crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status kube's CRD controllers settle on for an accepted CRD (names accepted, established)."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    storage = [v["name"] for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")]
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    return {"conditions": conditions, "acceptedNames": names, "storedVersions": storage}


def crd_object(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    singular: str = "",
) -> dict[str, Any]:
    """A minimal CRD object declaring one served+storage version with a status subresource."""
    names: dict[str, Any] = {"plural": plural, "singular": singular or kind.lower(), "kind": kind}
    if short_names:
        names["shortNames"] = list(short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                    "subresources": {"status": {}},
                }
            ],
        },
    }
