"""An API server's error answer that is not a Kubernetes `Status` is described, never quoted.

The error message becomes the cluster's `status.lastError` (readable with a viewer token) and
log lines, while the server URL may point at anything that speaks HTTP (or not): its body
could hold that service's data. Real HTTP servers here, not mocks of aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from mic.api.app import create_app
from mic.kube.client import KubeClient, api_error_from
from mic.kube.direct import from_token
from mic.kube.errors import ApiError, ConnectionFailure
from mic.service.settings import ServiceSettings

SECRET = "INTERNAL-SECRET-DATA"
ADMIN_TOKEN = "admin-token-s3cr3t-0123456789"
VIEWER_TOKEN = "viewer-token-s3cr3t-0123456789"

Answer = Callable[[web.Request], web.StreamResponse]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[str]]]:
    """Start an aiohttp server answering every request with `answer`; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> str:
        async def handle(request: web.Request) -> web.StreamResponse:
            return answer(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def error_of(server: str) -> Exception:
    client = KubeClient(from_token(server, token="t0k3n"))
    try:
        await client.server_version()
    except (ApiError, ConnectionFailure) as error:
        return error
    finally:
        await client.close()
    raise AssertionError("the request succeeded")


async def test_a_plain_text_error_body_is_described_not_echoed(
    serve: Callable[[Answer], Awaitable[str]],
) -> None:
    body = f"{SECRET} path=/x"
    server = await serve(lambda request: web.Response(status=500, text=body))
    error = await error_of(server)
    assert isinstance(error, ApiError)
    assert str(error) == f"500: HTTP 500 (a non-Status body of {len(body)} bytes, content-type text/plain)"
    assert error.status == 500
    assert error.is_retryable
    assert error.body is None


async def test_json_that_is_not_a_status_is_not_echoed(serve: Callable[[Answer], Awaitable[str]]) -> None:
    payload = orjson.dumps({"error": SECRET, "message": SECRET})
    server = await serve(
        lambda request: web.Response(status=403, body=payload, content_type="application/json")
    )
    error = await error_of(server)
    assert isinstance(error, ApiError)
    assert error.is_forbidden
    assert error.message == (
        f"HTTP 403 (a non-Status body of {len(payload)} bytes, content-type application/json)"
    )


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        (f"text/html; charset=utf-8; x={SECRET}", "text/html"),
        (f"{SECRET} in a header", "unusable"),
        ("x/" + "y" * 500, "unusable"),
    ],
)
async def test_only_a_well_formed_media_type_is_named(
    serve: Callable[[Answer], Awaitable[str]], content_type: str, shown: str
) -> None:
    def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=502, body=SECRET.encode())
        response.headers["Content-Type"] = content_type
        return response

    error = await error_of(await serve(answer))
    assert isinstance(error, ApiError)
    assert SECRET not in str(error)
    assert str(error).endswith(f"bytes, content-type {shown})")


def test_a_body_without_content_type_says_so() -> None:
    # aiohttp's server always sends one, so this case is checked on the function itself.
    error = api_error_from(500, SECRET.encode(), None, None)
    assert error.message == "HTTP 500 (a non-Status body of 20 bytes, content-type missing)"


async def test_a_status_message_is_kept(serve: Callable[[Answer], Awaitable[str]]) -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": 'namespaces "x" is forbidden: User "bob" cannot list',
        "reason": "Forbidden",
        "code": 403,
    }
    server = await serve(lambda request: web.json_response(status, status=403))
    error = await error_of(server)
    assert isinstance(error, ApiError)
    assert str(error) == '403 Forbidden: namespaces "x" is forbidden: User "bob" cannot list'
    assert error.body == status


async def test_a_status_without_message_does_not_echo_the_body(
    serve: Callable[[Answer], Awaitable[str]],
) -> None:
    status = {"kind": "Status", "reason": "InternalError", "details": {"secret": SECRET}}
    server = await serve(lambda request: web.json_response(status, status=500))
    error = await error_of(server)
    assert str(error) == "500 InternalError: HTTP 500"


async def test_an_empty_error_body_names_the_status(serve: Callable[[Answer], Awaitable[str]]) -> None:
    server = await serve(lambda request: web.Response(status=404))
    assert str(await error_of(server)) == "404: HTTP 404"


async def test_a_server_that_does_not_speak_http_is_not_quoted() -> None:
    # What a server URL pointing at an SMTP or database port answers: aiohttp quotes the line.
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(f"220 smtp.internal ESMTP {SECRET}\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await error_of(f"http://127.0.0.1:{port}")
    finally:
        server.close()
        await server.wait_closed()
    assert isinstance(error, ConnectionFailure)
    assert str(error) == (
        f"cannot reach http://127.0.0.1:{port}: the answer is not valid HTTP (ClientResponseError)"
    )


async def test_viewers_read_a_described_error_in_last_error(
    serve: Callable[[Answer], Awaitable[str]], tmp_path: Path
) -> None:
    server = await serve(lambda request: web.Response(status=500, text=f"{SECRET} path={request.path}"))
    kubeconfig_dir = tmp_path / "kubeconfigs"
    kubeconfig_dir.mkdir()
    settings = ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'mic.db'}",
        kubeconfig_dir=kubeconfig_dir,
        admin_token=ADMIN_TOKEN,
        viewer_token=VIEWER_TOKEN,
        resource_sync_timeout=5.0,
        announce_generated_token=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://mic", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as admin,
            httpx.AsyncClient(
                transport=transport,
                base_url="http://mic",
                headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
            ) as viewer,
        ):
            connection = {"type": "token", "server": server, "token": "t0k3n"}
            created = await admin.post("/v1/clusters", json={"name": "leaky", "connection": connection})
            assert created.status_code == 201, created.text
            cluster: dict[str, Any] = {}
            for _ in range(250):
                cluster = (await viewer.get("/v1/clusters/leaky")).json()
                if cluster.get("status", {}).get("lastError"):
                    break
                await asyncio.sleep(0.02)
    last_error = cluster["status"]["lastError"]
    assert "HTTP 500 (a non-Status body of" in last_error, cluster
    assert "content-type text/plain" in last_error
    assert SECRET not in str(cluster)
