"""Realistic Kubernetes objects for the benchmarks: ConfigMap ~1 KB, Ingress ~2 KB, EndpointSlice ~4 KB.

Sizes are of the JSON the API server sends (with `managedFields`, as a real server keeps them).
The emulator drops `managedFields` on create and update (a documented difference from
kube-apiserver), so the emulator host puts them back into stored objects and into firehose
lines itself (see `bench.hosts.EmulatorHost`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

KubeObject = dict[str, Any]

# kubectl name, apiVersion, kind, a short label for tables
KINDS: dict[str, tuple[str, str, str]] = {
    "configmaps": ("v1", "ConfigMap", "ConfigMap"),
    "ingresses": ("networking.k8s.io/v1", "Ingress", "Ingress"),
    "endpointslices": ("discovery.k8s.io/v1", "EndpointSlice", "EndpointSlice"),
}

TS_ANNOTATION = "bench.mic.io/ts"
"""Where latency scenarios put the time (epoch seconds) a change was made in the emulator."""

_TIME = "2026-11-20T09:14:27Z"


def _hex(seed: str, n: int) -> str:
    return hashlib.blake2b(seed.encode(), digest_size=max(1, n // 2)).hexdigest()[:n]


def _labels(name: str, i: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name.rsplit("-", 1)[0],
        "app.kubernetes.io/instance": f"shop-{i % 7}",
        "app.kubernetes.io/part-of": "storefront",
        "app.kubernetes.io/managed-by": "Helm",
        "team": ("payments", "search", "checkout", "catalog")[i % 4],
    }


def configmap(name: str, namespace: str, i: int) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": _labels(name, i),
            "annotations": {"meta.helm.sh/release-name": f"shop-{i % 7}"},
        },
        "data": {
            "LOG_LEVEL": "info",
            "FEATURE_FLAGS": "new-checkout,fast-search,recommendations-v2",
            "UPSTREAM_URL": f"http://catalog-{i % 13}.shop.svc.cluster.local:8080/api/v2",
            "application.yaml": (
                "server:\n  port: 8080\n  shutdown: graceful\ncache:\n  ttl: 300s\n  size: 10000\n"
                "tracing:\n  sampler: 0.01\n  endpoint: otel-collector.observability:4317\n"
                f"id: {_hex(name, 24)}\n"
            ),
        },
    }


def ingress(name: str, namespace: str, i: int) -> KubeObject:
    host = f"{name}.shop-{i % 7}.example.com"
    paths = [
        {
            "path": p,
            "pathType": "Prefix",
            "backend": {"service": {"name": f"{name}-{s}", "port": {"number": 8080 + k}}},
        }
        for k, (p, s) in enumerate((("/", "web"), ("/api", "api"), ("/static", "assets"), ("/ws", "push")))
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": _labels(name, i),
            "annotations": {
                "meta.helm.sh/release-name": f"shop-{i % 7}",
                "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                "cert-manager.io/cluster-issuer": "letsencrypt-prod",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
            "rules": [{"host": host, "http": {"paths": paths}}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": f"203.0.113.{i % 250 + 1}"}]}},
    }


def endpointslice(name: str, namespace: str, i: int) -> KubeObject:
    endpoints = [
        {
            "addresses": [f"10.{i % 200}.{k}.{(i * 7 + k) % 250 + 1}"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": f"node-{(i + k) % 40:03d}.eu-west-1.compute.internal",
            "zone": ("eu-west-1a", "eu-west-1b", "eu-west-1c")[k % 3],
            "targetRef": {
                "kind": "Pod",
                "namespace": namespace,
                "name": f"{name}-{_hex(f'{name}{k}', 10)}-{_hex(f'{k}{name}', 5)}",
                "uid": f"{_hex(f'u{name}{k}', 8)}-{_hex(f'v{k}', 4)}-{_hex(f'w{k}', 4)}-{_hex('x', 4)}-"
                f"{_hex(f'y{name}{k}', 12)}",
            },
        }
        for k in range(10)
    ]
    labels = _labels(name, i)
    labels["kubernetes.io/service-name"] = name
    labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}",
            "namespace": namespace,
            "labels": labels,
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": _TIME},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": f"{_hex(name, 8)}-1111-2222-3333-{_hex(name + 's', 12)}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 8080},
            {"name": "metrics", "protocol": "TCP", "port": 9090},
        ],
    }


def _fields(obj: KubeObject) -> dict[str, Any]:
    """A fieldsV1 tree naming every field of `obj` below the top (as server-side apply does)."""

    def tree(value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return {f"f:{k}": tree(v) for k, v in value.items()}
        return {}

    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = body.get("metadata") or {}
    body["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
    return tree(body)


def managed_fields(obj: KubeObject) -> list[dict[str, Any]]:
    """What a real API server records for an object written by Helm and touched by a controller."""
    entries: list[dict[str, Any]] = [
        {
            "manager": "helm",
            "operation": "Update",
            "apiVersion": obj["apiVersion"],
            "time": _TIME,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields(obj),
        }
    ]
    if "status" in obj:
        entries.append(
            {
                "manager": "nginx-ingress-controller",
                "operation": "Update",
                "apiVersion": obj["apiVersion"],
                "time": _TIME,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}},
                "subresource": "status",
            }
        )
    return entries


MAKERS: dict[str, Callable[[str, str, int], KubeObject]] = {
    "configmaps": configmap,
    "ingresses": ingress,
    "endpointslices": endpointslice,
}


def make(resource: str, i: int, namespace: str = "default", prefix: str = "obj") -> KubeObject:
    """Object number `i` of a resource (names `prefix-i` are unique per resource)."""
    return MAKERS[resource](f"{prefix}-{i:06d}", namespace, i)
