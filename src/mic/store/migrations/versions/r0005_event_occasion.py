"""Add `events.occasion`: sets apart the ids of events MIC sends again on its own initiative.

A snapshot or a view change sends events about unchanged objects; their `Event.occasion` (a
short nonce) joins the stable id's hash, so recipients that drop duplicate ids keep them. It
is stored so that a retry after a restart sends the same id. NULL (every existing row) is an
observed change, whose id stays what it was.

On SQLite a nullable column without a default is a plain `ALTER TABLE ... ADD COLUMN` (batch
mode does not copy the table for it), so upgrading a large outbox costs no rewrite; the
same holds on PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column(
                "occasion",
                sa.String(32),
                nullable=True,
                comment="Event.occasion; NULL for an observed change",
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # SQLite's own DROP COLUMN keeps the table. Batch mode would drop it for a copy, which
        # fails while `deliveries` refer to its rows: migrations run inside one transaction,
        # where foreign keys cannot be switched off (an older SQLite has only that way).
        op.drop_column("events", "occasion")
        return
    with op.batch_alter_table("events") as batch:
        batch.drop_column("occasion")
