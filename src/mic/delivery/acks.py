"""`Acknowledgements`: delivered ids of every subscription, written to the store together.

With SQLite each commit is an fsync, and SQLite has one writer at a time: lanes writing their
own acknowledgements competed with the engine's outbox writes ("database is locked" with ten
subscriptions under load). Instead, lanes hand delivered ids here; the engine writes them with
its next outbox transaction, or on its own when no batch comes, under the same write lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class Acknowledgements:
    """Delivered ids waiting to be removed from the outbox, per subscription."""

    def __init__(self) -> None:
        self._pending: dict[str, list[int]] = {}
        self.ready = asyncio.Event()

    def add(self, subscription: str, ids: Sequence[int]) -> None:
        self._pending.setdefault(subscription, []).extend(ids)
        self.ready.set()

    def take(self) -> dict[str, list[int]]:
        """Everything pending; give it `back` if it could not be written."""
        taken, self._pending = self._pending, {}
        self.ready.clear()
        return taken

    def back(self, taken: dict[str, list[int]]) -> None:
        for subscription, ids in taken.items():
            self._pending.setdefault(subscription, [])[:0] = ids
        if self._pending:
            self.ready.set()

    def forget(self, subscription: str) -> None:
        """A removed subscription's rows are gone with it."""
        self._pending.pop(subscription, None)

    def __bool__(self) -> bool:
        return any(self._pending.values())
