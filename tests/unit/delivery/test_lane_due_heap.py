"""A coalescing lane whose recipient is down keeps its schedule of due heads bounded.

Each event that coalescing makes an object's new head adds an entry to the lane's heap of due
heads; the replaced head's entry stayed until its time came, which backoff puts minutes away
while the recipient is down: a 120 s outage left 35,000 entries for 200 objects. The lane runs
for real here, on SQLite and against a real HTTP recipient answering 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mic.delivery import lane as lane_module
from mic.delivery.acks import Acknowledgements
from mic.delivery.lane import Pending, SubscriptionLane, object_key
from mic.delivery.sink import WebhookClient
from mic.events import Event, EventType
from mic.routing.spec import SubscriptionSpec
from mic.store import NewDelivery, Store, SubscriptionRecord
from mic.testing.recipient import WebhookRecipient

OBJECTS = 5


def configmap_event(name: str, rv: int) -> Event:
    obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": str(rv)}}
    return Event(
        EventType.MODIFIED, "c1", "", "v1", "ConfigMap", "configmaps", "ns", name, f"u-{name}", str(rv), obj
    )


@pytest.fixture
async def recipient() -> AsyncIterator[WebhookRecipient]:
    async with WebhookRecipient(status=503) as running:
        yield running


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/mic.db")
    try:
        yield opened
    finally:
        await opened.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _changes(store: Store, lane: SubscriptionLane, rv: int) -> None:
    """One change of each object, committed and handed to the lane as the engine does."""
    events = [configmap_event(f"o{i}", rv) for i in range(OBJECTS)]
    keys = [object_key(event) for event in events]
    ids = await store.record_changes([], events, [NewDelivery("s", i, key) for i, key in enumerate(keys)])
    now = time.time()
    lane.enqueue(
        [
            Pending(id=id_, object_key=key, event=event, created_at=now, seq=seq)
            for id_, seq, key, event in zip(ids, ids.event_seqs, keys, events, strict=True)
        ]
    )


async def test_coalesced_heads_leave_no_pile_of_stale_schedule_entries(
    store: Store, recipient: WebhookRecipient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lane_module, "DUE_SLACK", 4)
    spec = SubscriptionSpec.from_json(
        {
            "name": "s",
            "filter": {"resources": ["configmaps"]},
            "sink": {"url": recipient.url},
            "delivery": {"coalesce": True, "initialBackoffSeconds": 60, "maxBackoffSeconds": 60},
        }
    )
    await store.create_subscription(SubscriptionRecord(name="s", spec=spec.to_json()))
    client = WebhookClient()
    lane = SubscriptionLane(spec, store, client, Acknowledgements())
    await lane.start()
    try:
        await _changes(store, lane, 1)
        # Every object failed once: its head waits out a 60 s backoff.
        await eventually(lambda: lane.status().retrying == OBJECTS and lane.status().in_flight == 0)
        for rv in range(2, 40):
            await _changes(store, lane, rv)
            assert len(lane._due) <= 2 * OBJECTS + 4
        await eventually(lambda: lane.status().backlog == OBJECTS)  # coalesced to one per object
        live = [entry for entry in lane._due if lane._objects[entry[2]].items[0].id == entry[1]]
        assert sorted(entry[2] for entry in live) == sorted(
            object_key(configmap_event(f"o{i}", 0)) for i in range(OBJECTS)
        )
        assert all(entry[0] > time.time() + 30 for entry in live)  # still waiting, not sent
    finally:
        await lane.close()
        await client.close()
