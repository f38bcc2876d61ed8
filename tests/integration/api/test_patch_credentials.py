"""A merge-patch merges `sink.headers`, so sending `headers` is not the same as sending the
stored ones again: `{}` or one new header kept the stored Authorization, and a PATCH moving
the URL (or the trusted CA) with such a headers object sent it to the new destination."""

from __future__ import annotations

from typing import Any

import pytest
from mic_api_harness import Api

from mic.service.connections import EXAMPLE_CA_PEM

pytestmark = pytest.mark.integration

GOOD = "https://lb.example/hook"
EVIL = "https://elsewhere.example/hook"
SECRET = "Bearer stored-s3cret"


async def stored_headers(api: Api) -> dict[str, Any]:
    headers: dict[str, Any] = (await api.service.store.get_subscription("lb")).spec["sink"]["headers"]
    return headers


@pytest.fixture
async def subscribed(api: Api) -> Api:
    created = await api.post(
        "/v1/subscriptions",
        json={
            "name": "lb",
            "filter": {"resources": ["ingresses"]},
            "sink": {"url": GOOD, "headers": {"Authorization": SECRET, "X-Team": "lb"}},
        },
    )
    assert created.status_code == 201, created.text
    return api


@pytest.mark.parametrize(
    "move",
    [{"url": EVIL}, {"tls": {"caData": EXAMPLE_CA_PEM}}, {"tls": {"serverName": "elsewhere.example"}}],
)
@pytest.mark.parametrize("headers", [{}, {"X-New": "1"}, {"Authorization": "Bearer new"}])
async def test_moving_a_sink_needs_every_stored_header_named(
    subscribed: Api, move: dict[str, Any], headers: dict[str, Any]
) -> None:
    refused = await subscribed.patch("/v1/subscriptions/lb", json={"sink": {**move, "headers": headers}})
    assert refused.status_code == 422, refused.text
    assert "send sink.headers again" in refused.json()["detail"]
    assert (await stored_headers(subscribed))["Authorization"] == SECRET


@pytest.mark.parametrize(
    ("headers", "after"),
    [
        ({"Authorization": "Bearer new", "X-Team": None}, {"Authorization": "Bearer new"}),
        ({"Authorization": None, "X-Team": "lb"}, {"X-Team": "lb"}),
        (None, {}),
    ],
)
async def test_naming_every_stored_header_or_dropping_them_moves_the_sink(
    subscribed: Api, headers: dict[str, Any] | None, after: dict[str, str]
) -> None:
    moved = await subscribed.patch("/v1/subscriptions/lb", json={"sink": {"url": EVIL, "headers": headers}})
    assert moved.status_code == 200, moved.text
    assert await stored_headers(subscribed) == after


async def test_a_new_secret_with_previous_null_starts_no_overlap(api: Api) -> None:
    old = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    new = "whsec_" + "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="
    created = await api.post(
        "/v1/subscriptions",
        json={
            "name": "lb",
            "filter": {"resources": ["ingresses"]},
            "sink": {"url": GOOD, "signingSecret": old},
        },
    )
    assert created.status_code == 201, created.text
    rotated = await api.patch(
        "/v1/subscriptions/lb", json={"sink": {"signingSecret": new, "previousSigningSecret": None}}
    )
    assert rotated.status_code == 200, rotated.text
    assert "previousSigningSecretExpiresAt" not in rotated.json()["sink"]
    assert "previousSigningSecret" not in (await api.service.store.get_subscription("lb")).spec["sink"]
