"""Rotating a sink's signing secret: for 24 hours MIC signs with the new and the replaced
secret (two space-separated signatures, as Standard Webhooks allows), so a receiver still
holding the old secret keeps accepting MIC's requests until it is switched over. Before, a
rotation made every receiver refuse MIC at once."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from mic_api_harness import Api

from mic.delivery.signing import SECRET_ROTATION_OVERLAP, SignatureVerificationError, verify
from mic.routing.spec import SubscriptionSpec
from mic.testing.recipient import WebhookRecipient

pytestmark = pytest.mark.integration

OLD = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
NEW = "whsec_" + "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="


async def ping(api: Api, recipient: WebhookRecipient) -> tuple[dict[str, str], bytes]:
    before = len(recipient.requests)
    answer = await api.post("/v1/subscriptions/lb/test")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True, answer.text
    received = recipient.requests[before]
    return received.headers, received.body


def verifies(secret: str, request: tuple[dict[str, str], bytes]) -> bool:
    try:
        verify(secret, *request)
    except SignatureVerificationError:
        return False
    return True


async def create_signed(api: Api, url: str) -> dict[str, Any]:
    """A subscription `lb` signed with OLD."""
    created = await api.post(
        "/v1/subscriptions",
        json={
            "name": "lb",
            "filter": {"resources": ["ingresses"]},
            "sink": {"url": url, "signingSecret": OLD},
        },
    )
    assert created.status_code == 201, created.text
    view: dict[str, Any] = created.json()
    return view


async def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends(api: Api) -> None:
    async with WebhookRecipient() as recipient:
        created = await create_signed(api, recipient.url)
        assert "previousSigningSecretExpiresAt" not in created["sink"]
        only_old = await ping(api, recipient)
        assert len(only_old[0]["webhook-signature"].split()) == 1

        rotated = await api.patch("/v1/subscriptions/lb", json={"sink": {"signingSecret": NEW}})
        assert rotated.status_code == 200, rotated.text
        until = datetime.fromisoformat(rotated.json()["sink"]["previousSigningSecretExpiresAt"])
        assert abs(until.timestamp() - (time.time() + SECRET_ROTATION_OVERLAP)) < 60
        both = await ping(api, recipient)
        assert len(both[0]["webhook-signature"].split()) == 2
        assert verifies(OLD, both)
        assert verifies(NEW, both)
        assert OLD not in rotated.text
        assert OLD not in (await api.get("/v1/subscriptions/lb")).text

        # Other edits keep the overlap; so does a PUT that leaves the secret out.
        edited = await api.patch("/v1/subscriptions/lb", json={"format": "raw"})
        assert edited.status_code == 200, edited.text
        assert (
            edited.json()["sink"]["previousSigningSecretExpiresAt"]
            == rotated.json()["sink"]["previousSigningSecretExpiresAt"]
        )
        replaced = await api.put(
            "/v1/subscriptions/lb",
            json={"filter": {"resources": ["ingresses"]}, "sink": {"url": recipient.url}},
        )
        assert replaced.status_code == 200, replaced.text
        assert "previousSigningSecretExpiresAt" in replaced.json()["sink"]
        assert verifies(OLD, await ping(api, recipient))

        # Only MIC sets the previous secret; a request may only end the overlap.
        forged = await api.patch("/v1/subscriptions/lb", json={"sink": {"previousSigningSecret": OLD}})
        assert forged.status_code == 422, forged.text
        ended = await api.patch("/v1/subscriptions/lb", json={"sink": {"previousSigningSecret": None}})
        assert ended.status_code == 200, ended.text
        assert "previousSigningSecretExpiresAt" not in ended.json()["sink"]
        after = await ping(api, recipient)
        assert verifies(NEW, after)
        assert not verifies(OLD, after)


async def test_an_expired_overlap_signs_with_the_new_secret_only(api: Api) -> None:
    async with WebhookRecipient() as recipient:
        await create_signed(api, recipient.url)
        assert (
            await api.patch("/v1/subscriptions/lb", json={"sink": {"signingSecret": NEW}})
        ).status_code == 200
        record = await api.service.store.get_subscription("lb")
        spec: dict[str, Any] = dict(record.spec)
        spec["sink"] = {**spec["sink"], "previousSigningSecretExpiresAt": time.time() - 1}
        await api.service.subscriptions.replace(
            SubscriptionSpec.from_json(spec), expected_generation=record.generation
        )
        assert "previousSigningSecretExpiresAt" not in (await api.get("/v1/subscriptions/lb")).json()["sink"]
        request = await ping(api, recipient)
        assert verifies(NEW, request)
        assert not verifies(OLD, request)


async def test_removing_the_secret_ends_the_overlap(api: Api) -> None:
    await create_signed(api, "http://127.0.0.1:9/")
    assert (await api.patch("/v1/subscriptions/lb", json={"sink": {"signingSecret": NEW}})).status_code == 200
    unsigned = await api.patch("/v1/subscriptions/lb", json={"sink": {"signingSecret": None}})
    assert unsigned.status_code == 200, unsigned.text
    assert unsigned.json()["sink"]["hasSigningSecret"] is False
    stored = (await api.service.store.get_subscription("lb")).spec["sink"]
    assert "previousSigningSecret" not in stored
