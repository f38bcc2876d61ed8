"""`WebhookRecipient`: a real HTTP webhook receiver for tests of delivery (MIC's and yours).

It records every request, answers with the status it is told (to play a recipient that is
down or rejects), and can wait until what arrived satisfies a condition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class WebhookRecipient:
    """An aiohttp server on 127.0.0.1.

    `status` is what it answers (200 by default); set it to 503 to play a recipient that is
    down, or to a callable deciding per request. Only 2xx answers are recorded in `accepted`;
    every request is in `requests`. `delay` (seconds, or a callable deciding per request) holds
    a request before it is recorded and answered: a slow recipient, or one whose requests
    overtake each other.
    """

    status: int | Callable[[Received], int] = 200
    delay: float | Callable[[Received], float] = 0.0
    retry_after: str | None = None
    requests: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> WebhookRecipient:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookRecipient:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(dict(request.headers), await request.read())
        delay = self.delay(received) if callable(self.delay) else self.delay
        if delay > 0:
            await asyncio.sleep(delay)
        status = self.status(received) if callable(self.status) else self.status
        async with self._changed:
            self.requests.append(received)
            if 200 <= status < 300:
                self.accepted.append(received)
            self._changed.notify_all()
        headers = {"Retry-After": self.retry_after} if self.retry_after and status >= 400 else None
        return web.Response(status=status, headers=headers)

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.accepted))

    def events(self) -> list[dict[str, Any]]:
        """Every accepted CloudEvent (batches flattened), in arrival order."""
        found: list[dict[str, Any]] = []
        for received in self.accepted:
            data = received.json
            found.extend(data if isinstance(data, list) else [data])
        return found

    async def wait_events(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0
    ) -> None:
        await self.wait_for(lambda _: predicate(self.events()), timeout)
