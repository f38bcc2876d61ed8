"""`mic clusters list`: a resource watched by several informers shows once in RESOURCES.

The API reports one `status.resources` entry per informer, so a resource the cluster watches in
all namespaces and a subscription watches in one namespace (or with a label selector) appears
several times there; the table must not repeat it, nor count its objects more than once.
"""

from __future__ import annotations

from typing import Any

from fake_mic_api import FakeMic, Run, cluster_json


def informer(
    resource: str, count: int, namespaces: list[str] | None = None, selector: str = ""
) -> dict[str, Any]:
    return {
        "resource": resource,
        "namespaces": namespaces,
        "labelSelector": selector,
        "state": "watching",
        "synced": True,
        "objectCount": count,
        "resourceVersion": "1200",
        "lastError": None,
        "lastEventTime": "2024-05-01T10:05:00Z",
    }


def test_each_resource_once_with_its_widest_informers_count(run: Run, fake_mic: FakeMic) -> None:
    status = {
        "state": "ready",
        "lastError": None,
        "serverVersion": "v1.30.2",
        "lastEventTime": "2024-05-01T10:05:00Z",
        "resources": [
            informer("ingresses.networking.k8s.io", 3),
            informer("ingresses.networking.k8s.io", 2, namespaces=["shop"]),
            informer("ingresses.networking.k8s.io", 1, selector="app=web"),
            informer("services", 4),
            informer("services", 1, namespaces=["blog"]),
        ],
    }
    fake_mic.on("GET", "/v1/clusters", (200, {"items": [cluster_json("eu-1", status=status)]}))

    result = run("clusters", "list")

    assert result.exit_code == 0, result.output
    row = result.stdout.splitlines()[1].split()
    assert row == [
        "eu-1",
        "ready",
        "v1.30.2",
        "region=eu,tier=prod",
        "ingresses.networking.k8s.io,services",
        "7",
    ]


def test_requested_resources_listed_once_before_any_informer_runs(run: Run, fake_mic: FakeMic) -> None:
    status = {"state": "connecting", "lastError": None, "serverVersion": None, "resources": []}
    cluster = cluster_json("eu-1", labels={}, resources=["ingresses", "services", "ingresses"], status=status)
    fake_mic.on("GET", "/v1/clusters", (200, {"items": [cluster]}))

    result = run("clusters", "list")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == ["eu-1", "connecting", "ingresses,services", "0"]
