"""Small builders of Kubernetes objects for tests and demos, so tests say what differs."""

from __future__ import annotations

from typing import Any


def configmap(
    name: str, namespace: str = "default", labels: dict[str, str] | None = None, **data: str
) -> dict[str, Any]:
    """A ConfigMap; keyword arguments become its `data`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "data": data,
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def ingress(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    hosts: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An Ingress routing each host to a service named after the ingress."""
    rules = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"number": 80}}},
                    }
                ]
            },
        }
        for host in hosts or (f"{name}.example.com",)
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"rules": rules},
    }
