"""A real HTTP webhook recipient for API tests: an aiohttp server on 127.0.0.1 that records requests.

`status` is what it answers next (change it mid-test to simulate a recipient that refuses and
then accepts); every request is kept with its headers and decoded body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Recipient:
    url: str = ""
    status: int = 200
    received: list[Received] = field(default_factory=list)

    def bodies(self, type_: str | None = None) -> list[Any]:
        """Decoded bodies, optionally only CloudEvents of one `type`."""
        bodies = [r.body for r in self.received]
        return [b for b in bodies if type_ is None or (isinstance(b, dict) and b.get("type") == type_)]


@asynccontextmanager
async def serving_recipient() -> AsyncIterator[Recipient]:
    recipient = Recipient()

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        recipient.received.append(Received(request.path, dict(request.headers), raw))
        return web.Response(status=recipient.status, text="ok" if recipient.status < 300 else "refused")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recipient.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield recipient
    finally:
        await runner.cleanup()
