"""Every injected fault, observed from a real HTTP client."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from mic.testing import KubeEmulator

CMS = "/api/v1/namespaces/default/configmaps"


async def test_drop_watches_cuts_the_stream_mid_chunk(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any], eventually: Any
) -> None:
    watch = await open_watch(CMS, resourceVersion=kube_emulator.resource_version)
    await kube_emulator.wait_for_watches(1)
    assert kube_emulator.drop_watches() == 1
    with pytest.raises(aiohttp.ClientPayloadError):
        await watch.next()
    await eventually(lambda: kube_emulator.open_watches == 0)


async def test_end_watches_is_a_clean_end(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    watch = await open_watch(CMS, resourceVersion=kube_emulator.resource_version)
    await kube_emulator.wait_for_watches(1)
    kube_emulator.create(cm("a"))
    assert kube_emulator.end_watches() == 1
    assert (await watch.next())["type"] == "ADDED", "pending events are flushed first"
    await watch.expect_end()


async def test_stall_watches_silences_open_streams_only(
    kube_emulators: Any, cm: Callable[..., Any], eventually: Any
) -> None:
    emu = await kube_emulators(name="stall", bookmark_interval=0.1)
    async with aiohttp.ClientSession(emu.url) as session:

        async def watch(**params: str) -> aiohttp.ClientResponse:
            query = {
                "watch": "1",
                "resourceVersion": emu.resource_version,
                "allowWatchBookmarks": "1",
                **params,
            }
            return await session.get(CMS, params=query)

        async def next_line(response: aiohttp.ClientResponse, timeout: float) -> Any:
            return orjson.loads(await asyncio.wait_for(response.content.readline(), timeout))

        stalled = await watch()
        await emu.wait_for_watches(1)
        assert emu.stall_watches() == 1
        emu.create(cm("a"))
        fresh = await watch(resourceVersion="0")
        assert (await next_line(fresh, 5))["object"]["metadata"]["name"] == "a", "new watches work normally"
        assert (await next_line(fresh, 5))["type"] == "BOOKMARK", "bookmarks flow on healthy watches"
        with pytest.raises(TimeoutError):
            await next_line(stalled, 0.5)  # five bookmark intervals: nothing at all arrives
        assert emu.open_watches == 2
        stalled.close()
        await eventually(lambda: emu.open_watches == 1)
        assert emu.drop_watches() == 1
        fresh.close()


async def test_fail_requests(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    kube_emulator.fail_requests(503, count=2, retry_after=3, verbs=["list"])
    for _ in range(2):
        async with session.get(CMS) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "3"
            body = await response.json()
            assert (body["kind"], body["reason"], body["code"]) == ("Status", "ServiceUnavailable", 503)
            assert body["details"]["retryAfterSeconds"] == 3
    async with session.get(CMS) as response:
        assert response.status == 200
    kube_emulator.fail_requests(429, path_contains="watch=")
    async with session.get(f"{CMS}/x") as response:
        assert response.status == 404, "a get does not match a rule for watch URLs"
    async with session.get(CMS, params={"watch": "1"}) as response:
        assert response.status == 429
        assert (await response.json())["reason"] == "TooManyRequests"
    kube_emulator.fail_requests(500, verbs=["create"])
    async with session.post(CMS, json={"metadata": {"name": "a"}}) as response:
        assert response.status == 500
    assert kube_emulator.objects("configmaps") == []
    assert kube_emulator.failed_requests == 4
    assert [r.status for r in kube_emulator.requests][-1] == 500


async def test_latency(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    kube_emulator.set_latency(0.3)
    started = time.monotonic()
    async with session.get("/version") as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.3
    kube_emulator.set_latency(0)
    started = time.monotonic()
    async with session.get("/version") as response:
        assert response.status == 200
    assert time.monotonic() - started < 0.3


async def test_pause_and_resume(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession, eventually: Any
) -> None:
    kube_emulator.pause()

    async def fetch() -> int:
        async with session.get("/version") as response:
            return response.status

    pending = asyncio.create_task(fetch())
    await eventually(lambda: kube_emulator.faults.paused)
    done, _ = await asyncio.wait({pending}, timeout=0.3)
    assert not done, "a paused server must not answer"
    kube_emulator.resume()
    assert await asyncio.wait_for(pending, 5) == 200


async def test_restart_keeps_state_and_port_but_kills_connections(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    kube_emulator.create(cm("a"))
    rv, url = kube_emulator.resource_version, kube_emulator.url
    watch = await open_watch(CMS, resourceVersion=rv)
    await kube_emulator.wait_for_watches(1)
    await asyncio.wait_for(kube_emulator.restart(), 5)
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, EOFError)):
        await watch.next()
    assert kube_emulator.url == url
    async with aiohttp.ClientSession(url) as session, session.get(CMS) as response:
        body = await response.json()
        assert body["metadata"]["resourceVersion"] == rv
        assert [i["metadata"]["name"] for i in body["items"]] == ["a"]


async def test_restart_expires_the_history_as_a_rebuilt_watch_cache_does(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    before = kube_emulator.resource_version
    kube_emulator.create(cm("a"))
    current = kube_emulator.resource_version
    await asyncio.wait_for(kube_emulator.restart(), 5)
    expired = await open_watch(CMS, resourceVersion=before)
    error = await expired.next()
    assert (error["type"], error["object"]["code"]) == ("ERROR", 410)
    live = await open_watch(CMS, resourceVersion=current)  # the list's version still serves
    kube_emulator.create(cm("b"))
    assert (await live.next())["object"]["metadata"]["name"] == "b"
    kept_from = kube_emulator.resource_version
    kube_emulator.create(cm("c"))
    await asyncio.wait_for(kube_emulator.restart(expire_history=False), 5)
    replayed = await open_watch(CMS, resourceVersion=kept_from)
    assert (await replayed.next())["object"]["metadata"]["name"] == "c"


async def test_stop_does_not_hang_with_open_watches(kube_emulators: Any) -> None:
    emu = await kube_emulators(name="busy")
    async with aiohttp.ClientSession(emu.url) as session:
        responses = [await session.get(CMS, params={"watch": "1"}) for _ in range(3)]
        await emu.wait_for_watches(3)
        started = time.monotonic()
        await asyncio.wait_for(emu.stop(), 5)
        assert time.monotonic() - started < 2
        assert not emu.running
        for response in responses:
            response.close()


async def test_firehose_streams_prebuilt_lines_then_goes_live(
    kube_emulator: KubeEmulator, open_watch: Any, cm: Callable[..., Any]
) -> None:
    lines = [
        orjson.dumps(
            {
                "type": "ADDED",
                "object": {**cm(f"f{i}"), "metadata": {"name": f"f{i}", "resourceVersion": str(i)}},
            }
        )
        for i in range(20_000)
    ]
    kube_emulator.firehose("configmaps", lines, namespace="default")
    watch = await open_watch(CMS, resourceVersion=kube_emulator.resource_version)
    for i in range(20_000):
        event = await watch.next()
        assert event["object"]["metadata"]["name"] == f"f{i}"
    kube_emulator.create(cm("live"))
    assert (await watch.next())["object"]["metadata"]["name"] == "live"
    second = await open_watch(CMS, resourceVersion=kube_emulator.resource_version)
    kube_emulator.create(cm("live2"))
    assert (await second.next())["object"]["metadata"]["name"] == "live2", "a firehose is used once"
