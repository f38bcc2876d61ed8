"""SubscriptionMatcher: every filter dimension over realistic objects, no-op and field changes, CEL."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from mic.events.event import Event, EventType, KubeObject
from mic.routing import SubscriptionFilter, SubscriptionMatcher, SubscriptionSpec, WebhookSink

ADDED, MODIFIED, DELETED = EventType.ADDED, EventType.MODIFIED, EventType.DELETED

# kind -> (group, version, resource)
KINDS = {
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "Service": ("", "v1", "services"),
    "Secret": ("", "v1", "secrets"),
    "Namespace": ("", "v1", "namespaces"),
}
RESOLVED = frozenset({"ingresses.networking.k8s.io", "services", "secrets", "namespaces"})
PROD = {"env": "prod", "region": "eu"}


def managed_fields(manager: str, time: str) -> list[dict[str, Any]]:
    return [
        {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": "networking.k8s.io/v1",
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:rules": {}}},
        }
    ]


def ingress(namespace: str = "shop", labels: dict[str, str] | None = None, rv: str = "100") -> KubeObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "uid": "0b6c6a44-5d5e-4b6b-9a55-6e3b0c1d2f01",
            "resourceVersion": rv,
            "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "expose": "true"} if labels is None else labels,
            "annotations": {"kubernetes.io/ingress.class": "nginx"},
            "managedFields": managed_fields("kubectl", "2024-05-01T10:00:00Z"),
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
    }


def service(namespace: str = "shop") -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "uid": "5f0e4c1e-0000-4000-8000-000000000002",
            "resourceVersion": "200",
            "labels": {"app": "web"},
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "clusterIP": "10.96.0.12",
        },
        "status": {"loadBalancer": {}},
    }


def secret(namespace: str = "shop") -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "tls-web",
            "namespace": namespace,
            "uid": "5f0e4c1e-0000-4000-8000-000000000003",
            "resourceVersion": "300",
            "labels": {"app": "web", "expose": "true"},
        },
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "LS0tLS1CRUdJTi4uLg==", "tls.key": "LS0tLS1CRUdJTi4uLg=="},
    }


def namespace_object(name: str = "shop", labels: dict[str, str] | None = None) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": "5f0e4c1e-0000-4000-8000-000000000004",
            "resourceVersion": "400",
            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def event(
    type_: EventType, obj: KubeObject, old: KubeObject | None = None, *, cluster: str = "eu-1"
) -> Event:
    group, version, resource = KINDS[obj["kind"]]
    metadata = obj["metadata"]
    return Event(
        type=type_,
        cluster=cluster,
        group=group,
        version=version,
        kind=obj["kind"],
        resource=resource,
        namespace=metadata.get("namespace"),
        name=metadata["name"],
        uid=metadata["uid"],
        resource_version=metadata["resourceVersion"],
        object=obj,
        old_object=old,
    )


def matcher(resources: frozenset[str] = RESOLVED, **filter_args: Any) -> SubscriptionMatcher:
    filter_args.setdefault("resources", ("ingresses", "services", "secrets", "namespaces"))
    spec = SubscriptionSpec("lb", SubscriptionFilter(**filter_args), WebhookSink("https://lb.example/hook"))
    return SubscriptionMatcher(spec, resources)


def modified(obj: KubeObject, change: Any) -> Event:
    """A MODIFIED of `obj` after `change(new)` edits a deep copy, with a new resourceVersion."""
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    change(new)
    return event(MODIFIED, new, obj)


# --- every filter dimension ----------------------------------------------------------------------

# (case id, filter arguments, event, cluster labels, expected)
DIMENSIONS: list[tuple[str, dict[str, Any], Event, dict[str, str], bool]] = [
    ("everything-ingress", {}, event(ADDED, ingress()), PROD, True),
    ("everything-service", {}, event(ADDED, service()), PROD, True),
    ("everything-secret", {}, event(DELETED, secret()), PROD, True),
    ("everything-namespace", {}, event(ADDED, namespace_object()), PROD, True),
    # resources: the qualified names the filter resolved to ("resolved" is the matcher's argument)
    ("resource-resolved", {"resolved": {"services"}}, event(ADDED, service()), PROD, True),
    (
        "resource-not-resolved",
        {"resolved": {"ingresses.networking.k8s.io"}},
        event(ADDED, service()),
        PROD,
        False,
    ),
    # clusters by name and by labels (AND)
    ("cluster-named", {"clusters": ("eu-1",)}, event(ADDED, ingress()), PROD, True),
    ("cluster-not-named", {"clusters": ("us-1",)}, event(ADDED, ingress()), PROD, False),
    ("cluster-selector-match", {"cluster_selector": "env=prod"}, event(ADDED, ingress()), PROD, True),
    ("cluster-selector-miss", {"cluster_selector": "env=dev"}, event(ADDED, ingress()), PROD, False),
    ("cluster-selector-no-labels", {"cluster_selector": "env"}, event(ADDED, ingress()), {}, False),
    (
        "cluster-name-and-selector",
        {"clusters": ("eu-1",), "cluster_selector": "region in (us)"},
        event(ADDED, ingress()),
        PROD,
        False,
    ),
    # namespaces include / exclude
    ("ns-included", {"namespaces": ("shop",)}, event(ADDED, ingress("shop")), PROD, True),
    ("ns-not-included", {"namespaces": ("blog",)}, event(ADDED, ingress("shop")), PROD, False),
    ("ns-excluded", {"exclude_namespaces": ("shop",)}, event(ADDED, service("shop")), PROD, False),
    ("ns-kube-system-default", {}, event(ADDED, service("kube-system")), PROD, False),
    ("ns-kube-system-allowed", {"exclude_namespaces": ()}, event(ADDED, service("kube-system")), PROD, True),
    (
        "ns-kube-system-included",
        {"namespaces": ("kube-system",), "exclude_namespaces": ()},
        event(ADDED, service("kube-system")),
        PROD,
        True,
    ),
    ("cluster-scoped-include", {"namespaces": ("blog",)}, event(ADDED, namespace_object()), PROD, True),
    (
        "cluster-scoped-exclude",
        {"exclude_namespaces": ("shop", "kube-system")},
        event(ADDED, namespace_object("kube-system")),
        PROD,
        True,
    ),
    # the label selector applies to the object's labels, also for DELETED (last known state)
    ("labels-match", {"label_selector": "expose=true"}, event(ADDED, ingress()), PROD, True),
    ("labels-miss", {"label_selector": "expose=true"}, event(ADDED, service()), PROD, False),
    ("labels-deleted-match", {"label_selector": "app=web,expose"}, event(DELETED, secret()), PROD, True),
    ("labels-deleted-miss", {"label_selector": "tier=db"}, event(DELETED, secret()), PROD, False),
    (
        "labels-none-notin",
        {"label_selector": "app notin (web)"},
        event(ADDED, ingress(labels={})),
        PROD,
        True,
    ),
    ("labels-none-required", {"label_selector": "app"}, event(ADDED, ingress(labels={})), PROD, False),
    (
        "labels-namespace",
        {"label_selector": "team=shop"},
        event(ADDED, namespace_object(labels={"team": "shop"})),
        PROD,
        True,
    ),
    # event types
    ("type-wanted", {"event_types": (DELETED,)}, event(DELETED, ingress()), PROD, True),
    ("type-unwanted", {"event_types": (DELETED,)}, event(ADDED, ingress()), PROD, False),
    # CEL (last, after everything above held)
    (
        "cel-object",
        {"cel": "object.spec.rules.exists(r, r.host.endsWith('.example.com'))"},
        event(ADDED, ingress()),
        PROD,
        True,
    ),
    (
        "cel-event",
        {"cel": "event.type == 'DELETED' && event.kind == 'Secret'"},
        event(DELETED, secret()),
        PROD,
        True,
    ),
    ("cel-false", {"cel": "object.spec.type == 'ClusterIP'"}, event(ADDED, service()), PROD, False),
    (
        "cel-cluster-scoped",
        {"cel": "event.namespace == null && object.status.phase == 'Active'"},
        event(ADDED, namespace_object()),
        PROD,
        True,
    ),
]


@pytest.mark.parametrize(
    ("filter_args", "ev", "labels", "expected"),
    [case[1:] for case in DIMENSIONS],
    ids=[case[0] for case in DIMENSIONS],
)
def test_filter_dimensions(
    filter_args: dict[str, Any], ev: Event, labels: dict[str, str], expected: bool
) -> None:
    filter_args = dict(filter_args)
    resources = frozenset(filter_args.pop("resolved", RESOLVED))
    assert matcher(resources, **filter_args).matches(ev, labels) is expected


def test_resources_are_matched_by_group_too() -> None:
    """`ingresses` of another API group (e.g. an old extensions/v1beta1) is another resource."""
    m = matcher(frozenset({"ingresses.networking.k8s.io"}))
    other = event(ADDED, ingress()).replace(group="extensions")
    assert m.matches(event(ADDED, ingress()), PROD)
    assert not m.matches(other, PROD)


def test_no_resolved_resources_match_nothing() -> None:
    assert not matcher(frozenset()).matches(event(ADDED, ingress()), PROD)


def test_wants_cluster_by_names_and_selector() -> None:
    anywhere = matcher()
    assert anywhere.wants_cluster("later-added", {})
    named = matcher(clusters=("eu-1", "eu-2"))
    assert named.wants_cluster("eu-2", {})
    assert not named.wants_cluster("us-1", PROD)
    by_labels = matcher(cluster_selector="env=prod,region!=us")
    assert by_labels.wants_cluster("any-new-cluster", PROD)
    assert not by_labels.wants_cluster("eu-3", {"env": "prod", "region": "us"})
    assert not by_labels.wants_cluster("bare", {})
    both = matcher(clusters=("eu-1",), cluster_selector="env=prod")
    assert both.wants_cluster("eu-1", PROD)
    assert not both.wants_cluster("eu-1", {"env": "dev"})
    assert not both.wants_cluster("eu-2", PROD)


# --- no-op suppression and fields ----------------------------------------------------------------


def _set_managed_fields(obj: KubeObject) -> None:
    obj["metadata"]["managedFields"] = managed_fields("argocd", "2024-05-02T00:00:00Z")


def _add_label(obj: KubeObject) -> None:
    obj["metadata"]["labels"]["tier"] = "frontend"


def _change_host(obj: KubeObject) -> None:
    obj["spec"]["rules"][0]["host"] = "shop2.example.com"


def _change_status(obj: KubeObject) -> None:
    obj["status"]["loadBalancer"]["ingress"][0]["ip"] = "203.0.113.11"


def _add_annotation(obj: KubeObject) -> None:
    obj["metadata"]["annotations"]["note"] = "x"


def _nothing(obj: KubeObject) -> None:
    pass


NOOP_CASES = [
    ("resourceVersion-only", _nothing, False),
    ("managedFields-only", _set_managed_fields, False),
    ("label-change", _add_label, True),
    ("spec-change", _change_host, True),
    ("status-change", _change_status, True),
    ("annotation-change", _add_annotation, True),
]


@pytest.mark.parametrize(("change", "delivered"), [c[1:] for c in NOOP_CASES], ids=[c[0] for c in NOOP_CASES])
def test_noop_updates_are_suppressed(change: Any, delivered: bool) -> None:
    assert matcher().matches(modified(ingress(), change), PROD) is delivered


@pytest.mark.parametrize(("change", "delivered"), [c[1:] for c in NOOP_CASES], ids=[c[0] for c in NOOP_CASES])
def test_noop_suppression_agrees_when_both_states_come_as_json(change: Any, delivered: bool) -> None:
    """As a compact cache's informer hands events over: the old state as bytes only."""
    plain = modified(ingress(), change)
    assert plain.old_object is not None
    compact = plain.replace(
        old_object=None, old_json=orjson.dumps(plain.old_object), object_json=orjson.dumps(plain.object)
    )
    assert matcher().matches(compact, PROD) is delivered


