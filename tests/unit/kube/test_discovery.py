"""Discovery documents → ResourceCatalog, and kubectl-style resolution of resource names."""

from __future__ import annotations

from typing import Any

import pytest

from mic.kube.discovery import (
    ResourceCatalog,
    catalog_from_api_group_list,
    preferred_versions,
    served_group_versions,
    version_priority,
)
from mic.kube.errors import AmbiguousResourceError, UnknownResourceError
from mic.kube.resources import ResourceInfo

# --- fixtures: documents shaped as kube-apiserver 1.30 serves them -------------------------------

RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def resource(
    name: str,
    kind: str,
    *,
    singular: str | None = None,
    namespaced: bool = True,
    short: list[str] | None = None,
    verbs: list[str] | None = None,
    categories: list[str] | None = None,
) -> dict[str, Any]:
    """One APIResource entry; keys are omitted the way the server omits empty ones."""
    entry: dict[str, Any] = {
        "name": name,
        "singularName": name.rstrip("s") if singular is None else singular,
        "namespaced": namespaced,
        "kind": kind,
        "verbs": RW if verbs is None else verbs,
        "storageVersionHash": "AbCdEf0123=",
    }
    if short:
        entry["shortNames"] = short
    if categories:
        entry["categories"] = categories
    return entry


def subresource(name: str, kind: str, verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "singularName": "", "namespaced": True, "kind": kind, "verbs": verbs, **extra}


CORE_V1: dict[str, Any] = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        resource("configmaps", "ConfigMap", singular="configmap", short=["cm"]),
        resource("endpoints", "Endpoints", singular="endpoints", short=["ep"]),
        resource("events", "Event", singular="event", short=["ev"]),
        resource("namespaces", "Namespace", namespaced=False, short=["ns"]),
        subresource("namespaces/finalize", "Namespace", ["update"]),
        subresource("namespaces/status", "Namespace", ["get", "patch", "update"]),
        resource("pods", "Pod", short=["po"], categories=["all"]),
        subresource("pods/attach", "PodAttachOptions", ["create", "get"]),
        subresource("pods/eviction", "Eviction", ["create"], group="policy", version="v1"),
        subresource("pods/log", "Pod", ["get"]),
        subresource("pods/status", "Pod", ["get", "patch", "update"]),
        resource("secrets", "Secret"),
        resource("services", "Service", short=["svc"], categories=["all"]),
        subresource("services/proxy", "ServiceProxyOptions", ["create", "delete", "get"]),
        # Servers older than 1.9 send no singularName: kubectl then uses the lowercased kind.
        resource("componentstatuses", "ComponentStatus", singular="", namespaced=False, short=["cs"]),
    ],
}


def group_version_doc(group_version: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list(resources),
    }


