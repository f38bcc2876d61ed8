"""Streams and handlers that select clusters by their labels (`cluster_selector`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hub_helpers import connect, eventually

from mic.events import Event, EventType
from mic.hub import Hub
from mic.hub.cluster import InformerKey
from mic.kube.selectors import InvalidSelectorError
from mic.testing import KubeEmulator
from mic.testing.objects import configmap


async def two_clusters(hub: Hub, kube_emulators: Any) -> tuple[KubeEmulator, KubeEmulator]:
    """ "prod" (env=prod) and "dev" (env=dev), each with a configmap named after it."""
    made = []
    for name in ("prod", "dev"):
        emulator: KubeEmulator = await kube_emulators(name=name)
        emulator.create(configmap(f"{name}-config"))
        await hub.add_cluster(name, connect(emulator), labels={"env": name})
        made.append(emulator)
    return made[0], made[1]


def seen(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.cluster, e.type.value, e.name) for e in events]


async def test_a_stream_gets_only_the_clusters_its_selector_matches(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    prod, dev = await two_clusters(hub, kube_emulators)
    everything = await record("configmaps")
    selected = await record("configmaps", cluster_selector="env in (prod,staging)")
    await everything.wait_count(2)
    prod.create(configmap("later"))
    dev.create(configmap("later"))
    await everything.wait_count(4)
    await selected.wait_count(2)
    assert seen(selected.events) == [("prod", "ADDED", "prod-config"), ("prod", "ADDED", "later")]
    assert hub.cluster_names(selector="env=prod") == ["prod"]


async def test_a_late_stream_with_a_cluster_selector_starts_from_the_matching_clusters_only(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    await two_clusters(hub, kube_emulators)
    await hub.watch("configmaps")
    assert await hub.wait_synced(timeout=5)
    same_spelling = await record("configmaps", cluster_selector="env=prod")  # replays the caches
    other_spelling = await record("cm", cluster_selector="env=prod")  # joins the running informers
    for recorder in (same_spelling, other_spelling):
        await recorder.wait_count(1)
    await asyncio.sleep(0.2)  # room for a wrong snapshot of "dev" to arrive
    for recorder in (same_spelling, other_spelling):
        assert seen(recorder.events) == [("prod", "ADDED", "prod-config")]


async def test_a_cluster_relabelled_in_sends_its_objects_and_one_relabelled_out_takes_them_back(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    prod, dev = await two_clusters(hub, kube_emulators)
    selected = await record("configmaps", cluster_selector="env=prod")
    await selected.wait_count(1)
    assert await hub.wait_synced(timeout=5)

    await hub.set_cluster_labels("dev", {"env": "prod"})
    await selected.wait_count(2)
    assert seen(selected.events)[1] == ("dev", "ADDED", "dev-config")
    dev.create(configmap("after-joining"))
    await selected.wait_for(lambda events: any(e.name == "after-joining" for e in events))

    await hub.set_cluster_labels("prod", {"env": "retired"})
    await selected.wait_for(lambda events: any(e.type is EventType.DELETED for e in events))
    prod.create(configmap("after-leaving"))
    dev.create(configmap("marker"))
    await selected.wait_for(lambda events: any(e.name == "marker" for e in events))
    assert seen(selected.events) == [
        ("prod", "ADDED", "prod-config"),
        ("dev", "ADDED", "dev-config"),
        ("dev", "ADDED", "after-joining"),
        ("prod", "DELETED", "prod-config"),
        ("dev", "ADDED", "marker"),
    ]


async def test_a_handler_with_a_cluster_selector_follows_relabelling(hub: Hub, kube_emulators: Any) -> None:
    handled: list[Event] = []

    @hub.on("configmaps", cluster_selector="env=prod")
    async def collect(event: Event) -> None:
        handled.append(event)

    _, dev = await two_clusters(hub, kube_emulators)
    await eventually(lambda: len(handled) == 1)
    await hub.set_cluster_labels("dev", {"env": "prod"})
    dev.create(configmap("from-dev"))
    await eventually(lambda: any(e.name == "from-dev" for e in handled))
    assert seen(handled) == [
        ("prod", "ADDED", "prod-config"),
        ("dev", "ADDED", "dev-config"),
        ("dev", "ADDED", "from-dev"),
    ]


async def test_a_batch_in_flight_during_a_relabel_comes_before_the_leave_or_not_at_all(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    # The informer has cached the batch and hands it out while a listener holds it; meanwhile
    # the cluster leaves the selector, and the DELETED snapshot (made from that cache) covers
    # the batch: delivered after it, the ADDED would bring back an object of a cluster that left.
    prod, _ = await two_clusters(hub, kube_emulators)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_new_objects(cluster: str, key: InformerKey, events: list[Event]) -> None:
        if any(e.name == "in-flight" for e in events):
            held.set()
            await release.wait()

    hub.add_listener(hold_new_objects)
    selected = await record("configmaps", cluster_selector="env=prod")
    await selected.wait_count(1)
    prod.create(configmap("in-flight"))
    await asyncio.wait_for(held.wait(), 5)
    await hub.set_cluster_labels("prod", {"env": "retired"})
    release.set()
    await selected.wait_for(lambda events: len(events) >= 3)
    await asyncio.sleep(0.2)  # room for the held batch to arrive, if it wrongly did
    assert sorted(seen(selected.events)[1:]) == [
        ("prod", "DELETED", "in-flight"),
        ("prod", "DELETED", "prod-config"),
    ]
    assert len(selected.events) == 3


async def test_a_bad_cluster_selector_is_refused_when_asked(hub: Hub) -> None:
    with pytest.raises(InvalidSelectorError):
        await hub.events("configmaps", cluster_selector="env in prod")
    with pytest.raises(InvalidSelectorError):
        hub.on("configmaps", cluster_selector="=prod")
    with pytest.raises(InvalidSelectorError):
        hub.cluster_names(selector="a b")
