"""Fixtures for talking to an emulator over real HTTP: a session and a watch-stream reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from mic.testing import KubeEmulator


class WatchStream:
    """One open watch response, read event by event with a timeout on every read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        if not line:
            raise EOFError("watch stream ended")
        event: dict[str, Any] = orjson.loads(line)
        return event

    async def next_non_bookmark(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event = await self.next(timeout)
            if event["type"] != "BOOKMARK":
                return event

    async def expect_end(self, timeout: float = 5.0) -> None:
        """The stream ends cleanly (chunked terminator) with no further event."""
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        assert line == b"", f"expected the end of the stream, got {line!r}"

    def close(self) -> None:
        self.response.close()


WatchOpener = Callable[..., Awaitable[WatchStream]]


@pytest_asyncio.fixture
async def session(kube_emulator: KubeEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(kube_emulator.url) as client:
        yield client


@pytest_asyncio.fixture
async def open_watch(session: aiohttp.ClientSession) -> AsyncIterator[WatchOpener]:
    streams: list[WatchStream] = []

    async def opener(path: str, **params: str) -> WatchStream:
        response = await session.get(path, params={"watch": "true", **params})
        assert response.status == 200, await response.text()
        stream = WatchStream(response)
        streams.append(stream)
        return stream

    yield opener
    for stream in streams:
        stream.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_until


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": "v"},
    }


@pytest.fixture
def cm() -> Callable[..., dict[str, Any]]:
    return configmap
