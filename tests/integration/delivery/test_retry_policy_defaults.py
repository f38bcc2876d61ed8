"""Retries as a recipient that is down, re-keyed or saying "back off" needs them (real HTTP).

* With the default policy an event had 12 attempts: with the default backoff (capped at 60 s)
  a recipient down for about 4 minutes lost events to dead letters long before
  `maxAgeSeconds` (3600). Now there is no attempt limit unless one is set: retried until
  `maxAgeSeconds`.
* 401/403 were permanent: a recipient whose credentials or signing secret were rotated had
  every event dead-lettered until the admin updated MIC. Now they are retried.
* A 429/503 `Retry-After` delayed only the object that got it; new objects kept being sent.
  Now the whole subscription waits until then (and per-object order still holds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import orjson
import pytest
from delivery_helpers import Pipeline, eventually

from mic.routing.spec import DeliveryPolicy, SubscriptionSpec
from mic.testing.objects import configmap
from mic.testing.recipient import Received
from mic.testing.recipient import WebhookRecipient as Recipient

FAST = {"initialBackoffSeconds": 0.01, "maxBackoffSeconds": 0.02}


def test_the_default_policy_has_no_attempt_limit() -> None:
    assert DeliveryPolicy().max_attempts is None
    spec = SubscriptionSpec.from_json(
        {"name": "lb", "filter": {"resources": ["ingresses"]}, "sink": {"url": "http://lb.example/h"}}
    )
    assert spec.delivery.max_attempts is None
    assert spec.delivery.to_json()["maxAttempts"] is None
    assert SubscriptionSpec.from_json(spec.to_json()) == spec
    assert DeliveryPolicy.from_json({"maxAttempts": 5}).max_attempts == 5


async def test_by_default_a_recipient_that_is_down_is_retried_past_the_old_limit(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe("lb", recipient, delivery=FAST)
    kube_emulator.create(configmap("web", v="0"))
    # The old default (12 attempts) dead-lettered the event at its 12th request.
    await eventually(lambda: len(recipient.requests) >= 30)
    assert pipeline.engine.status("lb").dead == 0
    recipient.status = 200
    await recipient.wait_events(lambda events: [e["subject"] for e in events] == ["default/web"])
    await eventually(lambda: pipeline.engine.status("lb").backlog == 0)
    assert pipeline.engine.status("lb").dead == 0


async def test_max_age_still_ends_the_retries(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe("lb", recipient, delivery={**FAST, "maxAgeSeconds": 0.5})
    kube_emulator.create(configmap("web", v="0"))
    await eventually(lambda: pipeline.engine.status("lb").dead == 1)
    assert pipeline.engine.status("lb").backlog == 0


@pytest.mark.parametrize("refusal", [401, 403])
async def test_a_refusal_of_credentials_is_retried_until_they_are_fixed(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, refusal: int
) -> None:
    await pipeline.add_cluster(kube_emulator)
    fixed = {"now": False}
    recipient.status = lambda received: 200 if fixed["now"] else refusal
    await pipeline.subscribe("lb", recipient, delivery=FAST)
    kube_emulator.create(configmap("web", v="0"))
    await eventually(lambda: len(recipient.requests) >= 3)
    status = pipeline.engine.status("lb")
    assert status.dead == 0, f"{refusal} must not be permanent"
    assert status.last_error is not None
    assert str(refusal) in status.last_error
    fixed["now"] = True  # the admin updated the sink's credentials
    await recipient.wait_events(lambda events: [e["subject"] for e in events] == ["default/web"])
    await eventually(lambda: pipeline.engine.status("lb").backlog == 0)
    assert pipeline.engine.status("lb").dead == 0


@pytest.mark.parametrize("busy", [429, 503])
async def test_retry_after_pauses_the_whole_subscription(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, busy: int
) -> None:
    pause = 2.0
    await pipeline.add_cluster(kube_emulator)
    arrivals: list[tuple[float, str]] = []  # (monotonic time, subject) of every request

    def answer(received: Received) -> int:
        arrivals.append((time.monotonic(), orjson.loads(received.body)["subject"]))
        return busy if len(arrivals) == 1 else 200

    recipient.status = answer
    recipient.retry_after = f"{pause:g}"
    await pipeline.subscribe(
        "lb", recipient, delivery={"initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.1}
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.create(configmap("first", v="0"))
    # The refusal is recorded (and with it the pause) before anything else happens.
    await eventually(lambda: pipeline.engine.status("lb").retrying == 1)
    told_at = arrivals[0][0]
    expected: dict[str, list[str]] = defaultdict(list)
    for name in ("other", "third"):
        made = kube_emulator.create(configmap(name, v="0"))
        expected[f"default/{name}"].append(made["metadata"]["resourceVersion"])
        for v in ("1", "2"):
            made = kube_emulator.patch("configmaps", name, {"data": {"v": v}})
            expected[f"default/{name}"].append(made["metadata"]["resourceVersion"])
    await recipient.wait_events(lambda events: len(events) == 7)
    # Nothing, new objects included, was sent before the recipient's Retry-After ran out.
    early = [(at - told_at, subject) for at, subject in arrivals[1:] if at < told_at + pause - 0.05]
    assert early == []
    got: dict[str, list[str]] = defaultdict(list)
    for event in recipient.events():
        if event["subject"] != "default/first":
            got[event["subject"]].append(event["resourceversion"])
    assert got == expected  # per-object order kept across the pause
    assert [e["subject"] for e in recipient.events()].count("default/first") == 1
    await eventually(lambda: pipeline.engine.status("lb").backlog == 0)
    assert pipeline.engine.status("lb").dead == 0
