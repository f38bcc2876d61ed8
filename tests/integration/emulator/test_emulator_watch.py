"""Watch semantics over HTTP, per the Kubernetes API concepts document."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from mic.testing import KubeEmulator

CMS = "/api/v1/namespaces/default/configmaps"


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


async def test_wire_format(session: aiohttp.ClientSession) -> None:
    async with session.get(CMS, params={"watch": "1", "timeoutSeconds": "1"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Transfer-Encoding"] == "chunked"


async def test_unset_and_zero_rv_start_with_synthetic_added(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    kube_emulator.create(cm("b"))
    for params in ({}, {"resourceVersion": "0"}):
        watch = await open_watch(CMS, **params)
        assert names([await watch.next(), await watch.next()]) == [("ADDED", "a"), ("ADDED", "b")]
        kube_emulator.patch("configmaps", "a", {"data": {"x": str(params)}})
        event = await watch.next()
        assert event["type"] == "MODIFIED"
        assert event["object"]["kind"] == "ConfigMap"
        assert event["object"]["metadata"]["resourceVersion"] == kube_emulator.resource_version


async def test_watch_from_rv_replays_later_changes(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    rv = kube_emulator.resource_version
    kube_emulator.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    kube_emulator.create(cm("b"))
    kube_emulator.delete("configmaps", "a")
    watch = await open_watch(CMS, resourceVersion=rv)
    events = [await watch.next(), await watch.next()]
    assert names(events) == [("ADDED", "b"), ("DELETED", "a")]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_too_old_rv_gets_error_event_then_end(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    old = kube_emulator.resource_version
    kube_emulator.create(cm("b"))
    kube_emulator.compact()
    watch = await open_watch(CMS, resourceVersion=old)
    event = await watch.next()
    assert event["type"] == "ERROR"
    assert event["object"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {old} ({kube_emulator.resource_version})",
        "reason": "Expired",
        "code": 410,
    }
    await watch.expect_end()


async def test_history_overflow_expires_quiet_resources(kube_emulators: Any, cm: Callable[..., Any]) -> None:
    emu = await kube_emulators(name="small", history_size=5)
    emu.create(cm("a"))
    old = emu.resource_version
    for i in range(6):
        emu.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}})
    async with (
        aiohttp.ClientSession(emu.url) as session,
        session.get(CMS, params={"watch": "1", "resourceVersion": old}) as response,
    ):
        line = await asyncio.wait_for(response.content.readline(), 5)
        assert b'"code":410' in line


async def test_bookmarks(kube_emulators: Any, cm: Callable[..., Any]) -> None:
    emu = await kube_emulators(name="bm", bookmark_interval=0.05)
    emu.create(cm("a"))
    async with aiohttp.ClientSession(emu.url) as session:
        params = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": emu.resource_version}
        async with session.get(CMS, params=params) as response:
            emu.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
            line = await asyncio.wait_for(response.content.readline(), 5)
            event = orjson.loads(line)
            assert event == {
                "type": "BOOKMARK",
                "object": {
                    "kind": "ConfigMap",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": emu.resource_version},
                },
            }
        async with session.get(CMS, params={"watch": "1", "timeoutSeconds": "1"}) as response:
            await asyncio.wait_for(response.content.readline(), 5)  # the ADDED
            assert await asyncio.wait_for(response.content.readline(), 5) == b"", "no bookmarks unless asked"


async def test_a_watch_at_the_current_version_gets_bookmarks_while_nothing_changes(
    kube_emulators: Any, cm: Callable[..., Any]
) -> None:
    """A real cluster's version always moves on (leases, events), so its quiet watches get
    bookmarks; an idle emulator sends them at the watch's own version rather than none."""
    emu = await kube_emulators(name="idle", bookmark_interval=0.05)
    emu.create(cm("a"))
    current = emu.resource_version
    async with aiohttp.ClientSession(emu.url) as session:
        params = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": current}
        async with session.get(CMS, params=params) as response:
            for _ in range(2):
                event = orjson.loads(await asyncio.wait_for(response.content.readline(), 5))
                assert event["type"] == "BOOKMARK"
                assert event["object"]["metadata"]["resourceVersion"] == current


async def test_send_initial_events_ends_with_annotated_bookmark(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    rv = kube_emulator.resource_version
    watch = await open_watch(
        CMS, sendInitialEvents="true", resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true"
    )
    assert names([await watch.next()]) == [("ADDED", "a")]
    bookmark = await watch.next()
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"] == {
        "resourceVersion": rv,
        "annotations": {"k8s.io/initial-events-end": "true"},
    }


async def test_invalid_watch_parameters_are_422(session: aiohttp.ClientSession) -> None:
    async with session.get(CMS, params={"watch": "1", "sendInitialEvents": "true"}) as response:
        assert response.status == 422
        assert (await response.json())["reason"] == "Invalid"


async def test_timeout_seconds_ends_stream_cleanly(open_watch: Any) -> None:
    started = time.monotonic()
    watch = await open_watch(CMS, timeoutSeconds="1")
    await watch.expect_end(timeout=5)
    assert 0.9 <= time.monotonic() - started < 3


