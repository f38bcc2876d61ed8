"""Small builders of Kubernetes objects for tests and demos, so tests say what differs.

Each returns the object as a client sends it to be created and as the API server returns it,
less what the server adds (uid, resourceVersion, creationTimestamp, generation: the emulator
fills those) and what controllers the emulator does not run would add (a Service's clusterIP,
a Pod's node and status). `metadata.labels` is always set, `{}` when none (the API server
omits an empty map).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "PortSpec",
    "configmap",
    "endpoints",
    "endpointslice",
    "ingress",
    "namespace",
    "pod",
    "secret",
    "service",
]


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


PortSpec = int | tuple[int, int | str]
"""A port as the builders take it: `80`, or `(80, 8080)` / `(80, "http")` for (port, targetPort)."""


def _metadata(name: str, namespace: str, labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels or {})}


def service(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    selector: Mapping[str, str] | None = None,
    ports: Mapping[str, PortSpec] | None = None,
    service_type: str = "ClusterIP",
    cluster_ip: str | None = None,
) -> dict[str, Any]:
    """A Service selecting pods labelled `app=<name>` (or `selector`), on port 80 named "http".

    `ports` maps each port's name to its port, or to (port, targetPort); the targetPort
    defaults to the port, and the protocol is TCP, as the API server defaults them. The
    emulator runs no controllers, so no clusterIP is assigned unless `cluster_ip` is given.
    """
    spec: dict[str, Any] = {
        "type": service_type,
        "selector": dict(selector) if selector is not None else {"app": name},
        "ports": [_service_port(port_name, port) for port_name, port in (ports or {"http": 80}).items()],
    }
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels),
        "spec": spec,
    }


def _service_port(name: str, port: PortSpec) -> dict[str, Any]:
    number, target = port if isinstance(port, tuple) else (port, port)
    return {"name": name, "protocol": "TCP", "port": number, "targetPort": target}


def endpointslice(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    service: str | None = None,
    addresses: Sequence[str] = (),
    ports: Mapping[str, int] | None = None,
    ready: bool = True,
    address_type: str = "IPv4",
) -> dict[str, Any]:
    """An EndpointSlice (discovery.k8s.io/v1) of `service` (default: `name`): one endpoint per
    address, all `ready` (and serving, not terminating), ports by name (default "http": 80).

    It carries the `kubernetes.io/service-name` label, by which controllers find the slices
    of a service (kube's endpointslice controller names them `<service>-<random>`).
    """
    metadata = _metadata(name, namespace, labels)
    metadata["labels"]["kubernetes.io/service-name"] = service or name
    conditions = {"ready": ready, "serving": ready, "terminating": False}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": address_type,
        "endpoints": [{"addresses": [address], "conditions": dict(conditions)} for address in addresses],
        "ports": [
            {"name": port_name, "protocol": "TCP", "port": port}
            for port_name, port in (ports or {"http": 80}).items()
        ],
    }


def endpoints(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    addresses: Sequence[str] = (),
    ports: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Endpoints (core v1, the older form of EndpointSlice) of the service `name`: one subset
    with every address ready; without addresses no `subsets` at all, as the API returns them."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _metadata(name, namespace, labels),
    }
    if addresses:
        ports_list = [
            {"name": port_name, "protocol": "TCP", "port": port}
            for port_name, port in (ports or {"http": 80}).items()
        ]
        body["subsets"] = [{"addresses": [{"ip": address} for address in addresses], "ports": ports_list}]
    return body


def secret(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    data: Mapping[str, str | bytes] | None = None,
    secret_type: str = "Opaque",
) -> dict[str, Any]:
    """A Secret of `secret_type`; `data` values (text as UTF-8, or bytes) are base64-encoded
    as the API returns them (`stringData` is write-only: the API server folds it into `data`)."""
    encoded = {
        key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode("ascii")
        for key, value in (data or {}).items()
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, namespace, labels),
        "type": secret_type,
        "data": encoded,
    }


def pod(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    *,
    image: str = "registry.k8s.io/pause:3.9",
    ip: str | None = None,
    phase: str | None = None,
    node_name: str | None = None,
) -> dict[str, Any]:
    """A Pod with one container named "app" running `image`.

    In a cluster the scheduler and kubelet fill `spec.nodeName` and the status; the emulator
    runs neither, so say what a test needs: `ip` (status.podIP and podIPs; the phase becomes
    Running unless `phase` says otherwise), `phase` (default Pending), `node_name`.
    """
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": image}]}
    if node_name is not None:
        spec["nodeName"] = node_name
    status: dict[str, Any] = {"phase": phase or ("Running" if ip else "Pending")}
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(name, namespace, labels),
        "spec": spec,
        "status": status,
    }
