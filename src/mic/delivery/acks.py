"""`Acknowledgements`: delivered ids of every subscription, written to the store together.

With SQLite each commit is an fsync, and SQLite has one writer at a time: lanes writing their
own acknowledgements competed with the engine's outbox writes ("database is locked" with ten
subscriptions under load). Instead, lanes hand delivered ids here; the engine writes them with
its next outbox transaction, or on its own when no batch comes, under the same write lock.

Along with them goes what marks dead letters superseded (`mic.store.Superseding`): the newest
event delivered of each object that has dead letters, written in the same transaction as its
acknowledgement, so that a replay, even after a restart, never sends an older state last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Taken:
    """Acknowledgements taken to be written: `ids` per subscription, and `superseding`."""

    ids: dict[str, list[int]] = field(default_factory=dict)
    superseding: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.ids.values())


class Acknowledgements:
    """Delivered ids waiting to be removed from the outbox, per subscription."""

    def __init__(self) -> None:
        self._pending = Taken()
        self.ready = asyncio.Event()

    def add(
        self,
        subscription: str,
        ids: Sequence[int],
        superseding: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """`superseding`: (object key, uid) -> seq of the newest event delivered, for objects
        with dead letters."""
        self._pending.ids.setdefault(subscription, []).extend(ids)
        if superseding:
            _merge_newest(self._pending.superseding.setdefault(subscription, {}), superseding)
        self.ready.set()

    def take(self) -> Taken:
        """Everything pending; give it `back` if it could not be written."""
        taken, self._pending = self._pending, Taken()
        self.ready.clear()
        return taken

    def back(self, taken: Taken) -> None:
        for subscription, ids in taken.ids.items():
            self._pending.ids.setdefault(subscription, [])[:0] = ids
        for subscription, newest in taken.superseding.items():
            _merge_newest(self._pending.superseding.setdefault(subscription, {}), newest)
        if self:
            self.ready.set()

    def forget(self, subscription: str) -> None:
        """A removed subscription's rows are gone with it."""
        self._pending.ids.pop(subscription, None)
        self._pending.superseding.pop(subscription, None)

    def __bool__(self) -> bool:
        return bool(self._pending)


def _merge_newest(into: dict[tuple[str, str], int], newest: Mapping[tuple[str, str], int]) -> None:
    for key, seq in newest.items():
        if seq > into.get(key, -1):
            into[key] = seq
