"""A cluster relabelled into a subscription's cluster selector brings its objects (ADDED);
relabelled out, it takes them away (DELETED). Before, the recipient heard only later changes
of a cluster that joined, and kept every object of one that left."""

from __future__ import annotations

from typing import Any

from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.testing.objects import configmap


def kinds(recipient: Recipient, start: int = 0) -> list[tuple[str, str]]:
    return sorted((kind, subject) for kind, subject, _ in summary(recipient.events()[start:]))


async def test_relabelling_a_cluster_in_and_out_of_a_cluster_selector(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    other = await Recipient().start()
    try:
        await relabel(pipeline, recipient, other, kube_emulator)
    finally:
        await other.stop()


async def relabel(pipeline: Pipeline, recipient: Recipient, other: Recipient, kube_emulator: Any) -> None:
    kube_emulator.create(configmap("web", lb="mic"))
    kube_emulator.create(configmap("api", lb="nginx"))
    await pipeline.add_cluster(kube_emulator, labels={"env": "staging"})
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await pipeline.subscribe(
        "prod-mic", recipient, filter={"clusterSelector": "env=prod", "cel": 'object.data["lb"] == "mic"'}
    )
    await pipeline.subscribe("staging", other, filter={"clusterSelector": "env=staging"})
    assert await pipeline.hub.wait_synced(timeout=5)
    kube_emulator.patch("configmaps", "web", {"data": {"v": "1"}})
    await other.wait_events(lambda events: len(events) == 3)  # routed: 2 ADDED, 1 MODIFIED
    assert recipient.events() == []

    await pipeline.hub.set_cluster_labels(kube_emulator.name, {"env": "prod"})
    await recipient.wait_events(lambda events: len(events) == 3)
    assert kinds(recipient) == [("added", "default/api"), ("added", "default/web"), ("added", "default/web")]

    kube_emulator.patch("configmaps", "api", {"data": {"v": "2"}})
    await recipient.wait_events(lambda events: len(events) == 4)

    await pipeline.hub.set_cluster_labels(kube_emulator.name, {"env": "staging"})
    await recipient.wait_events(lambda events: len(events) == 7)
    assert kinds(recipient, 4) == [
        ("deleted", "default/api"),
        ("deleted", "default/web"),
        ("deleted", "default/web"),
    ]
    kube_emulator.patch("configmaps", "web", {"data": {"v": "3"}})
    # the staging subscription saw the cluster leave and come back, then the change
    await other.wait_events(lambda events: len(events) == 8)
    assert kinds(other, 3) == [
        ("added", "default/api"),
        ("added", "default/web"),
        ("deleted", "default/api"),
        ("deleted", "default/web"),
        ("modified", "default/web"),
    ]
    await eventually(lambda: pipeline.engine.status("prod").backlog == 0)
    assert len(recipient.events()) == 7
