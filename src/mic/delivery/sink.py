"""Sending one request to a webhook and classifying the answer.

The classification is the contract of reliable delivery: 2xx is delivered; 408, 429, 5xx,
timeouts and connection errors are worth retrying (honouring `Retry-After`); any other answer
is permanent, because sending the same request again will get the same answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import Enum

import aiohttp

from mic.kube.client import parse_retry_after

RETRYABLE_STATUSES = frozenset({408, 429})


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status_code: int | None
    error: str | None
    retry_after: float | None
    duration_ms: float


class WebhookClient:
    """One connection pool for every webhook MIC posts to.

    Redirects are not followed: a recipient that moved must be re-registered, and following
    a redirect would send signed payloads to an address nobody registered.
    """

    def __init__(self, *, user_agent: str = "mic-delivery/0.1") -> None:
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=64),
                headers={"User-Agent": self._user_agent},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
        started = time.monotonic()
        try:
            async with self._get_session().post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            detail = (
                "timed out"
                if isinstance(error, asyncio.TimeoutError)
                else (str(error) or type(error).__name__)
            )
            return SendResult(Outcome.RETRY, None, f"cannot reach {url}: {detail}", None, _ms(started))
        duration = _ms(started)
        if 200 <= status < 300:
            return SendResult(Outcome.DELIVERED, status, None, None, duration)
        if status in RETRYABLE_STATUSES or status >= 500:
            return SendResult(Outcome.RETRY, status, f"recipient answered {status}", retry_after, duration)
        reason = "redirects are not followed" if 300 <= status < 400 else "not retried"
        return SendResult(
            Outcome.PERMANENT, status, f"recipient answered {status} ({reason})", None, duration
        )


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
