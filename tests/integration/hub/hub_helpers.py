"""Helpers for hub tests: a recorder that consumes a hub stream, and fast informer settings."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from mic.events import Event
from mic.hub import EventStream, Hub
from mic.kube.connection import ClusterConnection
from mic.kube.informer import InformerOptions
from mic.kube.kubeconfig import from_kubeconfig_text
from mic.testing import KubeEmulator

FAST = InformerOptions(
    stall_timeout=2.0, initial_backoff=0.05, max_backoff=0.3, auth_retry_interval=0.5, page_size=3
)


def connect(emulator: KubeEmulator, token: str | None = None) -> ClusterConnection:
    """The connection a user would get from the emulator's kubeconfig."""
    return from_kubeconfig_text(emulator.kubeconfig_yaml(token=token))


class Recorder:
    """Consumes a stream in the background so tests can wait for what should arrive."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.stream:
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.events))

    async def wait_count(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_for(lambda events: len(events) >= count, timeout)

    async def close(self) -> None:
        self.stream.close()
        await asyncio.wait_for(self._task, 5)

    def summary(self) -> list[tuple[str, str, str, str]]:
        return [(e.cluster, e.type.value, e.key, e.resource_version) for e in self.events]


@pytest_asyncio.fixture(params=["dict-cache", "compact-cache"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    """A hub with fast settings; every hub test runs with both kinds of informer cache."""
    options = dataclasses.replace(FAST, compact_cache=request.param == "compact-cache")
    async with Hub(informer_options=options, discovery_refresh_interval=0.3) as running:
        yield running


@pytest.fixture
def recorders() -> list[Recorder]:
    return []


@pytest_asyncio.fixture
async def record(hub: Hub, recorders: list[Recorder]) -> AsyncIterator[Callable[..., Any]]:
    made: list[Recorder] = []

    async def start(resource: str, **kwargs: Any) -> Recorder:
        recorder = Recorder(await hub.events(resource, **kwargs))
        made.append(recorder)
        return recorder

    yield start
    for recorder in made:
        await recorder.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail with `what` after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
