"""The resource types the emulator serves: kube's built-ins and CRD-defined custom resources.

Each `ResourceType` carries what discovery reports (names, kind, verbs, shortNames) and the
few per-type behaviours that clients can observe (status subresource, what DELETE returns,
which fields `fieldSelector` supports, whether list items carry kind/apiVersion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mic.testing.emulator.selectors import COMMON_FIELDS

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource, e.g. `networking.k8s.io` `v1` `ingresses` (kind `Ingress`).

    `versions` lists every served version (custom resources may serve several; objects are
    stored once and reported with the requested version's apiVersion). `version` is the
    storage version. `builtin` types omit kind/apiVersion on list items, as kube's typed
    encoders do; custom resources keep them, as kube's unstructured encoder does.
    """

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    has_status: bool = False
    returns_deleted_object: bool = False
    builtin: bool = True
    field_selectors: tuple[str, ...] = COMMON_FIELDS
    verbs: tuple[str, ...] = STANDARD_VERBS
    list_kind: str = field(default="")

    @property
    def key(self) -> str:
        """`pods` or `ingresses.networking.k8s.io`: the emulator's (and kubectl's) resource name."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def api_version_for(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def served_versions(self) -> tuple[str, ...]:
        return self.versions or (self.version,)

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def discovery_entries(self) -> list[dict[str, Any]]:
        """This type's entries in an `APIResourceList` (the resource, then `/status` if any)."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(STATUS_VERBS),
                }
            )
        return entries


def _core(plural: str, singular: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(
        group="", version="v1", plural=plural, singular=singular, kind=kind, namespaced=namespaced, **kw
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "namespace",
        "Namespace",
        False,
        short_names=("ns",),
        has_status=True,
        returns_deleted_object=True,
        field_selectors=(*COMMON_FIELDS, "status.phase"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core(
        "pods",
        "pod",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        has_status=True,
        returns_deleted_object=True,
        field_selectors=(
            *COMMON_FIELDS,
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    _core(
        "services",
        "service",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        has_status=True,
        returns_deleted_object=True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _core("endpoints", "endpoints", "Endpoints", True, short_names=("ep",)),
    _core("secrets", "secret", "Secret", True, field_selectors=(*COMMON_FIELDS, "type")),
    _core("configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
    ResourceType(
        group="discovery.k8s.io",
        version="v1",
        plural="endpointslices",
        singular="endpointslice",
        kind="EndpointSlice",
        namespaced=True,
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        plural="ingresses",
        singular="ingress",
        kind="Ingress",
        namespaced=True,
        short_names=("ing",),
        has_status=True,
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        plural="ingressclasses",
        singular="ingressclass",
        kind="IngressClass",
        namespaced=False,
    ),
    ResourceType(
        group="apiextensions.k8s.io",
        version="v1",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        kind="CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        has_status=True,
        returns_deleted_object=True,
    ),
)

CRD_RESOURCE = "customresourcedefinitions.apiextensions.k8s.io"
NAMESPACES = "namespaces"


def custom_resource_type(
    group: str,
    versions: tuple[str, ...],
    storage_version: str,
    kind: str,
    plural: str,
    singular: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    has_status: bool = False,
    list_kind: str = "",
) -> ResourceType:
    """The `ResourceType` a CustomResourceDefinition declares."""
    return ResourceType(
        group=group,
        version=storage_version,
        plural=plural,
        singular=singular or kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short_names,
        categories=categories,
        versions=versions,
        has_status=has_status,
        builtin=False,
        list_kind=list_kind,
    )
