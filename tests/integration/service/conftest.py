"""Fixtures for supervisor tests: a real store on SQLite and a hub, without the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mic.hub import Hub
from mic.kube.informer import InformerOptions
from mic.service.connections import ConnectionPolicy
from mic.service.supervisor import Supervisor
from mic.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def supervisor(store: Store) -> AsyncIterator[Supervisor]:
    hub = Hub(informer_options=InformerOptions(strip_managed_fields=True))
    running = Supervisor(store, hub, ConnectionPolicy(), resync_interval=0.05, sync_timeout=5.0)
    await running.start()
    try:
        yield running
    finally:
        await running.close()
        await hub.close()
