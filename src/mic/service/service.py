"""The running service: store, hub, supervisor, delivery engine and token verifier, as one.

Start order follows the data: the store, the hub, then the delivery engine (it loads the
subscriptions and wires itself into the hub as a batch listener and as the source of known
state), and only then the supervisor's first pass, which adds the clusters: every informer's
first list must already meet the subscriptions and the ledger, or changes made while MIC was
down would be missed or re-sent. Shutdown runs the other way round; the engine closes before
the hub so no informer hands it a batch while it stops.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client.registry import CollectorRegistry

from mic.delivery.engine import DeliveryEngine
from mic.hub import Hub
from mic.service.connections import ConnectionPolicy
from mic.service.metrics import build_registry
from mic.service.settings import ServiceSettings
from mic.service.subscriptions import Subscriptions
from mic.service.supervisor import Supervisor
from mic.service.tokens import TokenVerifier, generate_admin_token_if_none
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


@asynccontextmanager
async def running_service(
    settings: ServiceSettings, *, announce: Callable[[ServiceSettings, str], None] = announce_token
) -> AsyncIterator[Service]:
    """Open the store (applying migrations), start the supervisor; close everything on exit."""
    grants = settings.token_grants()
    informer_options = settings.informer_options()
    store = await Store.open(settings.effective_database_url)
    try:
        token = await generate_admin_token_if_none(store, grants)
        if token is not None and settings.announce_generated_token:
            announce(settings, token)
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
        )
        engine = DeliveryEngine(store, hub)
        try:
            await engine.start()
            await supervisor.start()
            yield Service(
                settings=settings,
                store=store,
                hub=hub,
                supervisor=supervisor,
                engine=engine,
                subscriptions=Subscriptions(store, engine),
                tokens=TokenVerifier(store, grants),
                metrics=build_registry(supervisor, hub, engine),
            )
        finally:
            await supervisor.close()
            await engine.close()
            await hub.close()
            log.info("service stopped")
    finally:
        await store.close()
