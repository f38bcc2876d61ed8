"""The FastAPI application: `/v1` API, probes, metrics and Swagger UI at `/swagger/`.

`create_app(settings)` builds an app whose lifespan opens the store, starts the supervisor
and closes both on shutdown, so tests make one per temporary SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import Depends, FastAPI

import mic
from mic.api.auth import authorize
from mic.api.errors import BodyLimitMiddleware, install_error_handlers
from mic.api.routes import clusters, events, health, original, resources, subscriptions
from mic.service.service import Service, running_service
from mic.service.settings import ServiceSettings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Watch Kubernetes resources in many clusters from one place.

Every `/v1` route needs `Authorization: Bearer <token>`: click **Authorize** and paste an
admin token (write) or viewer token (read only). Credentials submitted with a cluster, and a
subscription's sink headers and signing secret, are write-only: no response ever contains them.

The original MIC's routes (`/cic/nitro/v1/...`) are kept for its users and need the same
bearer token (the original had none).
"""


@asynccontextmanager
async def serving_in_background(settings: ServiceSettings, state: Any) -> AsyncIterator[None]:
    """Run the service while the block runs, publishing it as `state.service` once it runs.

    Returns as soon as the service runs, or as soon as it waits for the store's delivery lease
    as a standby (`state.standby` then names the MIC it waits for, and the API answers 503 while
    `/healthz` stays 200, so an orchestrator neither routes to it nor restarts it). A failure
    before either raises here, so `mic serve` fails to start with the reason; one after (the
    start that follows a standby) ends the process, as a lost lease does.
    """
    settled = asyncio.Event()
    stop = asyncio.Event()

    def on_standby(holder: str) -> None:
        state.standby = holder
        settled.set()

    async def run() -> None:
        async with running_service(settings, on_standby=on_standby) as service:
            state.service, state.standby = service, None
            settled.set()
            try:
                await stop.wait()
            finally:
                del state.service

    runner = asyncio.create_task(run(), name="mic-service")
    waiting = asyncio.create_task(settled.wait())
    await asyncio.wait({runner, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if runner.done():
        runner.result()  # the start failed: raise its error
    runner.add_done_callback(lambda task: _end_process_if_failed(task, stop))
    try:
        yield
    finally:
        stop.set()
        if not isinstance(getattr(state, "service", None), Service):
            runner.cancel()  # still a standby: stop waiting
        with suppress(asyncio.CancelledError):
            await runner


def _end_process_if_failed(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    if task.cancelled() or task.exception() is None or stop.is_set():
        return
    log.critical("MIC could not start after waiting as a standby: %s", task.exception())
    os._exit(1)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the application for `settings` (defaults: `ServiceSettings()`)."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.standby = None
        async with serving_in_background(settings, app.state):
            yield

    app = FastAPI(
        title="MIC",
        version=mic.__version__,
        description=DESCRIPTION,
        docs_url="/swagger/",
        redoc_url=None,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(clusters.router, dependencies=[Depends(authorize)])
    app.include_router(resources.router, dependencies=[Depends(authorize)])
    app.include_router(subscriptions.router, dependencies=[Depends(authorize)])
    app.include_router(events.router, dependencies=[Depends(authorize)])
    app.include_router(original.router, dependencies=[Depends(authorize)])
    return app
