"""The FastAPI application: `/v1` API, probes, metrics and Swagger UI at `/swagger/`.

`create_app(settings)` builds an app whose lifespan opens the store, starts the supervisor
and closes both on shutdown, so tests make one per temporary SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import mic
from mic.api.auth import authorize
from mic.api.errors import BodyLimitMiddleware, install_error_handlers
from mic.api.routes import clusters, events, health, original, resources, subscriptions
from mic.service.service import running_service
from mic.service.settings import ServiceSettings

DESCRIPTION = """\
Watch Kubernetes resources in many clusters from one place.

Every `/v1` route needs `Authorization: Bearer <token>`: click **Authorize** and paste an
admin token (write) or viewer token (read only). Credentials submitted with a cluster, and a
subscription's sink headers and signing secret, are write-only: no response ever contains them.

The original MIC's routes (`/cic/nitro/v1/...`) are kept for its users and need the same
bearer token (the original had none).
"""


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the application for `settings` (defaults: `ServiceSettings()`)."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_service(settings) as service:
            app.state.service = service
            try:
                yield
            finally:
                del app.state.service

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
