"""Turn every error a user can cause into a 4xx with `{"detail": "<what to fix>"}`.

Validation errors are flattened into one readable sentence per problem and never echo the
submitted values: pydantic's default error list includes each offending input, which for a
connection would be its token or kubeconfig. Anything unexpected is logged and answered with
a 500 that says nothing about internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mic.delivery.engine import FarewellUnavailableError, UnknownSubscriptionError
from mic.hub import DuplicateClusterError, NotWatchedError, UnknownClusterError
from mic.kube.errors import (
    AmbiguousResourceError,
    ApiError,
    ConfigError,
    ConnectionFailure,
    KubeError,
    UnknownResourceError,
)
from mic.kube.selectors import InvalidSelectorError
from mic.routing.expression import InvalidExpressionError
from mic.routing.spec import InvalidSubscriptionError
from mic.service.settings import SettingsError
from mic.service.supervisor import CacheNotReadyError, ClusterUnavailableError
from mic.store import AlreadyExistsError, ConflictError, NotFoundError, StoreUnavailableError

log = logging.getLogger(__name__)

# Starlette picks the handler of the most specific class in the error's MRO, so the KubeError
# fallback only catches kube errors without an entry of their own.
STATUS_BY_ERROR: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (UnknownClusterError, 404),
    (UnknownResourceError, 404),
    (UnknownSubscriptionError, 404),
    (AlreadyExistsError, 409),
    (DuplicateClusterError, 409),
    (ConflictError, 409),
    (FarewellUnavailableError, 409),
    (ConfigError, 422),
    (AmbiguousResourceError, 422),
    (InvalidSelectorError, 422),
    (SettingsError, 422),
    (InvalidSubscriptionError, 422),
    (InvalidExpressionError, 422),
    (ClusterUnavailableError, 502),
    (ConnectionFailure, 502),
    (ApiError, 502),
    (KubeError, 502),
    (StoreUnavailableError, 503),
    (NotWatchedError, 503),
    (CacheNotReadyError, 504),
]


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def describe_validation_errors(errors: Any) -> str:
    """`body.connection.server: Field required; query.limit: ...` without the inputs."""
    parts = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if len(loc) > 1 and loc[0] == "body":
            loc = loc[1:]
        location = ".".join(loc)
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "value_error":
            # Our own validators' messages are sentences already; pydantic's prefix adds nothing.
            message = message.removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            message = f"request body is not valid JSON: {reason} at character {location}"
            location = ""
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return error_response(422, describe_validation_errors(error.errors()))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    def mapped(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(request: Request, error: Exception) -> JSONResponse:
            return error_response(status, str(error))

        return handler

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, type(error).__name__, exc_info=error)
        return error_response(500, "internal error; see the MIC log")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for error_type, status in STATUS_BY_ERROR:
        app.add_exception_handler(error_type, mapped(status))
    app.add_exception_handler(Exception, on_unexpected)


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before any route reads them.

    Reads the body up front (bounded) and replays it, so a body without Content-Length (chunked)
    is limited too and a route never sees a truncated body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # DELETE is limited too: the original API's DELETE takes a body, read before any token
        # check, so an unlimited one would let anyone fill the memory.
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"request body is larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
