"""Subscription writes: the store first, then the delivery engine.

The same rule as for clusters (see `mic.service.supervisor`): the store is the truth and the
engine is what runs, so every write is committed before the engine hears of it. A write that
fails in the store leaves the engine untouched. An engine that fails to take a stored change
into use is logged, and the write still succeeds: the store holds what the user asked for, the
engine loads it at its next start, and until then the subscription's status says it is not
running (a 500 would tell the user the write failed when it did not).

Specs are validated here, through `SubscriptionSpec.from_json`, so the API, the original
`/cic/nitro/v1` routes and any embedder share one definition of a valid subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mic.delivery.engine import DeliveryEngine
from mic.routing.spec import SubscriptionSpec
from mic.store import Store, SubscriptionRecord

log = logging.getLogger(__name__)


class Subscriptions:
    """Create, replace and delete subscriptions: validate, store, then tell the engine."""

    def __init__(self, store: Store, engine: DeliveryEngine) -> None:
        self.store = store
        self.engine = engine

    @staticmethod
    def validate(spec: Mapping[str, Any]) -> SubscriptionSpec:
        """The spec as the engine will run it; raises InvalidSubscriptionError saying what to fix."""
        return SubscriptionSpec.from_json(dict(spec))

    async def create(self, spec: SubscriptionSpec) -> SubscriptionRecord:
        """Store a new subscription and start delivering it. Raises AlreadyExistsError."""
        stored = await self.store.create_subscription(SubscriptionRecord(name=spec.name, spec=spec.to_json()))
        await self._apply(stored)
        log.info("subscription %s: created (generation %d)", stored.name, stored.generation)
        return stored

    async def replace(
        self, spec: SubscriptionSpec, *, expected_generation: int | None = None
    ) -> SubscriptionRecord:
        """Store the new spec and have the engine pick it up. Raises NotFoundError, ConflictError."""
        stored = await self.store.replace_subscription(
            SubscriptionRecord(name=spec.name, spec=spec.to_json()), expected_generation=expected_generation
        )
        await self._apply(stored)
        log.info("subscription %s: replaced (generation %d)", stored.name, stored.generation)
        return stored

    async def delete(self, name: str) -> None:
        """Delete from the store (its outbox and dead letters go with it), then stop it."""
        await self.store.delete_subscription(name)
        try:
            await self.engine.remove(name)
        except Exception:
            log.exception("subscription %s: deleted from the store, but the engine failed to stop it", name)
        log.info("subscription %s: deleted", name)

    async def _apply(self, record: SubscriptionRecord) -> None:
        try:
            await self.engine.apply(record)
        except Exception:
            log.exception(
                "subscription %s: stored (generation %d), but the engine failed to start it; "
                "it will be loaded at the next start",
                record.name,
                record.generation,
            )
