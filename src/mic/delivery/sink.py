"""Sending one request to a webhook and classifying the answer.

The classification is the contract of reliable delivery: 2xx is delivered; 401, 403, 408, 429,
5xx, timeouts and connection errors are worth retrying (honouring `Retry-After`); any other
answer (400, 404, 409, 410, 413, 422, ..., and 3xx: redirects are not followed) is permanent,
because sending the same request again will get the same answer.

401 and 403 are retried because they are usually MIC's side that is wrong, for a while: the
recipient rotated its credentials or signing secret and the subscription's headers or secret
are not updated yet. Dead-lettering every event meanwhile would force a replay once the admin
fixes it; retried, the events go out by themselves then (or become dead at `maxAgeSeconds`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum

from mic.delivery.http import HttpError, HttpPool, TlsSettings
from mic.kube.client import parse_retry_after

RETRYABLE_STATUSES = frozenset({401, 403, 408, 429})
"""The 4xx answers retried (every 5xx is too); other 4xx are permanent."""
MAX_RETRY_AFTER = 86_400.0
"""The longest `Retry-After` honoured, in seconds (a day, the largest `maxBackoffSeconds`).

A recipient's header is honoured up to this: `Retry-After: 1e12` or `inf` would otherwise
schedule the next attempt past what a datetime can hold (the lane then failed to record the
attempt and the object's queue stood still until a restart), or years away.
"""


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
    """Posts to every webhook MIC delivers to, over pooled keep-alive connections.

    Redirects are not followed: a recipient that moved must be re-registered, and following
    a redirect would send signed payloads to an address nobody registered.
    """

    def __init__(self, *, user_agent: str = "mic-delivery/0.1") -> None:
        self._pool = HttpPool(user_agent=user_agent)

    async def close(self) -> None:
        await self._pool.close()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
        *,
        tls: TlsSettings | None = None,
    ) -> SendResult:
        """POST once; `tls` is the sink's TLS settings (`WebhookSink.tls`), None for the defaults.

        A certificate that fails verification, or a client certificate the recipient refuses,
        is retried like any connection error, and the error says it is a certificate problem.
        """
        started = time.monotonic()
        try:
            response = await self._pool.post(url, body, headers, timeout, tls=tls)
        except TimeoutError:
            return SendResult(Outcome.RETRY, None, f"cannot reach {url}: timed out", None, _ms(started))
        except (HttpError, OSError) as error:
            detail = str(error) or type(error).__name__
            return SendResult(Outcome.RETRY, None, f"cannot reach {url}: {detail}", None, _ms(started))
        status = response.status
        duration = _ms(started)
        outcome = classify(status)
        if outcome is Outcome.DELIVERED:
            return SendResult(Outcome.DELIVERED, status, None, None, duration)
        if outcome is Outcome.RETRY:
            retry_after = _retry_after(response.headers.get("retry-after"))
            message = f"recipient answered {status}"
            if status in (401, 403):
                message += " (check the sink's headers and signing secret; retried)"
            return SendResult(Outcome.RETRY, status, message, retry_after, duration)
        reason = "redirects are not followed" if 300 <= status < 400 else "not retried"
        return SendResult(
            Outcome.PERMANENT, status, f"recipient answered {status} ({reason})", None, duration
        )


def classify(status: int) -> Outcome:
    """What an HTTP answer with this status means for the event(s) sent (see the module doc)."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome.RETRY
    return Outcome.PERMANENT


def _retry_after(value: str | None) -> float | None:
    """The recipient's `Retry-After` in seconds, at most `MAX_RETRY_AFTER`; None if unusable."""
    seconds = parse_retry_after(value)
    if seconds is None or math.isnan(seconds):
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
