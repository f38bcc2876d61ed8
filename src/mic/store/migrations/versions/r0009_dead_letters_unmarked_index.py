"""Index the dead letters not yet superseded, by (subscription, object_key, event_seq).

An acknowledgement marks the older dead letters of its object as superseded
(`superseded_at`). With only the (subscription, state, id) index, each mark read every dead
letter of the subscription: with 250,000 of them (an outage past the backlog limit or the
maximum age turns a backlog into dead letters) one object's mark took 200 ms and a commit of
200 objects' marks held the write lock for 34 s, and each later acknowledgement of those
objects paid it again. The partial index holds only unmarked dead letters: a mark finds its
object's rows at once, marked rows leave it, and pending rows (every outbox insert) never
enter it. SQLite (3.8+) and PostgreSQL both keep partial indexes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNMARKED_DEAD = sa.text("state = 'dead' AND superseded_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_dead_unmarked",
        "deliveries",
        ["subscription", "object_key", "event_seq"],
        sqlite_where=_UNMARKED_DEAD,
        postgresql_where=_UNMARKED_DEAD,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_dead_unmarked", table_name="deliveries")