async def test_selector_enter_and_leave(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a", app="db"))
    watch = await open_watch(CMS, labelSelector="app=web", resourceVersion=kube_emulator.resource_version)
    kube_emulator.patch("configmaps", "a", {"metadata": {"labels": {"app": "web"}}})
    entered = await watch.next()
    assert (entered["type"], entered["object"]["metadata"]["labels"]) == ("ADDED", {"app": "web"})
    left_obj = kube_emulator.patch("configmaps", "a", {"metadata": {"labels": {"app": "db"}}})
    left = await watch.next()
    assert left["type"] == "DELETED"
    assert left["object"]["metadata"]["labels"] == {"app": "web"}
    assert left["object"]["metadata"]["resourceVersion"] == left_obj["metadata"]["resourceVersion"]
    kube_emulator.create(cm("b", app="web"))
    assert names([await watch.next()]) == [("ADDED", "b")], "changes outside the selector send nothing"


async def test_namespace_and_name_scoped_watches(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    rv = kube_emulator.resource_version
    in_ns = await open_watch(CMS, resourceVersion=rv)
    all_ns = await open_watch("/api/v1/configmaps", resourceVersion=rv)
    one = await open_watch(f"{CMS}/b", resourceVersion=rv)
    legacy = await open_watch("/api/v1/watch/namespaces/kube-system/configmaps", resourceVersion=rv)
    kube_emulator.create(cm("a", namespace="kube-system"))
    kube_emulator.create(cm("b"))
    assert names([await in_ns.next()]) == [("ADDED", "b")]
    assert names([await all_ns.next(), await all_ns.next()]) == [("ADDED", "a"), ("ADDED", "b")]
    assert names([await one.next()]) == [("ADDED", "b")]
    assert names([await legacy.next()]) == [("ADDED", "a")]


async def test_send_initial_events_false_starts_at_most_recent(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("old"))
    watch = await open_watch(
        CMS, sendInitialEvents="false", resourceVersionMatch="NotOlderThan", resourceVersion="0"
    )
    await kube_emulator.wait_for_watches(1)
    kube_emulator.create(cm("new"))
    assert names([await watch.next()]) == [("ADDED", "new")]


async def test_long_replay_is_not_a_slow_watcher(kube_emulators: Any, cm: Callable[..., Any]) -> None:
    emu = await kube_emulators(name="replay", history_size=100, watch_buffer=5)
    start = emu.resource_version
    for i in range(30):
        emu.create(cm(f"c{i:02d}"))
    async with (
        aiohttp.ClientSession(emu.url) as session,
        session.get(CMS, params={"watch": "1", "resourceVersion": start}) as response,
    ):
        seen = [orjson.loads(await asyncio.wait_for(response.content.readline(), 5)) for _ in range(30)]
        assert [e["object"]["metadata"]["name"] for e in seen] == [f"c{i:02d}" for i in range(30)]
        emu.create(cm("live"))
        live = orjson.loads(await asyncio.wait_for(response.content.readline(), 5))
        assert live["object"]["metadata"]["name"] == "live"


async def test_expired_watch_does_not_consume_a_firehose(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    old = kube_emulator.resource_version
    kube_emulator.create(cm("b"))
    kube_emulator.compact()
    kube_emulator.firehose("configmaps", [b'{"type":"ADDED","object":{"metadata":{"name":"fh"}}}'])
    expired = await open_watch(CMS, resourceVersion=old)
    assert (await expired.next())["type"] == "ERROR"
    watch = await open_watch(CMS, resourceVersion=kube_emulator.resource_version)
    assert (await watch.next())["object"]["metadata"]["name"] == "fh"


async def test_a_watch_from_a_version_not_reached_yet_stays_silent_until_changes_pass_it(
    kube_emulators: Any, cm: Callable[..., Any]
) -> None:
    # As kube's watch cache: nothing at or below the requested version, bookmarks included
    # (a bookmark at the current, lower version would take a client back in history).
    emu = await kube_emulators(name="future", bookmark_interval=0.05)
    future = int(emu.resource_version) + 3
    async with aiohttp.ClientSession(emu.url) as session:
        params = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": str(future)}
        async with session.get(CMS, params=params) as response:
            await emu.wait_for_watches(1, "configmaps")
            emu.create(cm("below-1"))
            emu.create(cm("below-2"))
            emu.create(cm("at"))
            emu.create(cm("above"))
            event = orjson.loads(await asyncio.wait_for(response.content.readline(), 5))
            assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "above")
            assert int(event["object"]["metadata"]["resourceVersion"]) > future


async def test_removing_the_last_finalizer_deletes_with_the_last_stored_state(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kept = cm("x", app="a")
    kept["metadata"]["finalizers"] = ["example.com/hold"]
    kube_emulator.create(kept)
    watch = await open_watch(CMS, labelSelector="app=a", resourceVersion=kube_emulator.resource_version)
    kube_emulator.delete("configmaps", "x")  # only marks it (deletionTimestamp): a finalizer holds it
    marked = await watch.next()
    assert marked["type"] == "MODIFIED"
    last = kube_emulator.get("configmaps", "x")
    last["metadata"]["finalizers"] = []
    last["metadata"]["labels"] = {"app": "b"}  # not stored: the object goes with this update
    kube_emulator.update(last)
    gone = await watch.next()
    assert gone["type"] == "DELETED"
    assert gone["object"]["metadata"]["labels"] == {"app": "a"}
    assert gone["object"]["metadata"]["finalizers"] == ["example.com/hold"]
    assert gone["object"]["metadata"]["resourceVersion"] == kube_emulator.resource_version
