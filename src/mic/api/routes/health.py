"""Probes and metrics: no token needed, so orchestrators and scrapers can reach them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mic.api.dependencies import get_service
from mic.api.models import HealthBody
from mic.service.service import Service

router = APIRouter(tags=["health"])

ServiceDep = Annotated[Service, Depends(get_service)]


@router.get("/healthz", summary="Process is alive", response_model=HealthBody)
async def healthz() -> HealthBody:
    return HealthBody(status="ok")


@router.get(
    "/readyz",
    summary="Store reachable and supervisor has completed its first pass",
    response_model=HealthBody,
    responses={503: {"model": HealthBody, "description": "not ready yet, or the store does not answer"}},
)
async def readyz(service: ServiceDep) -> Response:
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
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics), media_type=CONTENT_TYPE_LATEST)
