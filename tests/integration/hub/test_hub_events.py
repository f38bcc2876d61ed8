"""Events from several emulated clusters over real HTTP arrive complete, once, in order."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
import pytest
from hub_helpers import FAST, connect, eventually

from mic.events import Event, EventType
from mic.hub import ClusterState, Hub, NotWatchedError, StreamOverflowError
from mic.kube.informer import InformerState
from mic.routing.changes import is_noop, json_is_noop
from mic.testing import KubeEmulator
from mic.testing.objects import configmap


async def test_changes_in_three_clusters_arrive_with_their_cluster_names(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    emulators: list[KubeEmulator] = [await kube_emulators(name=f"c{i}") for i in range(3)]
    for emulator in emulators:
        emulator.create(configmap("before", owner=emulator.name))
        await hub.add_cluster(emulator.name, connect(emulator), labels={"env": "test"})
    recorder = await record("configmaps")
    await recorder.wait_count(3)
    assert sorted(recorder.summary()) == sorted(
        (e.name, "ADDED", "default/before", e.get("configmaps", "before")["metadata"]["resourceVersion"])
        for e in emulators
    )
    for emulator in emulators:
        emulator.create(configmap("web", owner=emulator.name))
        emulator.patch("configmaps", "web", {"data": {"owner": "changed"}})
        emulator.delete("configmaps", "web")
    await recorder.wait_count(12)
    for emulator in emulators:
        mine = [(e.type, e.key) for e in recorder.events if e.cluster == emulator.name and e.name == "web"]
        assert mine == [
            (EventType.ADDED, "default/web"),
            (EventType.MODIFIED, "default/web"),
            (EventType.DELETED, "default/web"),
        ]
    modified = next(e for e in recorder.events if e.type is EventType.MODIFIED)
    assert modified.old_object is not None
    assert modified.old_object["data"] == {"owner": modified.cluster}
    assert modified.object["data"] == {"owner": "changed"}
    # A compact cache hands the encoding it made over with the event; a dict cache has none.
    compact = hub._informer_options.compact_cache
    for event in recorder.events:
        if event.type is not EventType.DELETED:
            assert (event.object_json is not None) is compact
        if event.object_json is not None:
            assert orjson.loads(event.object_json) == event.object
        if event.old_json is not None:
            assert orjson.loads(event.old_json) == event.old_object
    assert (modified.group, modified.version, modified.kind, modified.resource) == (
        "",
        "v1",
        "ConfigMap",
        "configmaps",
    )
    assert await hub.wait_synced(timeout=5)
    for status in hub.statuses():
        assert status.state is ClusterState.READY, status
        assert status.server_version
        assert status.labels == {"env": "test"}


async def test_a_dropped_watch_resumes_without_loss_or_duplicates(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("configmaps")
    await hub.wait_synced(timeout=5)
    await kube_emulator.wait_for_watches(1, "configmaps")
    informer = hub._cluster("c1").informers()[0]
    expected: list[tuple[str, str, str]] = []
    for round_ in range(5):
        for i in range(4):
            made = kube_emulator.create(configmap(f"cm-{round_}-{i}"))
            expected.append(("ADDED", made["metadata"]["name"], made["metadata"]["resourceVersion"]))
        kube_emulator.drop_watches()
        for i in range(4):
            changed = kube_emulator.patch("configmaps", f"cm-{round_}-{i}", {"data": {"round": str(round_)}})
            expected.append(("MODIFIED", changed["metadata"]["name"], changed["metadata"]["resourceVersion"]))
        await eventually(
            lambda n=round_: informer.status.watch_restarts > n and kube_emulator.open_watches == 1
        )
    await recorder.wait_count(len(expected))
    await asyncio.sleep(0.3)  # anything extra (a duplicate) would have arrived by now
    got = [(e.type.value, e.name, e.resource_version) for e in recorder.events]
    assert got == expected
    assert informer.status.watch_restarts == 5
    assert informer.status.relists == 0, "a dropped connection must resume, not relist"


async def test_forced_410_relists_and_reports_exactly_what_changed_in_the_gap(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    for i in range(6):
        kube_emulator.create(configmap(f"cm-{i}", v="0"))
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("configmaps")
    await recorder.wait_count(6)
    await kube_emulator.wait_for_watches(1, "configmaps")

    kube_emulator.pause()  # hold the informer's reconnect until the gap is complete
    kube_emulator.drop_watches()
    kube_emulator.patch("configmaps", "cm-0", {"data": {"v": "1"}})
    kube_emulator.delete("configmaps", "cm-1")
    kube_emulator.delete("configmaps", "cm-2")
    kube_emulator.create(configmap("cm-2", v="recreated"))
    kube_emulator.create(configmap("cm-new"))
    kube_emulator.compact()
    kube_emulator.resume()

    await recorder.wait_count(6 + 5)
    await asyncio.sleep(0.3)
    gap = [(e.type.value, e.name) for e in recorder.events[6:]]
    assert sorted(gap) == sorted(
        [
            ("MODIFIED", "cm-0"),
            ("DELETED", "cm-1"),
            ("DELETED", "cm-2"),
            ("ADDED", "cm-2"),
            ("ADDED", "cm-new"),
        ]
    )
    assert gap.index(("DELETED", "cm-2")) < gap.index(("ADDED", "cm-2"))
    assert len(recorder.events) == 11, "unchanged objects must not be re-sent"
    informer = hub._cluster("c1").informers()[0]
    assert informer.status.relists >= 1
    server_state = {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in kube_emulator.objects("configmaps")
    }
    cached = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in hub.list("c1", "configmaps")}
    assert cached == server_state


async def test_410_error_event_during_watch_relists(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    kube_emulator.create(configmap("a"))
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("configmaps")
    await recorder.wait_count(1)
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.pause()
    kube_emulator.end_watches()
    kube_emulator.delete("configmaps", "a")
    kube_emulator.create(configmap("b"))
    kube_emulator.compact()
    kube_emulator.resume()
    await recorder.wait_for(
        lambda events: {(e.type.value, e.name) for e in events} >= {("DELETED", "a"), ("ADDED", "b")}
    )
    assert hub._cluster("c1").informers()[0].status.relists >= 1


async def test_a_stalled_watch_is_detected_and_restarted(hub: Hub, kube_emulators: Any, record: Any) -> None:
    emulator = await kube_emulators(name="c1", bookmark_interval=0.2)
    await hub.add_cluster("c1", connect(emulator))
    recorder = await record("configmaps")
    await hub.wait_synced(timeout=5)
    await emulator.wait_for_watches(1, "configmaps")
    assert emulator.stall_watches() == 1
    made = emulator.create(configmap("after-stall"))
    await recorder.wait_for(lambda events: any(e.name == "after-stall" for e in events), timeout=8)
    informer = hub._cluster("c1").informers()[0]
    assert informer.status.stalls == 1
    assert recorder.events[-1].resource_version == made["metadata"]["resourceVersion"]


async def test_namespace_and_label_selector_filtering(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    for namespace in ("team-a", "team-b", "team-c"):
        kube_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kube_emulator.create(configmap("web", namespace, labels={"app": "web"}))
        kube_emulator.create(configmap("db", namespace, labels={"app": "db"}))
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("cm", namespaces=["team-a", "team-b"], label_selector="app in (web)")
    await recorder.wait_count(2)
    assert sorted(e.key for e in recorder.events) == ["team-a/web", "team-b/web"]
    kube_emulator.patch("configmaps", "db", {"metadata": {"labels": {"app": "web"}}}, namespace="team-a")
    kube_emulator.patch("configmaps", "web", {"data": {"x": "1"}}, namespace="team-c")
    kube_emulator.patch("configmaps", "web", {"metadata": {"labels": {"app": "other"}}}, namespace="team-b")
    await recorder.wait_count(4)
    await asyncio.sleep(0.2)
    assert [(e.type.value, e.key) for e in recorder.events[2:]] == [
        ("ADDED", "team-a/db"),
        ("DELETED", "team-b/web"),
    ]
    names = sorted(
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in hub.list("c1", "configmaps", namespace="team-a", label_selector="app in (web)")
    )
    assert names == [("team-a", "db"), ("team-a", "web")]
    statuses = hub.status("c1").resources
    assert len(statuses) == 1
    assert statuses[0].namespaces == ("team-a", "team-b")
    assert statuses[0].label_selector == "app in (web)"


async def test_handlers_and_shared_informers(hub: Hub, kube_emulator: KubeEmulator) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    @hub.on("configmaps", types=["ADDED"])
    async def on_added(event: Any) -> None:
        if event.name == "boom":
            raise RuntimeError("handler failure must not stop the hub")
        seen.append(event.name)
        if event.name == "last":
            done.set()

    stream = await hub.events("configmaps")
    await hub.add_cluster("c1", connect(kube_emulator))
    kube_emulator.create(configmap("first"))
    kube_emulator.create(configmap("boom"))
    kube_emulator.create(configmap("last"))
    await asyncio.wait_for(done.wait(), 10)
    assert seen == ["first", "last"]
    assert len(hub._cluster("c1").informers()) == 1, "one informer serves every consumer of the same watch"
    stream.close()


async def test_listeners_see_every_batch_before_streams(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def listener(cluster: str, key: Any, events: list[Any]) -> None:
        seen.extend((cluster, key.scope, e.name) for e in events)

    hub.add_listener(listener)
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("configmaps", label_selector="app=web")
    kube_emulator.create(configmap("a", labels={"app": "web"}))
    await recorder.wait_count(1)
    assert seen == [("c1", "/configmaps|*|app=web", "a")]
    assert hub.events_observed[("c1", "configmaps")] == 1


async def test_a_listed_state_and_the_same_state_watched_have_the_same_bytes(
    hub: Hub, kube_emulator: KubeEmulator, record: Any
) -> None:
    """List items come without kind/apiVersion; the informer adds them where a watch has them,
    first, so a compact cache's bytes of a listed state equal those of the same state watched
    (else the byte no-op check calls the first no-op after every list a change)."""
    created = kube_emulator.create(configmap("web", v="1"))
    await hub.add_cluster("c1", connect(kube_emulator))
    recorder = await record("configmaps")
    await recorder.wait_count(1)
    assert list(recorder.events[0].object)[:2] == ["kind", "apiVersion"]
    # The server re-sends the same state with only a new resourceVersion (as a managedFields-only
    # change looks once managedFields are stripped).
    metadata = {
        **created["metadata"],
        "resourceVersion": str(int(created["metadata"]["resourceVersion"]) + 100),
    }
    same = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        **{k: v for k, v in created.items() if k not in ("kind", "apiVersion")},
    }
    same["metadata"] = metadata
    kube_emulator.firehose("configmaps", [orjson.dumps({"type": "MODIFIED", "object": same})])
    kube_emulator.end_watches()
    await recorder.wait_count(2)
    modified = recorder.events[1]
    assert modified.type is EventType.MODIFIED
    assert is_noop(modified.old_object or {}, modified.object)
    if hub._informer_options.compact_cache:
        assert modified.old_json is not None
        assert modified.object_json is not None
        assert json_is_noop(modified.old_json, modified.object_json) is True


async def test_a_batch_a_consumer_failed_on_is_handed_over_again(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    """The informer's cache holds the change already: dropping the batch would lose it for good."""
    emulator = await kube_emulators(name="c1")
    emulator.create(configmap("doomed"))
    failing = {"now": True, "calls": 0}

    async def flaky(cluster: str, key: Any, events: list[Event]) -> None:
        if failing["now"] and any(e.type is EventType.DELETED for e in events):
            failing["calls"] += 1
            raise RuntimeError("a consumer's defect")

    hub.add_listener(flaky)
    await hub.add_cluster("c1", connect(emulator))
    recorder = await record("configmaps")
    await recorder.wait_count(1)
    emulator.delete("configmaps", "doomed")
    await eventually(lambda: failing["calls"] >= 2)  # handed over again, and shown meanwhile
    (status,) = [r for r in hub.status("c1").resources if r.resource == "configmaps"]
    assert status.state is InformerState.BACKOFF
    assert status.last_error is not None
    assert "a consumer failed on 1 change(s) (RuntimeError" in status.last_error
    failing["now"] = False
    await recorder.wait_for(lambda events: [e.type for e in events] == [EventType.ADDED, EventType.DELETED])
    (status,) = [r for r in hub.status("c1").resources if r.resource == "configmaps"]
    assert status.last_error is None


