"""How routes reach the running service: the app's lifespan puts it on `app.state`."""

from __future__ import annotations

from fastapi import Request

from mic.service.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