GROUPS: dict[str, dict[str, Any]] = {
    "networking.k8s.io/v1": group_version_doc(
        "networking.k8s.io/v1",
        resource("ingressclasses", "IngressClass", singular="ingressclass", namespaced=False),
        resource("ingresses", "Ingress", singular="ingress", short=["ing"]),
        subresource("ingresses/status", "Ingress", ["get", "patch", "update"]),
        resource("networkpolicies", "NetworkPolicy", singular="networkpolicy", short=["netpol"]),
    ),
    "discovery.k8s.io/v1": group_version_doc(
        "discovery.k8s.io/v1",
        resource("endpointslices", "EndpointSlice"),
    ),
    "events.k8s.io/v1": group_version_doc(
        "events.k8s.io/v1",
        resource("events", "Event", singular="event", short=["ev"]),
    ),
    "gateway.networking.k8s.io/v1": group_version_doc(
        "gateway.networking.k8s.io/v1",
        resource("gatewayclasses", "GatewayClass", singular="gatewayclass", namespaced=False, short=["gc"]),
        resource("gateways", "Gateway", short=["gtw"], categories=["gateway-api"]),
        resource("httproutes", "HTTPRoute", categories=["gateway-api"]),
        subresource("httproutes/status", "HTTPRoute", ["get", "patch", "update"]),
    ),
    "gateway.networking.k8s.io/v1beta1": group_version_doc(
        "gateway.networking.k8s.io/v1beta1",
        resource("gatewayclasses", "GatewayClass", singular="gatewayclass", namespaced=False, short=["gc"]),
        resource("gateways", "Gateway", short=["gtw"], categories=["gateway-api"]),
        resource("httproutes", "HTTPRoute", categories=["gateway-api"]),
        resource("referencegrants", "ReferenceGrant", short=["refgrant"], categories=["gateway-api"]),
    ),
    # metrics-server serves `pods` and `nodes` too: the core group must win the plain names.
    "metrics.k8s.io/v1beta1": group_version_doc(
        "metrics.k8s.io/v1beta1",
        resource("nodes", "NodeMetrics", singular="", namespaced=False, verbs=["get", "list"]),
        resource("pods", "PodMetrics", singular="", verbs=["get", "list"]),
    ),
    # Knative's Service clashes with the core Service.
    "serving.knative.dev/v1": group_version_doc(
        "serving.knative.dev/v1",
        resource("services", "Service", short=["kservice", "ksvc"], categories=["all", "knative", "serving"]),
        resource("routes", "Route", short=["rt"], categories=["all", "knative", "serving"]),
    ),
    # Two CRD groups both defining `certificates` (and the short name `cert`): truly ambiguous.
    "cert-manager.io/v1": group_version_doc(
        "cert-manager.io/v1",
        resource("certificates", "Certificate", short=["cert", "certs"], categories=["cert-manager"]),
        resource("issuers", "Issuer"),
    ),
    "tls.example.com/v1alpha1": group_version_doc(
        "tls.example.com/v1alpha1",
        resource("certificates", "Certificate", short=["cert"]),
    ),
    # A CRD whose kind differs from its resource names, to exercise resolution by kind.
    "widgets.example.com/v1": group_version_doc(
        "widgets.example.com/v1",
        resource("gizmos", "Widget", singular="gizmo", short=["gz"]),
    ),
}

