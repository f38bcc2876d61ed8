"""A cluster's life inside the hub when watches and removals race informer start-up."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from hub_helpers import FAST, connect, eventually

from mic.events import Event
from mic.hub import ClusterState, Hub
from mic.hub.cluster import InformerKey
from mic.kube.informer import InformerState, KnownObject
from mic.kube.kubeconfig import load_kubeconfig
from mic.testing import KubeEmulator, TokenPolicy
from mic.testing.objects import configmap

pytestmark = pytest.mark.integration


class SlowKnownState:
    """A known-state loader (the delivery ledger) that answers only when released."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, cluster: str, key: InformerKey) -> dict[str, KnownObject] | None:
        self.called.set()
        await self.release.wait()
        return None


async def test_a_watch_released_while_its_informer_starts_leaves_no_informer(
    kube_emulator: KubeEmulator,
) -> None:
    loader = SlowKnownState()
    batches: list[tuple[str, list[Event]]] = []

    async def listener(cluster: str, key: InformerKey, events: list[Event]) -> None:
        batches.append((cluster, events))

    async with Hub(informer_options=FAST, known_state=loader) as hub:
        hub.add_listener(listener)
        await hub.add_cluster("c1", connect(kube_emulator))
        spec = await hub.watch("configmaps")
        await asyncio.wait_for(loader.called.wait(), 5)  # discovery resolved it, state loading
        await hub.unwatch(spec)
        loader.release.set()
        await asyncio.sleep(0.3)
        assert hub._cluster("c1").informers() == []
        assert kube_emulator.open_watches == 0
        kube_emulator.create(configmap("late", "default"))
        await asyncio.sleep(0.3)
        assert batches == []


async def test_a_cluster_removed_while_a_watch_starts_its_informer_stops_everything(
    kube_emulator: KubeEmulator,
) -> None:
    loader = SlowKnownState()
    async with Hub(informer_options=FAST, known_state=loader) as hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        assert await hub.wait_synced(timeout=5)  # discovered, nothing watched yet
        watching = asyncio.create_task(hub.watch("configmaps"))
        await asyncio.wait_for(loader.called.wait(), 5)
        await hub.remove_cluster("c1")
        loader.release.set()
        await asyncio.wait_for(watching, 5)
        await asyncio.sleep(0.3)
        assert kube_emulator.open_watches == 0
        leftovers = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("informer c1/")]
        assert leftovers == []


@pytest.mark.parametrize(
    "other", [{"resource": "cm"}, {"resource": "configmap"}, {"resource": "configmaps", "clusters": ["c1"]}]
)
async def test_a_stream_joining_a_running_informer_under_another_spec_gets_the_current_objects(
    hub: Hub, kube_emulator: KubeEmulator, other: dict[str, Any]
) -> None:
    kube_emulator.create(configmap("a", "default"))
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch("configmaps")
    assert await hub.wait_synced(timeout=5)
    async with await hub.events(**other) as stream:
        async with asyncio.timeout(5):
            first = await stream.next_batch()
    assert first is not None
    assert [(e.type.value, e.key) for e in first] == [("ADDED", "default/a")]


async def test_a_deleted_crd_served_again_in_another_version_is_watched_again(
    hub: Hub, kube_emulator: KubeEmulator
) -> None:
    kube_emulator.register_crd("example.com", "v1", "Widget", "widgets")
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch("widgets")
    await eventually(lambda: [r.state for r in hub.status("c1").resources] == [InformerState.WATCHING])
    kube_emulator.delete("customresourcedefinitions", "widgets.example.com")
    # gone: shown as such, not a 404 retried forever against a resource that no longer exists
    await eventually(lambda: hub.status("c1").resources == ())
    status = hub.status("c1")
    assert status.state is ClusterState.DEGRADED
    assert any("widgets" in why for why in status.unresolved)
    kube_emulator.register_crd("example.com", "v2", "Widget", "widgets")
    kube_emulator.create(
        {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}
    )
    await eventually(lambda: [r.resource for r in hub.status("c1").resources] == ["widgets.example.com"])
    await eventually(lambda: hub.status("c1").state is ClusterState.READY)
    assert [o["metadata"]["name"] for o in hub.list("c1", "widgets")] == ["w"]
    assert hub._cluster("c1").informers()[0].resource.version == "v2"


