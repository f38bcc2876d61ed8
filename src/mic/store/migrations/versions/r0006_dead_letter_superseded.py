"""Add `deliveries.superseded_at`: when a newer event of a dead letter's object was delivered.

A replayed dead letter joins the end of its subscription's queue. If its object got a newer
state since, sending it would leave the recipient with a state that is gone. Lanes remember
that in memory only; a replay after a restart sent it. The mark is now written with the
acknowledgement of the newer event (the same transaction), and `Store.replay` drops marked
dead letters instead of queueing them. NULL (every existing row) is not known to be superseded.

A nullable column without a default is a plain `ALTER TABLE ... ADD COLUMN` on SQLite and on
PostgreSQL: upgrading a large outbox rewrites nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column(
                "superseded_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="a dead letter's object got a newer event delivered since, at this time",
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # As in 0005: SQLite's own DROP COLUMN keeps the table (batch mode would copy it).
        op.drop_column("deliveries", "superseded_at")
        return
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("superseded_at")
