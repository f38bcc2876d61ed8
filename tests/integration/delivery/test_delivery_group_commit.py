"""Routed batches wait in the outbox writer's queue while informers go on; what a stop leaves
unwritten there is not lost: its ledger changes were not written either, so the next start
reports those changes again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from delivery_helpers import Pipeline, eventually, summary

import mic.delivery.engine
from mic.testing.objects import configmap
from mic.testing.recipient import WebhookRecipient as Recipient


async def test_changes_routed_but_unwritten_at_a_stop_are_reported_after_the_restart(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("kept", "changed", "gone"):
        kube_emulator.create(configmap(name, v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await recipient.wait_events(lambda events: len(events) == 3)
    await eventually(lambda: pipeline.engine.status("hooks").backlog == 0)

    # The store stops committing (as a disk that hangs would): routed batches queue up.
    gate = asyncio.Event()
    record_changes = pipeline.store.record_changes

    async def hanging(*args: Sequence[Any], **kwargs: Any) -> list[int]:
        await gate.wait()
        return await record_changes(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline.store, "record_changes", hanging)
    kube_emulator.patch("configmaps", "changed", {"data": {"v": "1"}})
    kube_emulator.delete("configmaps", "gone")
    kube_emulator.create(configmap("new"))
    await eventually(lambda: pipeline.engine._writer.queued >= 3)
    assert len(recipient.events()) == 3  # nothing of it was written, so nothing was sent

    # Stop without waiting for the writer: what it holds is dropped, as a crash drops it.
    monkeypatch.setattr(mic.delivery.engine, "CLOSE_FLUSH_TIMEOUT", 0.1)
    await pipeline.stop()
    await pipeline.start()
    await recipient.wait_events(lambda events: len(events) >= 6)
    await asyncio.sleep(0.3)
    after = [(t, s) for t, s, _ in summary(recipient.events()[3:])]
    assert sorted(after) == [
        ("added", "default/new"),
        ("deleted", "default/gone"),
        ("modified", "default/changed"),
    ]


async def test_acknowledgements_ride_with_the_writers_commits_while_it_is_busy(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No commit of their own (an fsync, and the store lock the writer waits for) while routed
    batches are queued: the writer's next commit removes the delivered rows."""
    kube_emulator.create(configmap("first", v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await recipient.wait_events(lambda events: len(events) == 1)

    gate = asyncio.Event()
    record_changes = pipeline.store.record_changes
    delivered_many = pipeline.store.delivered_many
    written_alone: list[dict[str, Sequence[int]]] = []
    taken_along: list[dict[str, Sequence[int]]] = []

    begun: list[int] = []

    async def hanging(*args: Any, **kwargs: Any) -> list[int]:
        begun.append(1)
        await gate.wait()
        taken_along.append(dict(kwargs.get("acknowledged") or {}))
        return await record_changes(*args, **kwargs)

    async def counting(acknowledged: dict[str, Sequence[int]], **kwargs: Any) -> None:
        written_alone.append(dict(acknowledged))
        await delivered_many(acknowledged, **kwargs)

    monkeypatch.setattr(pipeline.store, "delivered_many", counting)
    monkeypatch.setattr(pipeline.store, "record_changes", hanging)
    kube_emulator.patch("configmaps", "first", {"data": {"v": "1"}})
    await eventually(lambda: len(begun) == 1)  # its commit has begun, and hangs
    pipeline.engine._acknowledgements.add("hooks", [10**9])  # as a lane does after a delivery
    kube_emulator.create(configmap("second"))
    await eventually(lambda: pipeline.engine._writer.queued == 2)  # queued behind it
    await asyncio.sleep(0.1)  # many ACK_PAUSEs: the loop must keep leaving it to the writer
    assert written_alone == []

    gate.set()
    await eventually(lambda: len(taken_along) >= 2)  # a third may follow before we look
    assert 10**9 not in taken_along[0].get("hooks", [])  # that commit had begun before it came
    assert 10**9 in taken_along[1]["hooks"]  # the next one took it along
    await recipient.wait_events(lambda events: len(events) == 3)
    assert all(10**9 not in acked.get("hooks", []) for acked in written_alone)