async def test_a_stream_nobody_reads_holds_back_the_others_only_for_a_while(
    kube_emulator: KubeEmulator,
) -> None:
    """A forgotten stream (or a tail whose client stopped reading) shares the informer with the
    cache, other streams and handlers: once full, it is closed after `slow_consumer_seconds`
    and everyone else goes on."""
    async with Hub(informer_options=FAST, stream_max_batches=2, slow_consumer_seconds=0.3) as hub:
        seen: list[str] = []

        @hub.on("configmaps", types=["ADDED"])
        async def handle(event: Event) -> None:
            seen.append(event.name)

        forgotten = await hub.events("configmaps")
        reader = await hub.events("configmaps", types=["ADDED"])
        await hub.add_cluster("c1", connect(kube_emulator))
        assert await hub.wait_synced(timeout=5)
        names = [f"cm-{i}" for i in range(20)]
        read: list[str] = []
        for name in names:  # one at a time: a batch each
            kube_emulator.create(configmap(name))
            read.append((await asyncio.wait_for(anext(reader), 5)).name)
        assert read == names
        await eventually(lambda: seen == names)
        assert {name for name in names if hub.get("c1", "configmaps", name, namespace="default")} == set(
            names
        )
        assert forgotten.overflowed
        with pytest.raises(StreamOverflowError):
            async for _ in forgotten:
                pass
        reader.close()


