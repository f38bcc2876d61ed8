"""The running service: store, hub, supervisor, delivery engine and token verifier, as one.

Start order follows the data: the store, the hub, then the delivery engine (it loads the
subscriptions and wires itself into the hub as a batch listener and as the source of known
state), and only then the supervisor's first pass, which adds the clusters: every informer's
first list must already meet the subscriptions and the ledger, or changes made while MIC was
down would be missed or re-sent. The tokens file's watcher starts last and stops first.
Shutdown runs the other way round; the engine closes before the hub so no informer hands it a
batch while it stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from prometheus_client.registry import CollectorRegistry

from mic.delivery.engine import DeliveryEngine
from mic.hub import Hub
from mic.service.connections import ConnectionPolicy
from mic.service.lease import LeaseLost, StoreLease
from mic.service.metrics import build_registry
from mic.service.settings import ServiceSettings
from mic.service.subscriptions import Subscriptions
from mic.service.supervisor import Supervisor
from mic.service.tokens import (
    TokensFileContent,
    TokensFileWatcher,
    TokenVerifier,
    generate_admin_token_if_none,
)
from mic.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """What the API's routes use; built by `running_service`."""

    settings: ServiceSettings
    store: Store
    hub: Hub
    supervisor: Supervisor
    engine: DeliveryEngine
    subscriptions: Subscriptions
    tokens: TokenVerifier
    metrics: CollectorRegistry
    tokens_file: TokensFileWatcher | None = None
    """Follows `settings.tokens_file` while the service runs (None without one)."""

    async def ready(self) -> bool:
        """Store reachable and the supervisor's first pass done (for `/readyz`)."""
        return self.supervisor.ready and await self.store.ping()


def announce_token(settings: ServiceSettings, token: str) -> None:
    """Show a generated admin token once, on stderr and never through logging."""
    print(
        "\nMIC generated an admin API token (shown only this once; only its hash is stored).\n"
        f"Open {settings.swagger_url}, click Authorize and paste it:\n\n"
        f"    {token}\n\n"
        "Set MIC_ADMIN_TOKEN (or MIC_TOKENS_FILE) to choose tokens yourself.\n",
        file=sys.stderr,
        flush=True,
    )


def end_process(error: LeaseLost) -> None:
    """What a MIC that lost the delivery lease does: stop at once, as a crash would.

    Another MIC may already deliver; anything this one would still send or write duplicates
    its work. The outbox makes an abrupt end safe (nothing acknowledged is lost, nothing
    unwritten was acknowledged), and the process supervisor restarts this one as a standby.
    """
    log.critical("%s; stopping now", error)
    logging.shutdown()
    os._exit(3)


@asynccontextmanager
async def running_service(
    settings: ServiceSettings,
    *,
    announce: Callable[[ServiceSettings, str], None] = announce_token,
    on_standby: Callable[[str], None] | None = None,
    on_lease_lost: Callable[[LeaseLost], None] = end_process,
) -> AsyncIterator[Service]:
    """Open the store (applying migrations), take its delivery lease (waiting as a standby while
    another MIC holds it: `on_standby(holder)` is called once), start everything; close
    everything on exit and release the lease. Losing the lease later calls `on_lease_lost`."""
    environment_grants = settings.environment_grants()
    # Read once: the grants the service starts with and the version the watcher compares with.
    loaded = TokensFileContent.read(settings.tokens_file) if settings.tokens_file is not None else None
    file_grants = list(loaded.grants) if loaded is not None else []
    informer_options = settings.informer_options()
    store = await Store.open(settings.effective_database_url)
    lease = StoreLease(store, duration=settings.lease_seconds)
    try:
        token = await generate_admin_token_if_none(store, environment_grants + file_grants)
        if token is not None and settings.announce_generated_token:
            announce(settings, token)

        def standby(holder: str) -> None:
            log.warning(
                "standby: %s holds this store's delivery lease; waiting to take over (%s is this MIC)",
                holder,
                lease.holder,
            )
            if on_standby is not None:
                on_standby(holder)

        await lease.acquire(on_wait=standby)
        hub = Hub(informer_options=informer_options)
        policy = ConnectionPolicy(
            kubeconfig_dir=settings.kubeconfig_dir,
            allow_exec=settings.allow_kubeconfig_exec,
            allow_files=settings.allow_kubeconfig_files,
        )
        supervisor = Supervisor(
            store,
            hub,
            policy,
            resync_interval=settings.resync_interval,
            sync_timeout=settings.resource_sync_timeout,
            cache_idle_seconds=settings.cache_idle_seconds,
        )
        engine = DeliveryEngine(store, hub, may_deliver=lease.current)
        supervisor.on_delete = engine.cluster_deletion
        tokens = TokenVerifier(store, environment_grants, file_grants)
        watcher = (
            TokensFileWatcher(settings.tokens_file, tokens, loaded)
            if settings.tokens_file and loaded
            else None
        )
        keeper = asyncio.create_task(_keep(lease, on_lease_lost), name="mic-lease")
        try:
            await engine.start()
            await supervisor.start()
            if watcher is not None:
                watcher.start()
            yield Service(
                settings=settings,
                store=store,
                hub=hub,
                supervisor=supervisor,
                engine=engine,
                subscriptions=Subscriptions(store, engine),
                tokens=tokens,
                metrics=build_registry(
                    supervisor, hub, engine, lease_held=lambda: lease.held, tokens_file=watcher
                ),
                tokens_file=watcher,
            )
        finally:
            if watcher is not None:
                await watcher.close()
            await supervisor.close()
            await engine.close()
            await hub.close()
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper
            log.info("service stopped")
    finally:
        try:
            await lease.release()
        finally:
            await store.close()


async def _keep(lease: StoreLease, on_lost: Callable[[LeaseLost], None]) -> None:
    try:
        await lease.keep()
    except LeaseLost as error:
        on_lost(error)
