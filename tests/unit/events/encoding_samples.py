"""Events shared by the encoding tests: an Ingress (namespaced, named group), a Secret (core
group) and a Namespace (cluster-scoped), all observed at a fixed time.

Test modules import this module (its name is unique in the tests tree), never the conftest.
"""

from __future__ import annotations

from typing import Any

from mic.events import Event, EventType

OBSERVED_AT = 1714564800.25  # 2024-05-01T12:00:00.250000Z
UID = "3f1c6a3e-1111-2222-3333-444455556666"


def ingress_object(rv: str = "12345", host: str = "web.example.com") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": UID,
            "resourceVersion": rv,
            "generation": 3,
            "labels": {"app": "web"},
        },
        "spec": {"rules": [{"host": host}]},
    }


def secret_object(rv: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "default",
            "uid": "secret-uid",
            "resourceVersion": rv,
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}',
                "team": "payments",
            },
        },
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
        "stringData": {"token": "clear-text"},
    }


def ingress_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "type": EventType.MODIFIED,
        "cluster": "prod-eu",
        "group": "networking.k8s.io",
        "version": "v1",
        "kind": "Ingress",
        "resource": "ingresses",
        "namespace": "default",
        "name": "web",
        "uid": UID,
        "resource_version": "12345",
        "object": ingress_object(),
        "old_object": ingress_object("12300", "old.example.com"),
        "observed_at": OBSERVED_AT,
    }
    fields.update(overrides)
    return Event(**fields)


def secret_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "type": EventType.MODIFIED,
        "cluster": "prod-eu",
        "group": "",
        "version": "v1",
        "kind": "Secret",
        "resource": "secrets",
        "namespace": "default",
        "name": "db",
        "uid": "secret-uid",
        "resource_version": "7",
        "object": secret_object(),
        "old_object": secret_object("6"),
        "observed_at": OBSERVED_AT,
    }
    fields.update(overrides)
    return Event(**fields)


def namespace_event() -> Event:
    return Event(
        type=EventType.ADDED,
        cluster="prod-eu",
        group="",
        version="v1",
        kind="Namespace",
        resource="namespaces",
        namespace=None,
        name="shop",
        uid="ns-uid",
        resource_version="42",
        object={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "ns-uid"}},
        observed_at=OBSERVED_AT,
    )
