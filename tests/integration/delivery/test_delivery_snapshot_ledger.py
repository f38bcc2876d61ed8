"""A subscription's snapshot and the ledger of an informer that is already running.

The snapshot aligns an informer's ledger with its cache only where batches went unrouted
(nobody subscribed): aligning one that other subscriptions are routed from would record a
change the informer has cached but not yet routed, and a crash would then lose it for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.testing.objects import configmap


async def test_a_new_subscription_does_not_move_the_ledger_past_a_batch_waiting_to_be_routed(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("x", v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("s1", recipient)
    await recipient.wait_events(lambda events: len(events) == 1)
    engine = pipeline.engine
    await eventually(lambda: engine.status("s1").backlog == 0)
    watch = engine._subscriptions["s1"].watches[0]
    informer = pipeline.hub.informer("c1", watch)
    assert informer is not None

    # The informer caches the change, then waits for the route lock with its batch...
    await engine._route_lock.acquire()
    changed = kube_emulator.patch("configmaps", "x", {"data": {"v": "1"}})["metadata"]["resourceVersion"]
    cached = lambda: (informer.cache.get("default", "x") or {})["metadata"]["resourceVersion"]  # noqa: E731
    await eventually(lambda: cached() == changed)
    # ... and a new subscription's snapshot gets the lock first (a fresh lock stands in for
    # winning the race; the batch stays blocked on the one held above, as if MIC were killed).
    engine._route_lock = asyncio.Lock()
    other = await Recipient().start()
    try:
        await pipeline.subscribe("s2", other)
        await pipeline.restart()
        await recipient.wait_events(lambda events: ("modified", "default/x", changed) in summary(events))
    finally:
        await other.stop()


async def test_the_ledger_of_an_informer_nobody_subscribed_to_is_aligned_by_the_first_snapshot(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("x", v="0"))
    await pipeline.add_cluster(kube_emulator)
    # Watched for a cache query only: its batches are not routed, nothing reaches the ledger.
    await pipeline.hub.watch("configmaps")
    assert await pipeline.hub.wait_synced(timeout=10)
    kube_emulator.patch("configmaps", "x", {"data": {"v": "1"}})
    kube_emulator.create(configmap("y", v="0"))
    await eventually(lambda: len(pipeline.hub.list("c1", "configmaps")) == 2)

    await pipeline.subscribe("s1", recipient)
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("s1").backlog == 0)
    await pipeline.restart()
    assert await pipeline.hub.wait_synced(timeout=10)
    kube_emulator.patch("configmaps", "y", {"data": {"v": "2"}})  # a marker after the restart's list
    await recipient.wait_events(lambda events: len(events) == 3)
    # The restart's list found the ledger equal to the cluster: nothing spurious before the marker.
    assert [(kind, subject) for kind, subject, _ in summary(recipient.events())] == [
        ("added", "default/x"),
        ("added", "default/y"),
        ("modified", "default/y"),
    ]
