"""The label selector and the tombstone of an object deleted while MIC was down.

The engine pushes a subscription's label selector down to the API server, and after a restart
the informer reports objects of that scope that are gone as tombstones built from the ledger
(`mic.kube.informer._tombstone`: name, namespace, uid, resourceVersion; no labels). Re-checking
the selector on such a tombstone dropped the DELETED, and the delete was lost.
"""

from __future__ import annotations

from typing import Any

import pytest

from mic.events.event import Event, EventType
from mic.routing import SubscriptionFilter, SubscriptionMatcher, SubscriptionSpec, WebhookSink


def matcher(selector: str) -> SubscriptionMatcher:
    spec = SubscriptionSpec(
        "s",
        SubscriptionFilter(resources=("configmaps",), label_selector=selector),
        WebhookSink("http://recipient.example/hook"),
    )
    return SubscriptionMatcher(spec, frozenset({"configmaps"}))


def event(type_: EventType, metadata: dict[str, Any]) -> Event:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    return Event(type_, "c1", "", "v1", "ConfigMap", "configmaps", "shop", "web", "u1", "7", obj)


TOMBSTONE = {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7"}


@pytest.mark.parametrize("selector", ["app=web", "app in (web,api)", "app", "tier notin (db),app"])
def test_a_tombstone_deleted_passes_the_label_selector(selector: str) -> None:
    assert matcher(selector).matches(event(EventType.DELETED, TOMBSTONE), {})


@pytest.mark.parametrize("type_", [EventType.ADDED, EventType.MODIFIED])
def test_other_events_without_labels_are_still_checked(type_: EventType) -> None:
    assert not matcher("app=web").matches(event(type_, TOMBSTONE), {})


def test_a_deleted_object_with_labels_is_still_checked() -> None:
    m = matcher("app=web")
    assert not m.matches(event(EventType.DELETED, {**TOMBSTONE, "labels": {"app": "db"}}), {})
    assert not m.matches(event(EventType.DELETED, {**TOMBSTONE, "labels": {}}), {})
    assert m.matches(event(EventType.DELETED, {**TOMBSTONE, "labels": {"app": "web"}}), {})
