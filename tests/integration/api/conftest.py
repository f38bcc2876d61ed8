"""Fixtures for API tests; the helpers live in `mic_api_harness`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mic_api_harness import ADMIN_TOKEN, VIEWER_TOKEN, Api, run_app
from webhook_recipient import Recipient, serving_recipient

from mic.service.settings import ServiceSettings


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    kubeconfig_dir = tmp_path / "kubeconfigs"
    kubeconfig_dir.mkdir()
    return ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}",
        kubeconfig_dir=kubeconfig_dir,
        admin_token=ADMIN_TOKEN,
        viewer_token=VIEWER_TOKEN,
        resource_sync_timeout=5.0,
        announce_generated_token=False,
    )


@pytest.fixture
async def api(settings: ServiceSettings) -> AsyncIterator[Api]:
    async with run_app(settings) as running:
        yield running


@pytest.fixture
def replace_settings(settings: ServiceSettings) -> Callable[..., ServiceSettings]:
    def make(**changes: Any) -> ServiceSettings:
        return dataclasses.replace(settings, **changes)

    return make


@pytest.fixture
async def recipient() -> AsyncIterator[Recipient]:
    """A real HTTP webhook recipient (aiohttp on 127.0.0.1) that records what it gets."""
    async with serving_recipient() as running:
        yield running


@pytest.fixture
async def recipients() -> AsyncIterator[tuple[Recipient, Recipient]]:
    """Two of them, for what goes to one and not the other."""
    async with serving_recipient() as first, serving_recipient() as second:
        yield first, second
