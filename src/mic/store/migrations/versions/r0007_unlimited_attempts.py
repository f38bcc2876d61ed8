"""Stored subscriptions with `delivery.maxAttempts: 12` get no attempt limit (retried until
`maxAgeSeconds`), the new default.

Until now every subscription was stored with `maxAttempts` written out, 12 unless given, and
with it a recipient down for about four minutes had its events dead-lettered long before
`maxAgeSeconds` (an hour by default). A 12 chosen by the user cannot be told from the default
that was written for them; almost every 12 is the default, and the other ones move in the safe
direction (nothing becomes a dead letter sooner than the user's `maxAgeSeconds`). Other values
were chosen and stay.

Downgrade changes nothing: an older MIC reads `maxAttempts: null` as its default, 12.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_DEFAULT = 12

_subscriptions = sa.table("subscriptions", sa.column("name", sa.String), sa.column("spec", sa.JSON))


def upgrade() -> None:
    bind = op.get_bind()
    for name, spec in bind.execute(sa.select(_subscriptions.c.name, _subscriptions.c.spec)).all():
        changed = _without_old_default(spec)
        if changed is not None:
            bind.execute(sa.update(_subscriptions).where(_subscriptions.c.name == name).values(spec=changed))


def downgrade() -> None:
    pass


def _without_old_default(spec: Any) -> dict[str, Any] | None:
    """The spec with `delivery.maxAttempts` 12 made null; None when there is nothing to change."""
    if not isinstance(spec, dict):
        return None
    delivery = spec.get("delivery")
    if not isinstance(delivery, dict) or delivery.get("maxAttempts") != OLD_DEFAULT:
        return None
    return {**spec, "delivery": {**delivery, "maxAttempts": None}}
