"""Injected request failures, latency and pauses, applied before a request is served.

Watch-stream faults (drop, end, stall) live on the open watches themselves (see watch.py);
this module covers what happens to a request on its way in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from mic.testing.emulator.errors import StatusError, injected


@dataclass
class FailureRule:
    """Answer the next `remaining` matching requests with `status` (and Retry-After)."""

    status: int
    remaining: int
    retry_after: float | None = None
    path_contains: str | None = None
    verbs: frozenset[str] | None = None

    def matches(self, verb: str, path_qs: str) -> bool:
        if self.verbs is not None and verb not in self.verbs:
            return False
        return self.path_contains is None or self.path_contains in path_qs


class FaultPlan:
    """The faults currently armed on one emulator."""

    def __init__(self) -> None:
        self.rules: list[FailureRule] = []
        self.latency = 0.0
        self.failed = 0  # how many requests have been failed on purpose, for assertions
        self._running = asyncio.Event()
        self._running.set()

    def fail(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        path_contains: str | None = None,
        verbs: Iterable[str] | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"fail_requests needs an error status (4xx/5xx), not {status}")
        self.rules.append(
            FailureRule(
                status, count, retry_after, path_contains, None if verbs is None else frozenset(verbs)
            )
        )

    def take(self, verb: str, path_qs: str) -> StatusError | None:
        """The failure this request must get, consuming one use of the first matching rule."""
        for rule in self.rules:
            if rule.remaining > 0 and rule.matches(verb, path_qs):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                self.failed += 1
                return injected(rule.status, rule.retry_after)
        return None

    def clear(self) -> None:
        self.rules.clear()
        self.latency = 0.0
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def gate(self) -> None:
        """Hold a request while paused, then apply the configured latency."""
        await self._running.wait()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