API_GROUP_LIST: dict[str, Any] = {
    "kind": "APIGroupList",
    "apiVersion": "v1",
    "groups": [
        {
            "name": "networking.k8s.io",
            "versions": [{"groupVersion": "networking.k8s.io/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "networking.k8s.io/v1", "version": "v1"},
        },
        {
            "name": "gateway.networking.k8s.io",
            "versions": [
                {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"},
                {"groupVersion": "gateway.networking.k8s.io/v1beta1", "version": "v1beta1"},
            ],
            "preferredVersion": {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"},
        },
        {
            "name": "metrics.k8s.io",
            "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
        },
        {
            "name": "widgets.example.com",
            "versions": [
                {"groupVersion": "widgets.example.com/v1", "version": "v1"},
                {"groupVersion": "widgets.example.com/v2alpha1", "version": "v2alpha1"},
            ],
            "preferredVersion": {"groupVersion": "widgets.example.com/v2alpha1", "version": "v2alpha1"},
        },
    ],
}


@pytest.fixture(scope="module")
def catalog() -> ResourceCatalog:
    return catalog_from_api_group_list(API_GROUP_LIST, CORE_V1, GROUPS)


# --- building ------------------------------------------------------------------------------------


def test_from_discovery_reads_every_field(catalog: ResourceCatalog) -> None:
    assert catalog.by_group_version_resource("", "v1", "pods") == ResourceInfo(
        group="",
        version="v1",
        resource="pods",
        kind="Pod",
        namespaced=True,
        singular="pod",
        short_names=("po",),
        verbs=tuple(RW),
        categories=("all",),
    )
    namespaces = catalog.by_group_version_resource("", "v1", "namespaces")
    assert namespaces is not None
    assert not namespaces.namespaced
    assert namespaces.short_names == ("ns",)
    assert namespaces.categories == ()
    ingresses = catalog.by_group_version_resource("networking.k8s.io", "v1", "ingresses")
    assert ingresses is not None
    assert (ingresses.kind, ingresses.singular, ingresses.group_version) == (
        "Ingress",
        "ingress",
        "networking.k8s.io/v1",
    )


def test_subresources_are_skipped(catalog: ResourceCatalog) -> None:
    assert all("/" not in info.resource for info in catalog.all())
    assert catalog.by_group_version_resource("", "v1", "pods/log") is None
    assert [i.resource for i in catalog.all() if i.group == "" and i.kind == "Pod"] == ["pods"]


def test_empty_singular_name_falls_back_to_lowercased_kind(catalog: ResourceCatalog) -> None:
    info = catalog.by_group_version_resource("", "v1", "componentstatuses")
    assert info is not None
    assert info.singular == "componentstatus"
    assert catalog.resolve("componentstatus") is info


def test_all_keeps_discovery_order_and_every_version(catalog: ResourceCatalog) -> None:
    everything = catalog.all()
    assert everything[0].resource == "configmaps"
    assert len(everything) == len(catalog) == 28
    assert [i.version for i in everything if i.resource == "httproutes"] == ["v1", "v1beta1"]
    assert list(catalog) == list(everything)


def test_by_group_version_resource_is_exact(catalog: ResourceCatalog) -> None:
    assert catalog.by_group_version_resource("gateway.networking.k8s.io", "v1beta1", "referencegrants")
    assert catalog.by_group_version_resource("gateway.networking.k8s.io", "v1", "referencegrants") is None
    assert catalog.by_group_version_resource("", "v1", "ingresses") is None
    assert catalog.by_group_version_resource("", "v1", "ing") is None


def test_group_version_comes_from_the_document_when_present() -> None:
    doc = group_version_doc("apps/v1", resource("deployments", "Deployment", short=["deploy"]))
    catalog = ResourceCatalog.from_discovery(None, {"ignored/v9": doc})
    assert catalog.resolve("deploy").group_version == "apps/v1"
    keyed = ResourceCatalog.from_discovery(None, {"apps/v1": {"resources": doc["resources"]}})
    assert keyed.resolve("deploy").group_version == "apps/v1"


@pytest.mark.parametrize(
    ("core", "groups", "message"),
    [
        ([], {}, "invalid APIResourceList for 'v1': not an object"),
        ({"resources": {}}, {}, "invalid APIResourceList for 'v1': 'resources' must be a list"),
        (
            {"resources": [{"name": "pods"}]},
            {},
            "invalid APIResourceList for 'v1': a resource lacks name or kind",
        ),
        (None, {"a/b/c": {"resources": []}}, "invalid groupVersion 'a/b/c'"),
        (None, {"x": {"groupVersion": "/v1", "resources": []}}, "invalid groupVersion '/v1'"),
        (None, {"apps/v1": {"resources": ["deployments"]}}, "for 'apps/v1': a resource lacks name or kind"),
    ],
)
def test_malformed_documents_are_reported(core: Any, groups: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid") as caught:
        ResourceCatalog.from_discovery(core, groups)
    assert message in str(caught.value)


# --- /apis ---------------------------------------------------------------------------------------


def test_preferred_versions() -> None:
    assert preferred_versions(API_GROUP_LIST) == {
        "networking.k8s.io": "v1",
        "gateway.networking.k8s.io": "v1",
        "metrics.k8s.io": "v1beta1",  # no preferredVersion: the first listed
        "widgets.example.com": "v2alpha1",
    }
    assert preferred_versions({"kind": "APIGroupList", "groups": []}) == {}


def test_served_group_versions_lists_preferred_first() -> None:
    assert served_group_versions(API_GROUP_LIST) == [
        "networking.k8s.io/v1",
        "gateway.networking.k8s.io/v1",
        "gateway.networking.k8s.io/v1beta1",
        "metrics.k8s.io/v1beta1",
        "widgets.example.com/v2alpha1",
        "widgets.example.com/v1",
    ]


@pytest.mark.parametrize("doc", [{"groups": {}}, {"groups": ["apps"]}])
def test_malformed_api_group_list(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid APIGroupList"):
        preferred_versions(doc)
    with pytest.raises(ValueError, match="invalid APIGroupList"):
        served_group_versions(doc)


def test_version_priority_matches_apimachinery_order() -> None:
    # The example from apimachinery's CompareKubeAwareVersionStrings documentation.
    expected = [
        "v10",
        "v2",
        "v1",
        "v11beta2",
        "v10beta3",
        "v3beta1",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
    ]
    shuffled = [
        "foo10",
        "v1",
        "v11alpha2",
        "v3beta1",
        "v10",
        "foo1",
        "v12alpha1",
        "v2",
        "v10beta3",
        "v11beta2",
    ]
    assert sorted(shuffled, key=version_priority) == expected


# --- resolve -------------------------------------------------------------------------------------

RESOLVE = [
    # (what a user types, (group, version, resource))
    ("pods", ("", "v1", "pods")),
    ("pod", ("", "v1", "pods")),
    ("po", ("", "v1", "pods")),
    ("Pod", ("", "v1", "pods")),
    ("PODS", ("", "v1", "pods")),
    ("  pods ", ("", "v1", "pods")),
    ("v1/pods", ("", "v1", "pods")),
    ("v1/po", ("", "v1", "pods")),
    ("svc", ("", "v1", "services")),
    ("services", ("", "v1", "services")),  # core beats serving.knative.dev
    ("Service", ("", "v1", "services")),
    ("events", ("", "v1", "events")),  # core beats events.k8s.io
    ("ev", ("", "v1", "events")),
    ("endpoints", ("", "v1", "endpoints")),
    ("ep", ("", "v1", "endpoints")),
    ("cm", ("", "v1", "configmaps")),
    ("secret", ("", "v1", "secrets")),
    ("ns", ("", "v1", "namespaces")),
    ("nodes", ("metrics.k8s.io", "v1beta1", "nodes")),  # only metrics-server serves nodes here
    ("ingresses", ("networking.k8s.io", "v1", "ingresses")),
    ("ingress", ("networking.k8s.io", "v1", "ingresses")),
    ("ing", ("networking.k8s.io", "v1", "ingresses")),
    ("Ingress", ("networking.k8s.io", "v1", "ingresses")),
    ("ingresses.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("ingress.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("ing.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("Ingress.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("ingresses.v1.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("Ingress.v1.networking.k8s.io", ("networking.k8s.io", "v1", "ingresses")),
    ("networking.k8s.io/v1/ingresses", ("networking.k8s.io", "v1", "ingresses")),
    ("networking.k8s.io/ingresses", ("networking.k8s.io", "v1", "ingresses")),
    ("endpointslices", ("discovery.k8s.io", "v1", "endpointslices")),
    ("EndpointSlice", ("discovery.k8s.io", "v1", "endpointslices")),
    ("events.events.k8s.io", ("events.k8s.io", "v1", "events")),
    ("Event.v1.events.k8s.io", ("events.k8s.io", "v1", "events")),
    ("services.serving.knative.dev", ("serving.knative.dev", "v1", "services")),
    ("ksvc", ("serving.knative.dev", "v1", "services")),
    ("pods.metrics.k8s.io", ("metrics.k8s.io", "v1beta1", "pods")),
    ("PodMetrics", ("metrics.k8s.io", "v1beta1", "pods")),
    # a group serving several versions: its preferred version
    ("httproutes", ("gateway.networking.k8s.io", "v1", "httproutes")),
    ("HTTPRoute", ("gateway.networking.k8s.io", "v1", "httproutes")),
    ("httproutes.gateway.networking.k8s.io", ("gateway.networking.k8s.io", "v1", "httproutes")),
    ("httproutes.v1beta1.gateway.networking.k8s.io", ("gateway.networking.k8s.io", "v1beta1", "httproutes")),
    ("gateway.networking.k8s.io/v1beta1/httproutes", ("gateway.networking.k8s.io", "v1beta1", "httproutes")),
    ("gtw", ("gateway.networking.k8s.io", "v1", "gateways")),
    # ... unless the resource exists only in another version
    ("referencegrants", ("gateway.networking.k8s.io", "v1beta1", "referencegrants")),
    ("refgrant", ("gateway.networking.k8s.io", "v1beta1", "referencegrants")),
    # the one group defining `certificates`, once qualified
    ("certificates.cert-manager.io", ("cert-manager.io", "v1", "certificates")),
    ("cert.cert-manager.io", ("cert-manager.io", "v1", "certificates")),
    ("certs", ("cert-manager.io", "v1", "certificates")),
    ("Certificate.v1alpha1.tls.example.com", ("tls.example.com", "v1alpha1", "certificates")),
    ("tls.example.com/v1alpha1/certificates", ("tls.example.com", "v1alpha1", "certificates")),
    # by kind when it differs from the resource's names
    ("Widget", ("widgets.example.com", "v1", "gizmos")),
    ("widget.widgets.example.com", ("widgets.example.com", "v1", "gizmos")),
    ("gz", ("widgets.example.com", "v1", "gizmos")),
]


@pytest.mark.parametrize(("name", "expected"), RESOLVE)
def test_resolve(catalog: ResourceCatalog, name: str, expected: tuple[str, str, str]) -> None:
    info = catalog.resolve(name)
    assert (info.group, info.version, info.resource) == expected
    assert catalog.resolve(name) is info  # cached answers are the same object


def test_resolve_follows_the_preferred_version_not_the_highest() -> None:
    preferred_beta = ResourceCatalog.from_discovery(
        CORE_V1, GROUPS, preferred={"gateway.networking.k8s.io": "v1beta1"}
    )
    assert preferred_beta.resolve("httproutes").version == "v1beta1"
    assert preferred_beta.preferred_version("gateway.networking.k8s.io") == "v1beta1"


def test_group_list_keyword_and_preferred_override() -> None:
    from_list = ResourceCatalog.from_discovery(CORE_V1, GROUPS, group_list=API_GROUP_LIST)
    assert from_list.resolve("gizmos").version == "v1"  # preferred v2alpha1 does not serve gizmos
    assert from_list.preferred_version("widgets.example.com") == "v1"
    overridden = ResourceCatalog.from_discovery(
        CORE_V1, GROUPS, group_list=API_GROUP_LIST, preferred={"gateway.networking.k8s.io": "v1beta1"}
    )
    assert overridden.resolve("gateways").version == "v1beta1"
    assert overridden.resolve("ingresses").version == "v1"


def test_without_preferred_versions_the_most_stable_version_wins() -> None:
    catalog = ResourceCatalog.from_discovery(
        None,
        {
            "gateway.networking.k8s.io/v1beta1": GROUPS["gateway.networking.k8s.io/v1beta1"],
            "gateway.networking.k8s.io/v1": GROUPS["gateway.networking.k8s.io/v1"],
        },
    )
    assert catalog.resolve("httproutes").version == "v1"
    assert catalog.preferred_version("gateway.networking.k8s.io") == "v1"
    assert catalog.preferred_version("nonexistent.example.com") is None


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("certificates", ["certificates.cert-manager.io", "certificates.tls.example.com"]),
        ("Certificate", ["certificates.cert-manager.io", "certificates.tls.example.com"]),
        ("cert", ["certificates.cert-manager.io", "certificates.tls.example.com"]),
    ],
)
def test_names_in_several_non_core_groups_are_ambiguous(
    catalog: ResourceCatalog, name: str, candidates: list[str]
) -> None:
    with pytest.raises(AmbiguousResourceError) as caught:
        catalog.resolve(name)
    assert caught.value.name == name
    assert caught.value.candidates == candidates
    assert str(caught.value) == f"resource name {name!r} is ambiguous; use one of: {', '.join(candidates)}"


@pytest.mark.parametrize(
    ("name", "suggestions"),
    [
        ("ingresss", ["ingresses", "ingress"]),
        ("httproute.gateway.networking.k8s", ["httproutes.gateway.networking.k8s.io"]),
        ("endpointslice.discovery", ["endpointslices.discovery.k8s.io"]),
        ("zzzz", []),
        ("", []),
        ("ingresses.v2.networking.k8s.io", []),
        ("v2/pods", []),
        ("a/b/c/d", []),
        ("ingresses.extensions", []),
    ],
)
def test_unknown_names_come_with_close_matches(
    catalog: ResourceCatalog, name: str, suggestions: list[str]
) -> None:
    with pytest.raises(UnknownResourceError) as caught:
        catalog.resolve(name)
    assert caught.value.name == name
    assert caught.value.suggestions[: len(suggestions)] == suggestions
    assert len(caught.value.suggestions) <= 3
    assert f"the server doesn't have a resource type {name!r}" in str(caught.value)


def test_unknown_resource_message_names_suggestions(catalog: ResourceCatalog) -> None:
    with pytest.raises(UnknownResourceError) as caught:
        catalog.resolve("ingresss")
    assert str(caught.value).startswith(
        "the server doesn't have a resource type 'ingresss'; did you mean ingresses"
    )


def test_known_names(catalog: ResourceCatalog) -> None:
    names = catalog.known_names()
    for name in ("pods", "pod", "po", "ingresses.networking.k8s.io", "ing", "httproutes", "ksvc"):
        assert name in names
    assert list(names) == sorted(set(names))
    assert all("/" not in name for name in names)


# --- re-discovery --------------------------------------------------------------------------------


def test_merged_with_adds_a_new_crd_group(catalog: ResourceCatalog) -> None:
    with pytest.raises(UnknownResourceError):
        catalog.resolve("backendpolicies")
    new = ResourceCatalog.from_discovery(
        None,
        {
            "policy.example.com/v1": group_version_doc(
                "policy.example.com/v1", resource("backendpolicies", "Backend")
            )
        },
    )
    merged = catalog.merged_with(new)
    assert merged.resolve("backendpolicies").group == "policy.example.com"
    assert merged.resolve("pods").group == ""
    assert len(merged) == len(catalog) + 1
    with pytest.raises(UnknownResourceError):  # the original is unchanged
        catalog.resolve("backendpolicies")


def test_merged_with_replaces_all_versions_of_a_rediscovered_group(catalog: ResourceCatalog) -> None:
    assert catalog.resolve("gizmos").version == "v1"
    v2 = group_version_doc("widgets.example.com/v2alpha1", resource("gizmos", "Widget", singular="gizmo"))
    rediscovered = catalog_from_api_group_list(API_GROUP_LIST, None, {"widgets.example.com/v2alpha1": v2})
    merged = catalog.merged_with(rediscovered)
    assert merged.resolve("gizmos").version == "v2alpha1"
    assert merged.by_group_version_resource("widgets.example.com", "v1", "gizmos") is None
    with pytest.raises(UnknownResourceError):
        merged.resolve("gz")  # v2alpha1 dropped the short name
    # groups the new catalog has no resources for are kept, even if its /apis names them
    assert merged.resolve("httproutes").version == "v1"
    assert merged.resolve("ingresses").group == "networking.k8s.io"


def test_without_groups_forgets_deleted_crds(catalog: ResourceCatalog) -> None:
    pruned = catalog.without_groups(["tls.example.com"])
    assert pruned.resolve("certificates").group == "cert-manager.io"  # no longer ambiguous
    assert pruned.resolve("httproutes").version == "v1"
    assert len(pruned) == len(catalog) - 1


def test_empty_catalog() -> None:
    empty = ResourceCatalog()
    assert len(empty) == 0
    assert empty.all() == ()
    assert empty.known_names() == ()
    with pytest.raises(UnknownResourceError, match="'pods'"):
        empty.resolve("pods")
    assert repr(empty) == "ResourceCatalog(0 resources)"