def test_a_noop_decided_on_the_bytes_leaves_the_old_state_undecoded() -> None:
    # Bytes that are no JSON at all: decoding them would raise.
    new = ingress(rv="101")
    compact = event(MODIFIED, new, None).replace(
        object_json=b'{"metadata":{"resourceVersion":"101"},"x":<not json>',
        old_json=b'{"metadata":{"resourceVersion":"100"},"x":<not json>',
    )
    assert not matcher().matches(compact, PROD)


def test_noop_suppression_can_be_turned_off() -> None:
    assert matcher(suppress_noop=False).matches(modified(ingress(), _set_managed_fields), PROD)


def test_unknown_previous_state_is_delivered() -> None:
    """After a restart the informer only knows the object changed: deliver, never guess."""
    same = event(MODIFIED, ingress(rv="101"), None)
    assert matcher().matches(same, PROD)
    assert matcher(fields=("spec.rules",)).matches(same, PROD)


FIELD_CASES = [
    ("spec-watched", ("spec.rules",), _change_host, True),
    ("labels-watched", ("metadata.labels",), _add_label, True),
    ("status-watched", ("status.loadBalancer",), _change_status, True),
    ("status-not-watched", ("spec.rules", "metadata.labels"), _change_status, False),
    ("annotation-not-watched", ("spec",), _add_annotation, False),
    ("escaped-annotation", (r"metadata.annotations.kubernetes\.io/ingress\.class",), _add_annotation, False),
    ("list-index", ("spec.rules.0.host",), _change_host, True),
    ("missing-in-both", ("spec.tls",), _change_host, False),
    ("second-of-two", ("spec.tls", "status"), _change_status, True),
]