async def test_handlers_run_without_async_with_and_a_closed_hub_refuses_new_work(
    kube_emulator: KubeEmulator,
) -> None:
    """An application that manages the hub's lifetime itself (a lifespan, an exit stack)."""
    hub = Hub(informer_options=FAST)
    seen: list[str] = []

    @hub.on("configmaps", types=["ADDED"])
    async def handle(event: Event) -> None:
        seen.append(event.name)

    kube_emulator.create(configmap("web"))
    await hub.add_cluster("c1", connect(kube_emulator))
    await eventually(lambda: seen == ["web"])
    await hub.close()
    with pytest.raises(RuntimeError, match="this Hub is closed"):
        await hub.add_cluster("c2", connect(kube_emulator))
    with pytest.raises(RuntimeError, match="this Hub is closed"):
        await hub.events("configmaps")


async def test_after_remove_cluster_returns_no_stream_yields_an_event_of_it(
    kube_emulators: Any,
) -> None:
    """A consumer drops a removed cluster's state once `remove_cluster` returns: events of it
    still queued must not bring that state back."""
    async with Hub(informer_options=FAST) as hub:
        a, b = await kube_emulators(name="a"), await kube_emulators(name="b")
        stream = await hub.events("configmaps")
        for emulator in (a, b):
            await hub.add_cluster(emulator.name, connect(emulator))
        assert await hub.wait_synced(timeout=5)
        b.create(configmap("x"))
        b.patch("configmaps", "x", {"data": {"v": "2"}})
        a.create(configmap("y"))
        await eventually(lambda: stream.backlog == 3)  # queued, nothing read yet

        await hub.remove_cluster("b")

        assert [(e.cluster, e.name) for e in await asyncio.wait_for(stream.next_batch(), 5) or []] == [
            ("a", "y")
        ]
        stream.close()


