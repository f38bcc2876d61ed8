"""`SubscriptionLane` with a spec it cannot send with: failed attempts, then a dead letter.

Such a spec can be in a database written before a validation existed (the spec is checked when
written, not when a lane sends). A sender that raised left its object marked in flight: the
backlog never moved, nothing was retried or dead, and `last_error` stayed empty. Here the lane
runs for real, on SQLite and against a real HTTP recipient.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mic.delivery.acks import Acknowledgements
from mic.delivery.lane import SubscriptionLane, object_key
from mic.delivery.sink import WebhookClient
from mic.events import Event, EventType
from mic.routing.spec import SubscriptionSpec
from mic.store import NewDelivery, Store, SubscriptionRecord
from mic.testing.recipient import WebhookRecipient


def configmap_event(name: str) -> Event:
    obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "1"}}
    return Event(
        EventType.ADDED, "c1", "", "v1", "ConfigMap", "configmaps", "ns", name, f"u-{name}", "1", obj
    )


def spec_for(recipient: WebhookRecipient) -> SubscriptionSpec:
    return SubscriptionSpec.from_json(
        {
            "name": "s",
            "filter": {"resources": ["configmaps"]},
            "sink": {"url": recipient.url},
            "delivery": {"maxAttempts": 2, "initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.1},
        }
    )


def stored_before_validation(spec: SubscriptionSpec, **sink: Any) -> SubscriptionSpec:
    """`spec` with sink fields set past validation, as an old database can hold them."""
    bad_sink = dataclasses.replace(spec.sink)
    for name, value in sink.items():
        object.__setattr__(bad_sink, name, value)
    bad = dataclasses.replace(spec)
    object.__setattr__(bad, "sink", bad_sink)
    return bad


@pytest.fixture
async def recipient() -> AsyncIterator[WebhookRecipient]:
    async with WebhookRecipient() as running:
        yield running


@pytest.fixture
async def store(tmp_path: Path, recipient: WebhookRecipient) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/mic.db")
    try:
        await opened.create_subscription(SubscriptionRecord(name="s", spec=spec_for(recipient).to_json()))
        event = configmap_event("a")
        await opened.record_changes([], [event], [NewDelivery("s", 0, object_key(event))])
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def start_lane(store: Store) -> AsyncIterator[Callable[[SubscriptionSpec], Any]]:
    """Start a lane on the store's queue (it reads the queued event from the store)."""
    client = WebhookClient()
    lanes: list[SubscriptionLane] = []

    async def start(spec: SubscriptionSpec) -> SubscriptionLane:
        lane = SubscriptionLane(spec, store, client, Acknowledgements())
        lanes.append(lane)
        await lane.start()
        return lane

    try:
        yield start
    finally:
        for lane in lanes:
            await lane.close()
        await client.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("sink", "words"),
    [
        # The transport refuses the header (it used to raise UnicodeEncodeError in the sender).
        ({"headers": {"X-Team": "caf\u20ac"}}, "the value of header 'X-Team' has"),
        # Signing raises ValueError before anything is sent: an exception in the sender itself.
        ({"signing_secret": "whsec_not base64!"}, "cannot send: ValueError: "),
    ],
)
async def test_a_spec_that_cannot_be_sent_ends_in_a_dead_letter(
    store: Store,
    recipient: WebhookRecipient,
    start_lane: Callable[[SubscriptionSpec], Any],
    sink: dict[str, Any],
    words: str,
) -> None:
    good = spec_for(recipient)
    lane: SubscriptionLane = await start_lane(stored_before_validation(good, **sink))

    await eventually(lambda: lane.status().dead == 1)
    status = lane.status()
    assert (status.backlog, status.retrying, status.in_flight) == (0, 0, 0)
    assert status.last_error is not None
    assert words in status.last_error
    assert "caf" not in status.last_error, "header values may be credentials"
    assert "not base64" not in status.last_error, "nor may the secret be shown"
    (dead,) = await store.dead_letters("s")
    assert dead.attempts == 2
    assert dead.last_error == status.last_error
    assert recipient.requests == []

    # Nothing is left in flight: with the spec fixed, the replayed event goes out.
    lane.update_spec(good)
    lane.replayed(await store.replay("s", None))
    await recipient.wait_for(lambda accepted: len(accepted) == 1)
    await eventually(lambda: lane.status().backlog == 0 and lane.status().dead == 0)
