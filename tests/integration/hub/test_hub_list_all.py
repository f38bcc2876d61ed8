"""`Hub.list_all` answers from the clusters that can, and names the others with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from hub_helpers import connect, eventually

from mic.hub import (
    ClusterObjects,
    ClusterState,
    Hub,
    NotDiscoveredError,
    NotSyncedError,
    NotWatchedError,
    UnknownClusterError,
)
from mic.kube.errors import UnknownResourceError
from mic.testing import KubeEmulator
from mic.testing.objects import configmap


def names(found: ClusterObjects) -> list[tuple[str, str]]:
    return [(cluster, obj["metadata"]["name"]) for cluster, obj in found]


async def test_a_cluster_not_discovered_yet_is_skipped_not_fatal(hub: Hub, kube_emulators: Any) -> None:
    alive = await kube_emulators(name="alive")
    silent = await kube_emulators(name="silent")
    silent.pause()  # accepts connections, never answers: discovery cannot complete
    alive.create(configmap("web"))
    await hub.add_cluster("alive", connect(alive))
    await hub.add_cluster("silent", connect(silent))
    await hub.watch("configmaps")
    assert await hub.wait_synced(clusters=["alive"], timeout=5)

    found = hub.list_all("configmaps")

    assert names(found) == [("alive", "web")]
    assert found.answered == ["alive"]
    assert list(found.skipped) == ["silent"]
    assert isinstance(found.skipped["silent"], NotDiscoveredError)
    assert not found.complete
    with pytest.raises(NotDiscoveredError):
        hub.list_all("configmaps", strict=True)  # the behaviour of older versions, on request
    silent.resume()


async def test_a_cluster_without_the_resource_is_skipped(hub: Hub, kube_emulators: Any) -> None:
    with_crd: KubeEmulator = await kube_emulators(name="with-crd")
    without_crd: KubeEmulator = await kube_emulators(name="without-crd")
    with_crd.register_crd("example.com", "v1", "Widget", "widgets")
    with_crd.create({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}})
    await hub.add_cluster("with-crd", connect(with_crd))
    await hub.add_cluster("without-crd", connect(without_crd))
    await hub.watch("widgets")
    assert await hub.wait_synced(timeout=5)

    found = hub.list_all("widgets")

    assert names(found) == [("with-crd", "w1")]
    assert found.answered == ["with-crd"]
    assert isinstance(found.skipped["without-crd"], UnknownResourceError)
    with pytest.raises(UnknownResourceError):
        hub.list_all("widgets", strict=True)


async def test_a_cache_still_in_its_first_list_is_skipped(hub: Hub, kube_emulators: Any) -> None:
    # A partial cache taken for the whole would make a reconciler drop what it has not seen yet.
    ready = await kube_emulators(name="ready")
    listing = await kube_emulators(name="listing")
    ready.create(configmap("a"))
    listing.create(configmap("b"))
    await hub.add_cluster("ready", connect(ready))
    await hub.add_cluster("listing", connect(listing))
    await eventually(lambda: hub.status("listing").state is ClusterState.READY)  # discovered
    listing.pause()  # its first list will hang
    await hub.watch("configmaps")
    assert await hub.wait_synced(clusters=["ready"], timeout=5)

    found = hub.list_all("configmaps")

    assert names(found) == [("ready", "a")]
    assert isinstance(found.skipped["listing"], NotSyncedError)
    assert names(hub.list_all("configmaps", strict=True)) == [("ready", "a")]  # as before: no raise
    listing.resume()
    assert await hub.wait_synced(timeout=5)
    found = hub.list_all("configmaps")
    assert names(found) == [("listing", "b"), ("ready", "a")]
    assert found.answered == ["listing", "ready"]
    assert found.complete


async def test_a_resource_nobody_watches_still_raises(hub: Hub, kube_emulators: Any) -> None:
    # Not a cluster that cannot answer yet: a missing hub.watch(), which no wait would fix.
    for name in ("c1", "c2"):
        emulator = await kube_emulators(name=name)
        await hub.add_cluster(name, connect(emulator))
        await eventually(lambda name=name: hub.status(name).state is ClusterState.READY)
    with pytest.raises(NotWatchedError, match=r"call Hub\.watch"):
        hub.list_all("configmaps")
    await hub.watch("configmaps", clusters=["c1"])
    assert await hub.wait_synced(timeout=5)
    assert hub.list_all("configmaps").skipped.keys() == {"c2"}  # c1 answers for the two
    with pytest.raises(NotWatchedError):
        hub.list_all("configmaps", clusters=["c2"])
    with pytest.raises(UnknownClusterError):
        hub.list_all("configmaps", clusters=["c1", "nowhere"])


async def test_a_cluster_selector_chooses_the_clusters_asked(hub: Hub, kube_emulators: Any) -> None:
    for name, env in (("eu-1", "prod"), ("us-1", "prod"), ("dev-1", "dev")):
        emulator = await kube_emulators(name=name)
        emulator.create(configmap(f"from-{name}"))
        await hub.add_cluster(name, connect(emulator), labels={"env": env})
    await hub.watch("configmaps")
    assert await hub.wait_synced(timeout=5)

    found = hub.list_all("configmaps", cluster_selector="env=prod")

    assert names(found) == [("eu-1", "from-eu-1"), ("us-1", "from-us-1")]
    assert found.answered == ["eu-1", "us-1"]
    assert hub.cluster_names(selector="env=prod") == ["eu-1", "us-1"]
    assert hub.cluster_names(selector="env!=prod") == ["dev-1"]
    assert hub.cluster_names() == ["dev-1", "eu-1", "us-1"]
    await hub.set_cluster_labels("dev-1", {"env": "prod"})
    assert [cluster for cluster, _ in hub.list_all("configmaps", cluster_selector="env=prod")] == [
        "dev-1",
        "eu-1",
        "us-1",
    ]
