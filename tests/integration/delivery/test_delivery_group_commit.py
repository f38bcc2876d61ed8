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
