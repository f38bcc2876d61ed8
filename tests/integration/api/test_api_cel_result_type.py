"""`/v1/subscriptions`: a CEL filter that does not return true or false is a 422 when written.

Accepted, it would make every event a CEL error, and the subscription would deliver nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api

pytestmark = pytest.mark.integration

HOOK = "http://127.0.0.1:9/hook"  # never contacted: these tests do not start a cluster


def body(cel: str) -> dict[str, Any]:
    return {"name": "s6", "filter": {"resources": ["configmaps"], "cel": cel}, "sink": {"url": HOOK}}


async def test_a_cel_filter_that_returns_no_bool_is_422_on_post_and_patch(api: Api) -> None:
    refused = await api.post("/v1/subscriptions", json=body("object.metadata.name"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith(
        "filter.cel: invalid CEL expression 'object.metadata.name': a filter must return true or"
        " false, but this one returns a string"
    )
    assert (await api.get("/v1/subscriptions")).json()["items"] == []

    accepted = "object.metadata.name == 'app-config'"
    created = await api.post("/v1/subscriptions", json=body(accepted))
    assert created.status_code == 201, created.text
    patched = await api.patch("/v1/subscriptions/s6", json={"filter": {"cel": "size(object.data)"}})
    assert patched.status_code == 422, patched.text
    assert "but this one returns an int" in patched.json()["detail"]
    assert (await api.get("/v1/subscriptions/s6")).json()["filter"]["cel"] == accepted
