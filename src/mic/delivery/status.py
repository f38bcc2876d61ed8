"""What the delivery engine reports about a subscription and about a test ping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubscriptionStatus:
    """Counters and health of one subscription's delivery.

    `backlog` counts events stored and not yet delivered or dead; `retrying` those of them
    that failed at least once; `oldest_undelivered_age` is in seconds. `overflowing` is true
    while the backlog is over the subscription's limit (MIC then coalesces or dead-letters,
    as the subscription says).
    """

    name: str
    delivered_total: int
    dead: int
    dead_total: int
    backlog: int
    retrying: int
    in_flight: int
    coalesced_total: int
    oldest_undelivered_age: float | None
    last_error: str | None
    last_delivered_at: float | None
    overflowing: bool
    cel_errors: int
    last_cel_error: str | None
    failed_attempts_total: int = 0
    """Requests (or batches) that failed since this MIC started, retried or not."""


@dataclass(frozen=True)
class PingResult:
    """The outcome of `POST /v1/subscriptions/{name}/test`: one signed request to the sink."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