@pytest.mark.parametrize(
    ("fields", "change", "delivered"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_fields_limit_modified_to_watched_changes(
    fields: tuple[str, ...], change: Any, delivered: bool
) -> None:
    assert matcher(fields=fields).matches(modified(ingress(), change), PROD) is delivered


def test_fields_appearing_or_disappearing_count_as_changes() -> None:
    def add_tls(obj: KubeObject) -> None:
        obj["spec"]["tls"] = [{"hosts": ["shop.example.com"], "secretName": "tls-web"}]

    def drop_status(obj: KubeObject) -> None:
        del obj["status"]

    assert matcher(fields=("spec.tls",)).matches(modified(ingress(), add_tls), PROD)
    assert matcher(fields=("status.loadBalancer",)).matches(modified(ingress(), drop_status), PROD)


def test_fields_do_not_hold_back_added_or_deleted() -> None:
    m = matcher(fields=("spec.rules",))
    assert m.matches(event(ADDED, ingress()), PROD)
    assert m.matches(event(DELETED, ingress(), ingress()), PROD)


# --- CEL ------------------------------------------------------------------------------------------


def test_cel_sees_old_object_and_null_when_unknown() -> None:
    m = matcher(cel="oldObject != null && oldObject.spec.rules[0].host != object.spec.rules[0].host")
    assert m.matches(modified(ingress(), _change_host), PROD)
    assert not m.matches(modified(ingress(), _add_label), PROD)
    assert not m.matches(event(ADDED, ingress()), PROD)  # oldObject is null
    assert m.cel_errors == 0


def test_cel_event_variable_has_every_documented_key() -> None:
    m = matcher(
        cel="event.type == 'ADDED' && event.cluster == 'eu-1' && event.group == 'networking.k8s.io' "
        "&& event.version == 'v1' && event.kind == 'Ingress' && event.resource == 'ingresses' "
        "&& event.namespace == 'shop' && event.name == 'web' "
        "&& event.uid == '0b6c6a44-5d5e-4b6b-9a55-6e3b0c1d2f01' && event.resourceVersion == '100'"
    )
    assert m.matches(event(ADDED, ingress()), PROD)
    assert m.cel_errors == 0


def test_cel_runtime_error_is_no_match_and_counted() -> None:
    m = matcher(cel="object.spec.ports[0].port == 80")  # Ingresses have no spec.ports
    assert m.matches(event(ADDED, service()), PROD)
    assert not m.matches(event(ADDED, ingress()), PROD)
    assert not m.matches(event(ADDED, ingress()), PROD)
    assert m.cel_errors == 2
    assert m.last_cel_error is not None
    assert m.last_cel_error.startswith("eu-1 Ingress shop/web: ")
    assert "ports" in m.last_cel_error


def test_cel_non_bool_result_is_no_match_and_counted() -> None:
    # Refused when written if it returned a string there; the sample object has no annotations.
    m = matcher(cel="object.metadata.annotations['kubernetes.io/ingress.class']")
    assert not m.matches(event(ADDED, ingress()), PROD)
    assert m.cel_errors == 1
    assert m.last_cel_error is not None
    assert "returned str 'nginx', not a bool" in m.last_cel_error


def test_cel_is_not_evaluated_for_events_filtered_out_earlier() -> None:
    m = matcher(cel="object.spec.ports[0].port == 80", namespaces=("blog",))
    assert not m.matches(event(ADDED, ingress("shop")), PROD)
    assert m.cel_errors == 0


def test_cel_can_use_managed_fields_when_it_asks_for_them() -> None:
    """MIC strips managedFields before CEL unless the expression mentions them."""
    assert matcher(cel="object.metadata.managedFields.exists(f, f.manager == 'kubectl')").matches(
        event(ADDED, ingress()), PROD
    )
    # An expression that does not name them does not get them (they are costly to convert).
    spelled_apart = "object.metadata.all(key, key != 'managed' + 'Fields')"
    assert matcher(cel=spelled_apart).matches(event(ADDED, ingress()), PROD)


def test_cel_does_not_modify_the_event_object() -> None:
    ev = modified(ingress(), _change_host)
    before = copy.deepcopy((ev.object, ev.old_object))
    assert matcher(cel="object.metadata.name == oldObject.metadata.name").matches(ev, PROD)
    assert (ev.object, ev.old_object) == before


def test_matcher_exposes_the_selector_to_push_down() -> None:
    m = matcher(label_selector="expose = true, app")
    assert str(m.label_selector) == "app,expose=true"
