"""The OpenAPI document of the cluster and original-API routes: examples that work as they are
when tried in Swagger, a description on every field, errors documented as they are sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mic_api_harness import Api
from pydantic import BaseModel

from mic.api import models
from mic.api.routes import original

pytestmark = pytest.mark.integration

CONTROLLER = "/cic/nitro/v1/config/controller"
MODELS: dict[str, type[BaseModel]] = {
    "ClusterSpec": models.ClusterSpec,
    "ClusterReplacement": models.ClusterReplacement,
    "ClusterPatch": models.ClusterPatch,
    "ControllerRegistration": original.ControllerRegistration,
    "ControllerName": original.ControllerName,
}
"""Request bodies of the routes checked here, by their name in `components/schemas`."""

OWN_SCHEMAS = sorted(
    {
        value.__name__
        for module in (models, original)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
    }
    - {"ApiModel", "RequestModel"}
)


def checked(path: str) -> bool:
    return path.startswith(("/v1/clusters", "/cic/nitro/v1/config/"))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        if checked(path):
            for method, operation in item.items():
                yield path, method, operation


def body_examples(document: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, Any]]:
    """(schema name, example) for every example of the request body, wherever it is written."""
    found: list[tuple[str, Any]] = []
    for media in operation["requestBody"]["content"].values():
        name = media["schema"]["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
        examples = list(schema.get("examples") or [])
        examples += [media["example"]] if "example" in media else []
        examples += [e["value"] for e in (media.get("examples") or {}).values()]
        found += [(name, example) for example in examples]
    return found


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_every_request_body_example_validates_against_its_model(document: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        examples = body_examples(document, operation)
        assert examples, f"{method.upper()} {path} shows no example"
        for name, example in examples:
            MODELS[name].model_validate(example)  # raises on an invalid example
            seen.add(name)
    assert seen == set(MODELS)


async def test_examples_as_swagger_sends_them_are_accepted(api: Api, document: dict[str, Any]) -> None:
    def example(path: str, method: str) -> Any:
        # The first one: what Swagger fills in (PATCH lists it under both of its media types).
        return body_examples(document, document["paths"][path][method])[0][1]

    cluster = example("/v1/clusters", "post")
    name = cluster["name"]
    steps = [
        ("POST", "/v1/clusters", cluster, {}, 201),
        ("PUT", f"/v1/clusters/{name}", example("/v1/clusters/{name}", "put"), {}, 200),
        (
            "PATCH",
            f"/v1/clusters/{name}",
            example("/v1/clusters/{name}", "patch"),
            {"Content-Type": "application/merge-patch+json"},
            200,
        ),
        ("POST", CONTROLLER, example(CONTROLLER, "post"), {}, 200),
        ("PUT", CONTROLLER, example(CONTROLLER, "put"), {}, 200),
        ("DELETE", CONTROLLER, example(CONTROLLER, "delete"), {}, 200),
    ]
    for method, path, body, headers, status in steps:
        response = await api.request(method, path, json=body, headers=headers)
        assert response.status_code == status, f"{method} {path}: {response.text}"


async def test_every_field_has_a_description(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"ClusterSpec", "Cluster", "ErrorBody", "ControllerView"} <= set(OWN_SCHEMAS)
    missing = [
        f"{name}.{field}"
        for name in OWN_SCHEMAS
        if name in schemas
        for field, schema in schemas[name].get("properties", {}).items()
        if not schema.get("description")
    ]
    assert missing == []


async def test_errors_are_documented_as_the_json_error_body_they_are(document: dict[str, Any]) -> None:
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    wrong: list[str] = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and response.get("content") != {"application/json": {"schema": error_body}}:
                wrong.append(f"{method.upper()} {path} {status}: {response.get('content')}")
    assert wrong == []


async def test_every_route_that_can_miss_documents_404(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if "{" in path or (path == CONTROLLER and method in ("put", "delete")):
            assert "404" in operation["responses"], f"{method.upper()} {path}"


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = document["components"]["schemas"]
    assert [ref for ref in refs(document) if ref.removeprefix("#/components/schemas/") not in schemas] == []
