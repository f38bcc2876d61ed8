"""pytest fixtures that start emulated clusters and always stop them.

Enable with `pytest_plugins = ["mic.testing.pytest_plugin"]` in a top-level conftest.py.

- `kube_emulators`: a factory; `emu = await kube_emulators(name="c1", tokens=...)` starts one
  `KubeEmulator` (any constructor keyword works) and every one made is stopped at teardown.
- `kube_emulator`: one started emulator named "c1" without authentication.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import pytest_asyncio

from mic.testing.emulator import KubeEmulator


class EmulatorFactory(Protocol):
    def __call__(self, name: str = ..., **kwargs: Any) -> Awaitable[KubeEmulator]: ...


@pytest_asyncio.fixture
async def kube_emulators() -> AsyncIterator[EmulatorFactory]:
    started: list[KubeEmulator] = []

    async def make(name: str = "c1", **kwargs: Any) -> KubeEmulator:
        emulator = KubeEmulator(name, **kwargs)
        await emulator.start()
        started.append(emulator)
        return emulator

    try:
        yield make
    finally:
        await asyncio.gather(*(e.stop() for e in started), return_exceptions=True)


@pytest_asyncio.fixture
async def kube_emulator(kube_emulators: EmulatorFactory) -> KubeEmulator:
    return await kube_emulators(name="c1")
