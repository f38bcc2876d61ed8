"""`mic.testing.objects` builds objects the emulator serves and a Hub reads back as sent."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hub_helpers import connect

from mic.hub import Hub
from mic.testing import KubeEmulator
from mic.testing import objects as build

WEB = {"app": "web"}

BUILT: dict[str, dict[str, Any]] = {
    "services": build.service("web", "shop", WEB, ports={"http": 80, "metrics": (9090, "metrics")}),
    "endpointslices": build.endpointslice(
        "web-x7k2p", "shop", service="web", addresses=("10.0.0.1", "10.0.0.2"), ports={"http": 8080}
    ),
    "endpoints": build.endpoints("web", "shop", WEB, addresses=("10.0.0.1",), ports={"http": 8080}),
    "secrets": build.secret("tls", "shop", data={"tls.crt": "CERT", "tls.key": b"\x00key"}),
    "pods": build.pod("web-0", "shop", WEB, ip="10.0.0.1", node_name="node-1"),
}


@pytest.mark.parametrize("resource", sorted(BUILT))
async def test_a_built_object_is_created_and_read_back_through_a_hub(
    hub: Hub, kube_emulator: KubeEmulator, resource: str
) -> None:
    sent = BUILT[resource]
    kube_emulator.create(build.namespace("shop"))
    stored = kube_emulator.create(sent)
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch(resource)
    assert await hub.wait_synced(timeout=5)

    read = hub.get("c1", resource, sent["metadata"]["name"], namespace="shop")

    assert read is not None
    assert read["metadata"]["uid"] == stored["metadata"]["uid"]
    assert read["metadata"]["resourceVersion"]
    assert read["metadata"]["creationTimestamp"]
    assert (read["apiVersion"], read["kind"]) == (sent["apiVersion"], sent["kind"])
    for key in ("name", "namespace", "labels"):
        assert read["metadata"][key] == sent["metadata"][key]
    assert {k: v for k, v in read.items() if k not in ("metadata", "apiVersion", "kind")} == {
        k: v for k, v in sent.items() if k not in ("metadata", "apiVersion", "kind")
    }


def test_service_ports_default_as_the_api_server_defaults_them() -> None:
    service = build.service("web")
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "web"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}],
    }
    assert build.service("web", cluster_ip="10.96.0.10")["spec"]["clusterIPs"] == ["10.96.0.10"]


def test_an_endpointslice_names_its_service_and_each_endpoint() -> None:
    slice_ = BUILT["endpointslices"]
    assert slice_["apiVersion"] == "discovery.k8s.io/v1"
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "web"}
    assert slice_["addressType"] == "IPv4"
    assert slice_["endpoints"][1] == {
        "addresses": ["10.0.0.2"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
    }
    assert slice_["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]


def test_secret_data_is_base64_as_the_api_returns_it() -> None:
    secret = BUILT["secrets"]
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["tls.crt"]) == b"CERT"
    assert base64.b64decode(secret["data"]["tls.key"]) == b"\x00key"


def test_a_pod_with_an_ip_is_running_there() -> None:
    pod = BUILT["pods"]
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["status"] == {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}
    assert build.pod("idle")["status"] == {"phase": "Pending"}


def test_endpoints_without_addresses_have_no_subsets() -> None:
    empty = build.endpoints("web")
    assert empty["metadata"] == {"name": "web", "namespace": "default", "labels": {}}
    assert "subsets" not in empty
    assert BUILT["endpoints"]["subsets"] == [
        {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}
    ]
