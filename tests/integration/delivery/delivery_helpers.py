"""A delivery pipeline as the service builds it (store, hub, engine) around emulated clusters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from mic.delivery.engine import DeliveryEngine
from mic.hub import Hub
from mic.kube.informer import InformerOptions
from mic.kube.kubeconfig import from_kubeconfig_text
from mic.store import ClusterRecord, Store, SubscriptionRecord
from mic.testing import KubeEmulator
from mic.testing.recipient import WebhookRecipient as Recipient

FAST = InformerOptions(stall_timeout=2.0, initial_backoff=0.05, max_backoff=0.3, auth_retry_interval=0.5)


class Pipeline:
    """Store + hub + engine on one SQLite file; `restart()` rebuilds them from that file."""

    def __init__(self, database: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{database}"
        self.emulators: dict[str, KubeEmulator] = {}
        self.store: Store
        self.hub: Hub
        self.engine: DeliveryEngine

    async def start(self) -> Pipeline:
        self.store = await Store.open(self.url)
        self.hub = Hub(informer_options=FAST, discovery_refresh_interval=0.3)
        self.engine = DeliveryEngine(self.store, self.hub)
        await self.engine.start()
        for record in await self.store.list_clusters():
            emulator = self.emulators[record.name]
            await self.hub.add_cluster(
                record.name, from_kubeconfig_text(emulator.kubeconfig_yaml()), labels=dict(record.labels)
            )
        return self

    async def stop(self) -> None:
        await self.engine.close()
        await self.hub.close()
        await self.store.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def add_cluster(self, emulator: KubeEmulator, labels: dict[str, str] | None = None) -> None:
        self.emulators[emulator.name] = emulator
        await self.store.create_cluster(
            ClusterRecord(name=emulator.name, connection={"type": "test"}, labels=labels or {})
        )
        await self.hub.add_cluster(
            emulator.name, from_kubeconfig_text(emulator.kubeconfig_yaml()), labels=labels or {}
        )

    async def subscribe(self, name: str, recipient: Recipient, **spec: Any) -> None:
        document: dict[str, Any] = {
            "name": name,
            "sink": {"url": recipient.url},
            "filter": {"resources": ["configmaps"]},
        }
        for key, value in spec.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
        record = await self.store.create_subscription(SubscriptionRecord(name=name, spec=document))
        await self.engine.apply(record)


@pytest_asyncio.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    running = await Pipeline(tmp_path / "mic.db").start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def recipient() -> AsyncIterator[Recipient]:
    running = await Recipient().start()
    try:
        yield running
    finally:
        await running.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds (state owned by other tasks), at most `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


class LockedStore:
    """Fault injection: the store's `method` fails `times` times as a locked database would,
    then works again; `left` says how many failures are still to come."""

    def __init__(self, store: Store, method: str, times: int) -> None:
        from mic.store import StoreUnavailableError

        real = getattr(store, method)
        self.left = times

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if self.left:
                self.left -= 1
                raise StoreUnavailableError("database is locked")
            return await real(*args, **kwargs)

        setattr(store, method, flaky)


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(type suffix, subject, resourceversion) of each CloudEvent."""
    return [(e["type"].rsplit(".", 1)[-1], e["subject"], e["resourceversion"]) for e in events]
