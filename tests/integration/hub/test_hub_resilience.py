"""Failures stay where they happen: auth errors, dead clusters, throttling, CRDs, restarts."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from hub_helpers import FAST, Recorder, connect, eventually

from mic.events import Event, EventType
from mic.hub import ClusterState, Hub, UnknownClusterError
from mic.kube.direct import from_token
from mic.kube.fingerprint import content_hash
from mic.kube.informer import InformerOptions, InformerState, KnownObject
from mic.testing import KubeEmulator, TokenPolicy
from mic.testing.objects import configmap


async def test_forbidden_resource_shows_in_status_without_a_retry_storm(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    emulator = await kube_emulators(name="c1", tokens={"only-pods": TokenPolicy(resources={"pods"})})
    await hub.add_cluster("c1", connect(emulator, token="only-pods"))
    await record("configmaps")
    await record("pods")
    await eventually(lambda: any(r.state is InformerState.FORBIDDEN for r in hub.status("c1").resources))
    status = hub.status("c1")
    forbidden = next(r for r in status.resources if r.resource == "configmaps")
    assert forbidden.state is InformerState.FORBIDDEN
    assert forbidden.last_error is not None
    assert 'cannot list resource "configmaps"' in forbidden.last_error
    assert status.state is ClusterState.DEGRADED
    pods = next(r for r in status.resources if r.resource == "pods")
    await eventually(lambda: next(r for r in hub.status("c1").resources if r.resource == "pods").synced)
    assert pods.state is not InformerState.FORBIDDEN
    before = sum(1 for r in emulator.requests if r.status == 403)
    await asyncio.sleep(1.2)
    after = sum(1 for r in emulator.requests if r.status == 403)
    # auth_retry_interval is 0.5 s in these tests: a couple of retries, not a spin.
    assert after - before <= 4


async def test_bad_token_makes_the_cluster_unauthorized(hub: Hub, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="c1", tokens={"right": TokenPolicy.allow_all()})
    await hub.add_cluster("c1", connect(emulator, token="wrong"))
    await eventually(lambda: hub.status("c1").state is ClusterState.UNAUTHORIZED)
    assert hub.status("c1").last_error


async def test_an_unreachable_cluster_does_not_slow_the_others(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    blackhole = await kube_emulators(name="slow")
    blackhole.pause()  # accepts connections, never answers: the worst kind of dead
    alive = await kube_emulators(name="alive")
    await hub.add_cluster("dead", from_token(f"http://127.0.0.1:{dead_port}", token="x"))
    await hub.add_cluster("slow", connect(blackhole))
    await hub.add_cluster("alive", connect(alive))
    recorder = await record("configmaps")
    alive.create(configmap("hello"))
    await recorder.wait_for(lambda events: any(e.cluster == "alive" and e.name == "hello" for e in events))
    # The alive cluster delivered while the other two were still stuck connecting.
    await eventually(lambda: hub.status("dead").state is ClusterState.UNREACHABLE)
    assert hub.status("dead").last_error
    assert hub.status("slow").state is ClusterState.CONNECTING
    blackhole.resume()


async def test_clusters_can_be_added_and_removed_at_runtime(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    first = await kube_emulators(name="first")
    await hub.add_cluster("first", connect(first))
    recorder = await record("configmaps")
    first.create(configmap("a"))
    await recorder.wait_count(1)

    second = await kube_emulators(name="second")
    second.create(configmap("b"))
    await hub.add_cluster("second", connect(second))
    await recorder.wait_for(lambda events: any(e.cluster == "second" for e in events))
    assert hub.cluster_names() == ["first", "second"]

    await hub.remove_cluster("first")
    assert hub.cluster_names() == ["second"]
    await eventually(lambda: first.open_watches == 0)
    first.create(configmap("after-removal"))
    second.create(configmap("c"))
    await recorder.wait_for(lambda events: any(e.name == "c" for e in events))
    assert not any(e.name == "after-removal" for e in recorder.events)
    with pytest.raises(UnknownClusterError, match="first"):
        hub.status("first")


async def test_a_crd_created_after_start_becomes_watchable(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("widgets")
    await eventually(lambda: hub.status("c1").state is ClusterState.DEGRADED)
    assert "doesn't have a resource type 'widgets'" in hub.status("c1").unresolved[0]
    kube_emulator.register_crd("example.com", "v1", "Widget", "widgets", short_names=["wd"])
    kube_emulator.create(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"}}
    )
    await recorder.wait_count(1, timeout=10)
    event = recorder.events[0]
    assert (event.group, event.kind, event.name) == ("example.com", "Widget", "w1")
    info = await hub.resolve("c1", "wd")
    assert info.qualified_name == "widgets.example.com"


async def test_throttling_and_server_errors_are_retried(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    kube_emulator.create(configmap("a"))
    kube_emulator.fail_requests(429, count=1, retry_after=1, verbs=["list"])
    kube_emulator.fail_requests(503, count=2, verbs=["list"])
    await hub.add_cluster("c1", connect(kube_emulator))
    started = time.monotonic()
    recorder = await record("configmaps")
    await recorder.wait_count(1)
    assert time.monotonic() - started >= 1.0, "Retry-After must be honoured"
    assert kube_emulator.failed_requests == 3


async def test_tls_with_the_kubeconfig_ca(hub: Hub, kube_emulators: Any, record: Any) -> None:
    emulator = await kube_emulators(name="secure", tls=True, tokens={"t": TokenPolicy.allow_all()})
    emulator.create(configmap("over-tls"))
    await hub.add_cluster("secure", connect(emulator))
    recorder = await record("configmaps")
    await recorder.wait_count(1)
    assert recorder.events[0].name == "over-tls"


async def test_known_state_from_a_previous_run_reports_only_real_changes(kube_emulator: KubeEmulator) -> None:
    for name in ("same", "changed", "gone"):
        kube_emulator.create(configmap(name, v="1"))
    known: dict[str, KnownObject] = {}
    for obj in kube_emulator.objects("configmaps"):
        meta = obj["metadata"]
        known[meta["uid"]] = KnownObject(
            meta["namespace"], meta["name"], meta["resourceVersion"], content_hash(obj)
        )
    kube_emulator.patch("configmaps", "changed", {"data": {"v": "2"}})
    kube_emulator.delete("configmaps", "gone")
    kube_emulator.create(configmap("new"))

    async def load_known(cluster: str, key: Any) -> dict[str, KnownObject]:
        assert (cluster, key.resource, key.scope) == ("c1", "configmaps", "/configmaps|*|")
        return known

    async with Hub(informer_options=FAST, known_state=load_known) as hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        recorder = Recorder(await hub.events("configmaps"))
        await recorder.wait_count(3)
        await asyncio.sleep(0.2)
        got = sorted((e.type.value, e.name) for e in recorder.events)
        assert got == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "changed")]
        await recorder.close()


async def test_a_late_consumer_first_gets_the_current_objects(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    kube_emulator.create(configmap("a"))
    await hub.add_cluster("c1", connect(kube_emulator))
    early = await record("configmaps")
    await early.wait_count(1)
    late = await record("configmaps")
    await late.wait_count(1)
    assert [(e.type, e.name) for e in late.events] == [(EventType.ADDED, "a")]
    kube_emulator.create(configmap("b"))
    await late.wait_count(2)
    await early.wait_count(2)
    assert len(hub._cluster("c1").informers()) == 1


def _names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


async def test_a_consumer_joining_during_the_first_list_gets_every_object(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    """Pages are emitted as they arrive; one who joins after some of them takes the cache so far
    as its snapshot and the remaining pages as they come: nothing listed is missed."""
    for i in range(30):
        kube_emulator.create(configmap(f"cm-{i:02}"))
    kube_emulator.set_latency(0.05)  # pages of 3 (FAST): the list takes ~0.5 s
    await hub.add_cluster("c1", connect(kube_emulator))
    early = await record("configmaps")
    await early.wait_count(6)
    informer = hub._cluster("c1").informers()[0]
    assert informer.populated
    assert not informer.synced, "the list ended before the late consumer joined: slow it down"
    late = await record("configmaps")
    await late.wait_for(lambda events: len({e.name for e in events}) == 30)
    await early.wait_count(30)
    assert {e.type for e in late.events} == {EventType.ADDED}


async def replaced_while_watched(
    kube_emulators: Any, old_names: list[str], new_names: list[str], changes: int
) -> list[tuple[str, str]]:
    """Watch configmaps `old_names` in cluster c1; stop it; start another server at the same
    address holding `new_names` (other objects, another history); return (type, name) of the
    next `changes` events, which must come within 5 s (the stall check would take minutes)."""
    old = await kube_emulators(name="c1")
    for name in old_names:
        old.create(configmap(name))
    patient = InformerOptions(stall_timeout=120.0, initial_backoff=0.05, max_backoff=0.3)
    async with Hub(informer_options=patient) as hub:
        await hub.add_cluster("c1", connect(old))
        recorder = Recorder(await hub.events("configmaps"))
        await recorder.wait_count(len(old_names))
        await old.stop()
        await eventually(lambda: hub.status("c1").state is ClusterState.UNREACHABLE)
        new = await kube_emulators(name="c1", port=old.port)
        for name in new_names:
            new.create(configmap(name))
        await recorder.wait_count(len(old_names) + changes, timeout=5)
        await asyncio.sleep(0.2)  # anything beyond `changes` would have arrived by now
        await recorder.close()
    found = [(e.type.value, e.name) for e in recorder.events[len(old_names) :]]
    assert len(found) == changes, found
    return sorted(found)


async def test_a_server_back_with_another_history_is_listed_again_at_once(kube_emulators: Any) -> None:
    """An API server down and back with another history (etcd restored from a backup, a
    cluster rebuilt at the same address) may never reach the resourceVersion MIC resumes
    from: a resumed watch would show nothing. It answers "Too large resource version" to the
    list MIC makes before resuming, and MIC relists: exactly what differs is reported."""
    old_names = [f"old-{i}" for i in range(30)] + ["kept"]  # the old history runs well ahead
    changes = await replaced_while_watched(kube_emulators, old_names, ["kept", "fresh"], 33)
    assert changes == sorted(
        [("DELETED", f"old-{i}") for i in range(30)]
        + [("DELETED", "kept"), ("ADDED", "kept")]  # another object of the same name: another uid
        + [("ADDED", "fresh")]
    )


async def test_a_server_back_past_our_version_with_other_objects_is_listed_again(
    kube_emulators: Any,
) -> None:
    """Another cluster at the same address whose history already went past the version MIC
    resumes from: the watch would resume quietly on changes of another history. Its objects
    give it away (the same name, another uid), and MIC lists."""
    new_names = ["a-first"] + [f"c-new-{i}" for i in range(10)]  # its version goes past the old one
    changes = await replaced_while_watched(kube_emulators, ["a-first", "b-only-old"], new_names, 13)
    assert changes == sorted(
        [("DELETED", "a-first"), ("ADDED", "a-first"), ("DELETED", "b-only-old")]
        + [("ADDED", f"c-new-{i}") for i in range(10)]
    )
