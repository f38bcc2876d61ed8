"""Exponential backoff with full jitter, as client-go's wait.Backoff spreads retries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from `initial` up to `maximum`, each drawn with jitter.

    Jitter keeps many informers that failed together (a cluster restart) from retrying in
    lock step. `reset()` after a success starts the next failure series at `initial` again.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    _current: float = field(default=0.0, init=False)

    def next_delay(self) -> float:
        """The delay to wait before the next attempt."""
        self._current = (
            self.initial if self._current == 0.0 else min(self._current * self.factor, self.maximum)
        )
        spread = self._current * self.jitter
        return max(0.0, self._current - spread + random.random() * 2 * spread)

    def reset(self) -> None:
        self._current = 0.0

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed (a delay was handed out since the last reset)."""
        return self._current != 0.0
