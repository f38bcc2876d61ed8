"""Bearer-token authentication with two roles: `admin` may do anything, `viewer` may only read.

Declared through FastAPI's `HTTPBearer` so the OpenAPI document carries the security scheme
and Swagger UI's Authorize button sends the token.

Failed attempts are not slowed down, on purpose: configured tokens have at least 16 characters
(`mic.service.settings.MIN_TOKEN_LENGTH`; generated ones 43 random), which no online guessing
gets through, and a per-client delay would keep state per address, be sidestepped by spreading
attempts over connections or addresses, and slow down every client behind a shared proxy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mic.api.dependencies import get_service
from mic.service.service import Service
from mic.service.tokens import Principal

bearer = HTTPBearer(
    auto_error=False,
    description=(
        "An API token: `MIC_ADMIN_TOKEN`, `MIC_VIEWER_TOKEN`, the tokens file, "
        "or the one printed at first start"
    ),
)

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    service: Annotated[Service, Depends(get_service)],
) -> Principal:
    """401 without a valid token; 403 when a viewer tries to change something."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    principal = await service.tokens.verify(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "invalid bearer token", headers=_CHALLENGE)
    if request.method not in _READ_METHODS and not principal.can_write:
        raise HTTPException(
            403, f"token {principal.name!r} has role {principal.role}; this needs an admin token"
        )
    return principal