async def test_a_stream_opened_while_a_batch_is_handed_out_gets_it_once(
    kube_emulator: KubeEmulator,
) -> None:
    """The cache holds a batch before listeners and streams get it: a stream opened while the
    hub waits on a listener (or a full stream) starts from a snapshot with that batch, and must
    not get it again."""
    async with Hub(informer_options=FAST) as hub:
        release = asyncio.Event()
        holding = asyncio.Event()

        async def slow_listener(cluster: str, key: Any, events: list[Event]) -> None:
            if any(event.name == "second" for event in events):
                holding.set()
                await release.wait()

        hub.add_listener(slow_listener)
        await hub.add_cluster("c1", connect(kube_emulator))
        spec = await hub.watch("configmaps")
        assert await hub.wait_synced(timeout=5)
        kube_emulator.create(configmap("first"))
        await eventually(lambda: hub.get("c1", "configmaps", "first", namespace="default") is not None)
        kube_emulator.create(configmap("second"))
        await asyncio.wait_for(holding.wait(), 5)  # in the cache, being handed out

        late = await hub.events("configmaps")
        release.set()
        kube_emulator.create(configmap("third"))
        seen: list[tuple[str, str]] = []
        async with asyncio.timeout(5):
            async for event in late:
                seen.append((event.type.value, event.name))
                if event.name == "third":
                    break
        assert sorted(seen[:2]) == [("ADDED", "first"), ("ADDED", "second")]
        assert seen[2:] == [("ADDED", "third")]
        late.close()
        await hub.unwatch(spec)


