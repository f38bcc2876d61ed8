"""Which answers are retried, and which pause a whole subscription (no network).

401/403 were permanent (dead letters at once); a recipient that rotated its credentials or
signing secret answers them until the admin updates MIC, so they are retried now. The other
4xx stay permanent: the same request gets the same answer.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from mic.delivery.acks import Acknowledgements
from mic.delivery.lane import Pending, SubscriptionLane, object_key
from mic.delivery.sink import Outcome, SendResult, WebhookClient, classify
from mic.events import Event, EventType
from mic.routing.spec import DeliveryPolicy, InvalidSubscriptionError, SubscriptionSpec
from mic.store import Store


@pytest.mark.parametrize("status", [401, 403, 408, 429, 500, 502, 503, 504])
def test_retried_answers(status: int) -> None:
    assert classify(status) is Outcome.RETRY


@pytest.mark.parametrize("status", [301, 302, 307, 400, 404, 405, 409, 410, 413, 415, 422])
def test_permanent_answers(status: int) -> None:
    assert classify(status) is Outcome.PERMANENT


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_delivered_answers(status: int) -> None:
    assert classify(status) is Outcome.DELIVERED


def test_max_attempts_is_optional_and_still_validated() -> None:
    assert DeliveryPolicy().max_attempts is None
    assert DeliveryPolicy.from_json({"maxAttempts": None}).max_attempts is None
    assert DeliveryPolicy.from_json({"maxAttempts": 3}).max_attempts == 3
    with pytest.raises(InvalidSubscriptionError, match="between 1 and 1000"):
        DeliveryPolicy.from_json({"maxAttempts": 0})


def _lane(now: list[float]) -> SubscriptionLane:
    spec = SubscriptionSpec.from_json(
        {"name": "s", "filter": {"resources": ["configmaps"]}, "sink": {"url": "http://r.example/h"}}
    )
    return SubscriptionLane(
        spec,
        cast(Store, None),
        cast(WebhookClient, None),
        cast(Acknowledgements, None),
        clock=lambda: now[0],
    )


def _pending(name: str) -> Pending:
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}"}}
    event = Event(
        EventType.ADDED, "c1", "", "v1", "ConfigMap", "configmaps", "ns", name, f"u-{name}", "1", obj
    )
    return Pending(id=1, object_key=object_key(event), event=event, created_at=0.0, seq=1)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_of_a_busy_recipient_holds_every_object(status: int) -> None:
    now = [1000.0]
    lane = _lane(now)
    lane._add([_pending("new")])  # due now
    lane._pause_for(SendResult(Outcome.RETRY, status, "busy", 5.0, 1.0), now[0])
    assert lane._start_ready() == 1005.0  # nothing started: look again when the pause ends
    assert not lane._senders


async def test_retry_after_of_another_answer_holds_only_its_object() -> None:
    now = [1000.0]
    lane = _lane(now)
    lane._pause_for(SendResult(Outcome.RETRY, 500, "failed", 5.0, 1.0), now[0])
    lane._pause_for(SendResult(Outcome.RETRY, 429, "busy", None, 1.0), now[0])
    assert lane._paused_until == 0.0
