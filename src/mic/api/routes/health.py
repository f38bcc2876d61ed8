"""Probes and metrics: no token needed, so orchestrators and scrapers can reach them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mic.api.models import HealthBody
from mic.service.service import Service

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Process is alive", response_model=HealthBody)
async def healthz() -> HealthBody:
    return HealthBody(status="ok")


@router.get(
    "/readyz",
    summary="Store reachable and supervisor has completed its first pass",
    response_model=HealthBody,
    responses={
        503: {
            "model": HealthBody,
            "description": "not ready yet, the store does not answer, or `standby`: another MIC holds"
            " the store's delivery lease and this one waits to take over",
        }
    },
)
async def readyz(request: Request) -> Response:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        status = "standby" if getattr(request.app.state, "standby", None) else "not ready"
        return JSONResponse({"status": status}, status_code=503)
    if await service.ready():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "not ready"}, status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Clusters by state (`mic_clusters`), informer objects and sync state, events observed.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": 'mic_clusters{state="ready"} 2.0\n'}}}},
)
async def metrics(request: Request) -> Response:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:  # a standby (or not started yet): it holds no lease and watches nothing
        return Response(_STANDBY_METRICS, media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(service.metrics), media_type=CONTENT_TYPE_LATEST)


_STANDBY_METRICS = (
    b"# HELP mic_delivery_lease_held Whether this MIC holds the store's delivery lease (1) or waits (0)\n"
    b"# TYPE mic_delivery_lease_held gauge\nmic_delivery_lease_held 0.0\n"
)
