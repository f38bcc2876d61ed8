"""How routes reach the running service: the app's lifespan puts it on `app.state`."""

from __future__ import annotations

from fastapi import HTTPException, Request

from mic.service.service import Service


def get_service(request: Request) -> Service:
    """The running service; 503 while this MIC waits as a standby for the store's lease."""
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(503, standby_message(request), headers={"Retry-After": "5"})
    return service


def standby_message(request: Request) -> str:
    # Not who the active MIC is: this answer comes before authentication (its log names it).
    if getattr(request.app.state, "standby", None) is None:
        return "MIC is starting or stopping; try again shortly"
    return (
        "this MIC is a standby: another MIC delivers for this store, and this one takes over when"
        " that one stops; send requests to the active MIC"
    )
