"""Helpers for API tests: the real app (lifespan included) on a temporary SQLite file.

httpx's ASGITransport does not run the lifespan, so `run_app` enters
`app.router.lifespan_context` itself; everything else is the real stack: store, hub, supervisor
and emulated clusters over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mic.api.app import create_app
from mic.service.service import Service
from mic.service.settings import ServiceSettings
from mic.testing.emulator import KubeEmulator

ADMIN_TOKEN = "admin-token-s3cr3t-0123456789"
VIEWER_TOKEN = "viewer-token-s3cr3t-0123456789"


class Api:
    """An httpx client on the app with helpers; `service` is the running service behind it."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service

    def as_token(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            transport=self.client._transport, base_url=self.client.base_url, headers=headers
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.put(url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.patch(url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.delete(url, **kwargs)

    async def add_cluster(self, name: str, emulator: KubeEmulator, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "connection": kubeconfig_connection(emulator), **fields}
        response = await self.post("/v1/clusters", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_cluster(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Poll GET /v1/clusters/{name} until `predicate(body)` holds."""
        last: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal last
            response = await self.get(f"/v1/clusters/{name}")
            last = response.json()
            return response.status_code == 200 and predicate(last)

        await wait_until(check, timeout, lambda: f"cluster {name} never matched; last: {last}")
        return last


def kubeconfig_connection(emulator: KubeEmulator, **extra: Any) -> dict[str, Any]:
    return {"type": "kubeconfig", "kubeconfig": emulator.kubeconfig_yaml(), **extra}


async def wait_until(
    check: Callable[[], Any], timeout: float = 5.0, message: Callable[[], str] | None = None
) -> None:
    """Poll an (async) condition every 20 ms until it holds; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(message() if message else "condition not met in time")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def run_app(settings: ServiceSettings, token: str | None = ADMIN_TOKEN) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mic", headers=headers) as client:
            yield Api(app, client)
