"""Drop the deliveries index on (subscription, object_key, id): coalescing now deletes rows by id.

Every outbox insert paid for keeping it up to date; nothing reads it any more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_subscription_object_key_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_subscription_object_key_id",
        "deliveries",
        ["subscription", "object_key", "id"],
        unique=False,
    )
