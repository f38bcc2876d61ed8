"""`GET /v1/resources/{resource}?clusters=…`: repeated and comma-separated names all apply."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api

from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def ingress(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": f"{name}.example.com"}]},
    }


def clusters_of(body: dict[str, Any]) -> list[str]:
    return sorted({item["cluster"] for item in body["items"]})


async def three_clusters(api: Api, kube_emulators: Any) -> None:
    for name in ["eu-1", "us-1", "ap-1"]:
        emulator: KubeEmulator = await kube_emulators(name=name)
        emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        emulator.create(ingress("web", "shop"))
        await api.add_cluster(name, emulator, resources=["ingresses"])


async def test_repeated_clusters_parameter_keeps_every_cluster(api: Api, kube_emulators: Any) -> None:
    await three_clusters(api, kube_emulators)

    response = await api.get("/v1/resources/ingresses?clusters=eu-1&clusters=us-1")
    assert response.status_code == 200, response.text
    assert clusters_of(response.json()) == ["eu-1", "us-1"]
    assert response.json()["errors"] == {}


async def test_comma_separated_and_repeated_mixed(api: Api, kube_emulators: Any) -> None:
    await three_clusters(api, kube_emulators)

    comma = (await api.get("/v1/resources/ingresses", params={"clusters": "eu-1,ap-1"})).json()
    assert clusters_of(comma) == ["ap-1", "eu-1"]

    mixed = (
        await api.get(
            "/v1/resources/ingresses",
            params=[
                ("clusters", "eu-1,us-1"),
                ("clusters", "ap-1"),
                ("clusters", "eu-1"),
                ("clusters", "nope"),
            ],
        )
    ).json()
    assert clusters_of(mixed) == ["ap-1", "eu-1", "us-1"]
    assert len(mixed["items"]) == 3  # eu-1 named twice, listed once
    assert mixed["errors"] == {"nope": "no cluster named 'nope'"}


async def test_openapi_documents_clusters_as_repeatable(api: Api) -> None:
    document = (await api.get("/openapi.json")).json()
    parameters = document["paths"]["/v1/resources/{resource}"]["get"]["parameters"]
    (clusters,) = [p for p in parameters if p["name"] == "clusters"]
    assert {"type": "array", "items": {"type": "string"}} in clusters["schema"]["anyOf"]
