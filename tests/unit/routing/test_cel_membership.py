"""A CEL filter over the object says which objects a subscription follows: entering is ADDED,
leaving is DELETED, as the API server does for a label selector. Without this, an Ingress
whose class changed away from the one a load balancer follows would stay routed there."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mic.events.event import Event, EventType, KubeObject
from mic.routing import SubscriptionFilter, SubscriptionMatcher, SubscriptionSpec, WebhookSink

ADDED, MODIFIED, DELETED = EventType.ADDED, EventType.MODIFIED, EventType.DELETED
FOLLOWS_MIC = 'object.spec.ingressClassName == "mic"'


def ingress(ingress_class: str, rv: int = 100) -> KubeObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u-1",
            "resourceVersion": str(rv),
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"app": "web"},
        },
        "spec": {"ingressClassName": ingress_class, "rules": [{"host": "shop.example"}]},
    }


def event(type_: EventType, obj: KubeObject, old: KubeObject | None = None) -> Event:
    metadata = obj["metadata"]
    return Event(
        type=type_,
        cluster="eu-1",
        group="networking.k8s.io",
        version="v1",
        kind="Ingress",
        resource="ingresses",
        namespace=metadata.get("namespace"),
        name=metadata["name"],
        uid=metadata["uid"],
        resource_version=metadata["resourceVersion"],
        object=obj,
        old_object=old,
    )


def change(old_class: str, new_class: str, *, old_known: bool = True) -> Event:
    old = ingress(old_class)
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "101"
    new["spec"]["ingressClassName"] = new_class
    new["metadata"]["labels"]["revision"] = "2"  # a real change, whatever the class did
    return event(MODIFIED, new, old if old_known else None)


def matcher(cel: str = FOLLOWS_MIC, **filter_args: Any) -> SubscriptionMatcher:
    spec = SubscriptionSpec(
        "lb",
        SubscriptionFilter(resources=("ingresses",), cel=cel, **filter_args),
        WebhookSink("https://lb.example/"),
    )
    return SubscriptionMatcher(spec, frozenset({"ingresses.networking.k8s.io"}))


TOMBSTONE = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "100"},
}


@pytest.mark.parametrize(
    ("what", "delivered_event", "expected"),
    [
        ("entering", change("nginx", "mic"), ADDED),
        ("leaving", change("mic", "nginx"), DELETED),
        ("staying in", change("mic", "mic"), MODIFIED),
        ("staying out", change("nginx", "haproxy"), None),
        ("created matching", event(ADDED, ingress("mic")), ADDED),
        ("created elsewhere", event(ADDED, ingress("nginx")), None),
        ("deleted while matching", event(DELETED, ingress("mic")), DELETED),
        ("deleted elsewhere", event(DELETED, ingress("nginx")), None),
        # deleted while MIC was down: nothing to judge, and the recipient may have it
        ("tombstone", event(DELETED, TOMBSTONE), DELETED),
        # first list after a restart: the state before is unknown
        # (it may have entered while MIC was down: ADDED is create-or-update for the recipient)
        ("unknown before, matching now", change("?", "mic", old_known=False), ADDED),
        ("unknown before, not matching now", change("?", "nginx", old_known=False), DELETED),
    ],
)
def test_membership_transitions(what: str, delivered_event: Event, expected: EventType | None) -> None:
    follows = matcher()
    assert follows.follows_membership
    assert follows.route(delivered_event, {}) is expected, what
    assert follows.matches(delivered_event, {}) is (expected is not None)


def test_event_types_apply_to_the_type_delivered() -> None:
    arrivals_and_departures = matcher(event_types=(ADDED, DELETED))
    assert arrivals_and_departures.route(change("nginx", "mic"), {}) is ADDED
    assert arrivals_and_departures.route(change("mic", "nginx"), {}) is DELETED
    assert arrivals_and_departures.route(change("mic", "mic"), {}) is None
    only_modified = matcher(event_types=(MODIFIED,))
    assert only_modified.route(change("nginx", "mic"), {}) is None
    assert only_modified.route(change("mic", "mic"), {}) is MODIFIED


def test_entering_through_a_field_not_listed_is_still_delivered() -> None:
    hosts_only = matcher(fields=("spec.rules",))
    assert hosts_only.route(change("nginx", "mic"), {}) is ADDED
    assert hosts_only.route(change("mic", "mic"), {}) is None  # in, and no listed field changed


@pytest.mark.parametrize(
    "cel",
    [
        "oldObject == null || oldObject.spec.ingressClassName != object.spec.ingressClassName",
        'event.type == "MODIFIED" && object.spec.ingressClassName == "mic"',
        'event.resourceVersion != "" && object.spec.ingressClassName == "mic"',
    ],
)
def test_expressions_about_the_change_filter_changes_and_have_no_transitions(cel: str) -> None:
    about_changes = matcher(cel)
    assert not about_changes.follows_membership
    leaving = change("mic", "nginx")
    expected = MODIFIED if "oldObject" in cel else None
    assert about_changes.route(leaving, {}) is expected


@pytest.mark.parametrize(
    "cel",
    [
        'event.namespace == "shop" && object.spec.ingressClassName == "mic"',
        # `type` of the object, not of the event
        'event["cluster"] == "eu-1" && object.spec.ingressClassName == "mic" && !has(object.spec.type)',
    ],
)
def test_event_fields_that_never_change_keep_transitions(cel: str) -> None:
    shop_mic = matcher(cel)
    assert shop_mic.follows_membership
    assert shop_mic.route(change("mic", "nginx"), {}) is DELETED


def test_event_used_whole_is_taken_as_a_change_filter() -> None:
    assert not matcher(
        '[event][0].namespace == "shop" && object.spec.ingressClassName == "mic"'
    ).follows_membership


def test_a_cel_error_on_the_old_state_counts_as_not_matching_before() -> None:
    follows = matcher()
    old = ingress("nginx")
    del old["spec"]["ingressClassName"]  # no such key: evaluation fails
    new = ingress("mic", rv=101)
    assert follows.route(event(MODIFIED, new, old), {}) is ADDED
    assert follows.cel_errors == 1
