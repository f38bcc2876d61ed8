"""Add `subscription_stats.last_delivered_at`: when a delivery of the subscription was last
acknowledged.

It lived in the lane's memory only, so a subscription's status showed no last delivery after
every restart or takeover, and an operator could not tell a recipient that had heard nothing
for an hour from a MIC that had just started. It is written with the acknowledgement (the same
UPDATE that adds to `delivered_total`). NULL: nothing delivered since this version.

A nullable column without a default is a plain `ALTER TABLE ... ADD COLUMN` on SQLite and on
PostgreSQL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription_stats") as batch:
        batch.add_column(
            sa.Column(
                "last_delivered_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="when a delivery of the subscription was last acknowledged",
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # As in 0005: SQLite's own DROP COLUMN keeps the table (batch mode would copy it).
        op.drop_column("subscription_stats", "last_delivered_at")
        return
    with op.batch_alter_table("subscription_stats") as batch:
        batch.drop_column("last_delivered_at")
