"""How `WebhookClient` reads odd answers of a recipient (raw HTTP from a local server).

* A 2xx whose body is over the read limit was a failed attempt: the recipient had the event,
  yet it was sent again until it became a dead letter.
* A negative Content-Length raised ValueError out of `post` (the ping API answered 500).
* `Retry-After: inf` (or 1e12) went through as is; the lane then could not store the next
  attempt's time (datetime overflow) and the object's queue stood still until a restart.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable

import pytest

from mic.delivery.sink import MAX_RETRY_AFTER, Outcome, SendResult, WebhookClient


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    running = WebhookClient()
    try:
        yield running
    finally:
        await running.close()


async def answered(
    client: WebhookClient, response: bytes, headers: dict[str, str] | None = None
) -> tuple[SendResult, int]:
    """Post once to a server that answers `response`; the result and the requests it saw."""
    seen = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        try:
            await reader.readuntil(b"\r\n\r\n")
            seen += 1
            writer.write(response)
            await writer.drain()
            await reader.read()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await client.post(f"http://127.0.0.1:{port}/hook", b"{}", headers or {}, 5.0)
    finally:
        server.close()
    return result, seen


BIG = 2 * 1024 * 1024


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG + b"x" * BIG,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % BIG + b"x" * BIG + b"\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_a_2xx_with_a_large_body_is_delivered(client: WebhookClient, response: bytes) -> None:
    result, seen = await answered(client, response)
    assert (result.outcome, result.status_code) == (Outcome.DELIVERED, 200), result.error
    assert seen == 1


async def test_a_negative_content_length_is_a_failed_attempt_not_an_exception(client: WebhookClient) -> None:
    result, _ = await answered(client, b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert "Content-Length" in result.error


@pytest.mark.parametrize("value", ["inf", "1e12", "1e400", "nan", "Wed, 21 Oct 2999 07:28:00 GMT"])
async def test_retry_after_is_finite_and_bounded(client: WebhookClient, value: str) -> None:
    response = b"HTTP/1.1 503 Busy\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n" % value.encode()
    result, _ = await answered(client, response)
    assert result.outcome is Outcome.RETRY
    check: Callable[[float], bool] = lambda s: math.isfinite(s) and 0 <= s <= MAX_RETRY_AFTER  # noqa: E731
    assert result.retry_after is None or check(result.retry_after)


async def test_a_small_retry_after_is_honoured_as_sent(client: WebhookClient) -> None:
    response = b"HTTP/1.1 429 Slow down\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
    result, _ = await answered(client, response)
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 7.0)


async def test_a_configured_user_agent_replaces_the_default_one(client: WebhookClient) -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await client.post(f"http://127.0.0.1:{port}/h", b"{}", {"User-Agent": "lb-hook/2"}, 5.0)
    finally:
        server.close()
    assert result.outcome is Outcome.DELIVERED
    agents = [line for line in heads[0].split(b"\r\n") if line.lower().startswith(b"user-agent:")]
    assert agents == [b"User-Agent: lb-hook/2"]


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding"])
async def test_a_framing_header_from_an_old_spec_is_a_failed_attempt(
    client: WebhookClient, name: str
) -> None:
    """The spec refuses them now; one stored before went out as a second Host/Content-Length."""
    result, seen = await answered(client, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {name: "1"})
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert "set by MIC itself" in result.error
    assert seen == 0


async def test_a_certificate_failure_is_not_reported_as_a_name_failure(
    client: WebhookClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssl.SSLCertVerificationError is a ValueError too: it was reported as "cannot resolve"."""
    import ssl

    from mic.delivery.http import HttpPool

    async def refuse(self: HttpPool, origin: object) -> None:
        raise ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")

    monkeypatch.setattr(HttpPool, "_connection", refuse)
    result = await client.post("https://recipient.example/hook", b"{}", {}, 5.0)
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert "cannot resolve" not in result.error
