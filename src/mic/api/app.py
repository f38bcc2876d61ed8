"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

import mic


def create_app() -> FastAPI:
    """Build the application; the service issue grows this into the full `/v1` API."""
    app = FastAPI(title="MIC", version=mic.__version__, docs_url="/swagger/", redoc_url=None)

    @app.get("/healthz", summary="Process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