async def test_handlers_may_be_partials_and_callable_objects(kube_emulator: KubeEmulator) -> None:
    seen: list[tuple[str, str]] = []

    async def handle(tag: str, event: Event) -> None:
        seen.append((tag, event.name))

    class Handler:
        async def __call__(self, event: Event) -> None:
            seen.append(("object", event.name))

    hub = Hub(informer_options=FAST)
    hub.on("configmaps")(functools.partial(handle, "partial"))
    hub.on("configmaps")(Handler())
    kube_emulator.create(configmap("web"))
    async with hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        await eventually(lambda: sorted(seen) == [("object", "web"), ("partial", "web")])


async def test_an_unwatch_without_its_watch_is_refused(kube_emulator: KubeEmulator) -> None:
    """An extra `unwatch` would stop the informer a stream of the same spec still reads."""
    async with Hub(informer_options=FAST) as hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        spec = await hub.watch("configmaps")
        stream = await hub.events("configmaps")
        await hub.unwatch(spec)
        with pytest.raises(ValueError, match="more unwatch"):
            await hub.unwatch(spec)
        kube_emulator.create(configmap("still-watched"))
        assert (await asyncio.wait_for(anext(stream), 5)).name == "still-watched"
        stream.close()


async def test_cache_queries_say_what_they_need(kube_emulator: KubeEmulator) -> None:
    """A namespaced object cannot be named without its namespace; a cache filtered by labels or
    namespaces is not "not watched": the error says how it is watched."""
    async with Hub(informer_options=FAST) as hub:
        await hub.add_cluster("c1", connect(kube_emulator))
        spec = await hub.watch("configmaps", namespaces=["shop"], label_selector="team=web")
        assert await hub.wait_synced(timeout=5)
        with pytest.raises(
            NotWatchedError, match=r"watched only with label selector 'team=web' and namespaces shop"
        ):
            hub.get("c1", "configmaps", "web", namespace="shop")
        assert hub.list("c1", "configmaps", namespace="shop", label_selector="team=web") == []
        await hub.unwatch(spec)
        with pytest.raises(NotWatchedError, match=r"is not watched; call Hub\.watch"):
            hub.get("c1", "configmaps", "web", namespace="shop")
        everything = await hub.watch("configmaps")
        assert await hub.wait_synced(timeout=5)
        with pytest.raises(ValueError, match="namespaced: pass namespace="):
            hub.get("c1", "configmaps", "web")
        assert hub.get("c1", "configmaps", "web", namespace="shop") is None
        await hub.unwatch(everything)