async def test_an_unavailable_api_group_is_named_in_the_status_and_spares_the_others(
    hub: Hub, kube_emulator: KubeEmulator
) -> None:
    kube_emulator.fail_requests(503, count=10_000, path_contains="/apis/networking.k8s.io/v1")
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch("configmaps")
    await hub.watch("ingresses")
    await eventually(lambda: any(r.synced for r in hub.status("c1").resources))
    status = hub.status("c1")
    assert status.state is ClusterState.DEGRADED
    assert status.last_error is not None
    assert "networking.k8s.io/v1: 503" in status.last_error
    kube_emulator.clear_faults()
    await eventually(lambda: hub.status("c1").state is ClusterState.READY)
    assert {r.resource for r in hub.status("c1").resources} == {"configmaps", "ingresses.networking.k8s.io"}


async def test_fifty_add_remove_cycles_leave_no_task_socket_or_watch(kube_emulator: KubeEmulator) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async with Hub(informer_options=FAST) as hub:
        await hub.watch("configmaps")
        await hub.watch("services")
        tasks_before, fds_before = len(asyncio.all_tasks()), open_fds()
        for _ in range(50):
            await hub.add_cluster("c1", connect(kube_emulator))
            assert await hub.wait_synced(timeout=5)
            await hub.remove_cluster("c1")
        await asyncio.sleep(0.2)
        assert len(asyncio.all_tasks()) == tasks_before
        assert open_fds() <= fds_before + 2
        assert kube_emulator.open_watches == 0


async def test_an_informer_whose_known_state_fails_to_load_is_started_on_a_later_pass(
    kube_emulator: KubeEmulator,
) -> None:
    kube_emulator.create(configmap("a", "default"))
    failures = ["configmaps", "services"]

    async def flaky(cluster: str, key: InformerKey) -> dict[str, KnownObject] | None:
        if key.resource in failures:
            failures.remove(key.resource)
            raise RuntimeError("store unavailable: database is locked")
        return None

    async with Hub(informer_options=FAST, known_state=flaky, discovery_refresh_interval=0.2) as hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        await hub.watch("configmaps")  # started by the first discovery pass
        await eventually(lambda: "configmaps" not in failures)
        await eventually(lambda: hub.status("c1").state is ClusterState.READY)
        assert [o["metadata"]["name"] for o in hub.list("c1", "configmaps")] == ["a"]
        await hub.watch("services")  # started by `watch` itself, on a discovered cluster
        await eventually(lambda: "services" not in failures)
        await eventually(
            lambda: {r.resource for r in hub.status("c1").resources} == {"configmaps", "services"}
        )
        await eventually(lambda: hub.status("c1").state is ClusterState.READY)


async def test_a_cluster_nothing_is_watched_in_still_shows_when_it_goes_away(
    kube_emulators: Any,
) -> None:
    emulator = await kube_emulators(name="c1", tokens={"good": TokenPolicy()})
    async with Hub(informer_options=FAST, discovery_refresh_interval=0.2) as hub:
        await hub.add_cluster("c1", connect(emulator, token="good"))
        await eventually(lambda: hub.status("c1").state is ClusterState.READY)
        await emulator.stop()
        await eventually(lambda: hub.status("c1").state is ClusterState.UNREACHABLE)
        await emulator.start()
        await eventually(lambda: hub.status("c1").state is ClusterState.READY)
        emulator.server.tokens.clear()  # MIC's credential revoked
        emulator.server.tokens["other"] = TokenPolicy()
        await eventually(lambda: hub.status("c1").state is ClusterState.UNAUTHORIZED)


async def test_a_failing_credential_plugin_makes_the_cluster_unauthorized_not_unreachable(
    kube_emulator: KubeEmulator, tmp_path: Any
) -> None:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\necho 'error: your login session expired' >&2\nexit 1\n")
    plugin.chmod(0o700)
    config = kube_emulator.kubeconfig()
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    async with Hub(informer_options=FAST) as hub:
        await hub.add_cluster("c1", load_kubeconfig(config))
        await eventually(lambda: hub.status("c1").state is not ClusterState.CONNECTING)
        status = hub.status("c1")
        assert status.state is ClusterState.UNAUTHORIZED
        assert status.last_error is not None
        assert "login session expired" in status.last_error
