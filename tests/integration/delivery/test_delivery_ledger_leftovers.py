"""A deleted subscription leaves its scope's ledger behind. An event stream that later starts
an informer over the same scope must still get every current object first: handed the
ledger, the informer reported only what changed since, and the stream missed the rest."""

from __future__ import annotations

import asyncio
from typing import Any

from delivery_helpers import Pipeline, Recipient, eventually

from mic.testing.objects import configmap


async def test_a_stream_over_a_scope_with_leftover_ledger_gets_every_object(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    for name in ("a", "b", "c"):
        kube_emulator.create(configmap(name, v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("s1", recipient)
    await recipient.wait_events(lambda events: len(events) == 3)
    await eventually(lambda: pipeline.engine.status("s1").backlog == 0)
    await pipeline.store.delete_subscription("s1")
    await pipeline.engine.remove("s1")
    await eventually(lambda: kube_emulator.open_watches == 0)  # its informer stopped
    kube_emulator.patch("configmaps", "b", {"data": {"v": "1"}})

    async with await pipeline.hub.events("configmaps") as stream:
        seen: dict[str, str] = {}
        async with asyncio.timeout(10):
            while len(seen) < 3:
                batch = await stream.next_batch()
                assert batch is not None
                seen.update((event.name, event.type.value) for event in batch)
    assert seen == {"a": "ADDED", "b": "ADDED", "c": "ADDED"}
