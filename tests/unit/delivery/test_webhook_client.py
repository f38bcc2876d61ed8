"""`WebhookClient`: a request that cannot be built or read is a failed attempt, never an exception.

A sender that gets an exception instead of a `SendResult` stops, and its objects stay in flight;
the ping API answers 500. These are the requests that used to raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mic.delivery.sink import Outcome, SendResult, WebhookClient
from mic.testing.recipient import WebhookRecipient


@pytest.fixture
async def recipient() -> AsyncIterator[WebhookRecipient]:
    async with WebhookRecipient() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    running = WebhookClient()
    try:
        yield running
    finally:
        await running.close()


async def post(client: WebhookClient, url: str, headers: dict[str, str] | None = None) -> SendResult:
    return await client.post(url, b"{}", headers or {}, timeout=5.0)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"X-Team": "caf\u20ac"}, "header 'X-Team' has a line break, another control character or non-ASCII"),
        ({"X-Team": "caf\u00e9"}, "header 'X-Team'"),  # Latin-1: it used to go out as a raw byte
        ({"X-A": "a\r\nX-Injected: 1"}, "header 'X-A'"),
        ({"Bad Name": "x"}, "header name 'Bad Name' is not an HTTP token"),
    ],
)
async def test_a_header_that_cannot_be_sent_is_a_failed_attempt(
    client: WebhookClient, recipient: WebhookRecipient, headers: dict[str, str], words: str
) -> None:
    result = await post(client, recipient.url, headers)
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert result.error is not None
    assert words in result.error
    assert "caf" not in result.error, "the error must not show the value (often a credential)"
    assert recipient.requests == []
    assert (await post(client, recipient.url)).outcome is Outcome.DELIVERED  # the pool still works


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:{port}/h\u20ac", "is not ASCII"),
        ("http://127.0.0.1:{port}/h\u00e9", "is not ASCII"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://a..b/hook", "cannot resolve 'a..b'"),  # IDNA refuses the empty label: no lookup
    ],
)
async def test_a_url_that_cannot_be_sent_is_a_failed_attempt(
    client: WebhookClient, recipient: WebhookRecipient, url: str, words: str
) -> None:
    port = recipient.url.split(":")[2].split("/")[0]
    result = await post(client, url.format(port=port))
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert words in result.error
    assert recipient.requests == []


async def test_an_endless_chunk_size_line_is_a_failed_attempt(client: WebhookClient) -> None:
    """A chunk-size line longer than the read limit raised LimitOverrunError (not an OSError)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 100_000)
        await writer.drain()
        await reader.read()  # until the client gives up on the connection
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await post(client, f"http://127.0.0.1:{port}/hook")
    finally:
        server.close()
        await server.wait_closed()
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert result.error.startswith(f"cannot reach http://127.0.0.1:{port}/hook: ")
