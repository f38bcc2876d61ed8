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
from fastapi.responses import HTMLResponse

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
admin token (write) or viewer token (read only); this page keeps it only until it is
reloaded. Credentials submitted with a cluster, and a subscription's sink headers and signing
secret, are write-only: no response ever contains them. Viewers see the query values of sink
URLs masked.

The original MIC's routes (`/cic/nitro/v1/...`) are kept for its users and need the same
bearer token (the original had none).
"""

SWAGGER_UI_VERSION = "5.35.0"
"""The swagger-ui-dist release the Swagger UI page loads, pinned so the integrity hashes hold."""
_SWAGGER_UI_CDN = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
SWAGGER_UI_JS = (
    f"{_SWAGGER_UI_CDN}/swagger-ui-bundle.js",
    "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
)
SWAGGER_UI_CSS = (
    f"{_SWAGGER_UI_CDN}/swagger-ui.css",
    "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
)
"""(URL, Subresource Integrity) of the page's script and style sheet: the SHA-384 of the files in
the npm registry's tarball of that release (its own sha512 checked), which the CDN serves
unchanged; a browser refuses a file whose bytes differ. To upgrade, change the version and
recompute both: `npm pack swagger-ui-dist@VERSION`, then for each file
`openssl dgst -sha384 -binary FILE | openssl base64 -A`."""

SWAGGER_UI_PAGE = f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="referrer" content="no-referrer">
<link type="text/css" rel="stylesheet" href="{SWAGGER_UI_CSS[0]}"
 integrity="{SWAGGER_UI_CSS[1]}" crossorigin="anonymous">
<link rel="icon" type="image/png" href="{_SWAGGER_UI_CDN}/favicon-32x32.png">
<title>MIC - Swagger UI</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_UI_JS[0]}" integrity="{SWAGGER_UI_JS[1]}" crossorigin="anonymous"></script>
<script>
SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}})
</script>
</body>
</html>
"""
"""The Swagger UI page at `/swagger/`, rendered here rather than by FastAPI, whose page loads
`swagger-ui-dist@5` (whatever release that is today) without integrity checks. Authorization
is deliberately not persisted: with `persistAuthorization` Swagger UI keeps the pasted token
in the browser's localStorage, where it outlives the tab and any script on the origin reads
it. Reloading the page asks for the token again."""


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
        for warning in settings.weak_token_warnings():
            log.warning("%s", warning)
        async with serving_in_background(settings, app.state):
            yield

    app = FastAPI(
        title="MIC",
        version=mic.__version__,
        description=DESCRIPTION,
        docs_url=None,  # served below: a pinned release with integrity checks
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.get("/swagger/", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(SWAGGER_UI_PAGE)

    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(clusters.router, dependencies=[Depends(authorize)])
    app.include_router(resources.router, dependencies=[Depends(authorize)])
    app.include_router(subscriptions.router, dependencies=[Depends(authorize)])
    app.include_router(events.router, dependencies=[Depends(authorize)])
    app.include_router(original.router, dependencies=[Depends(authorize)])
    return app
