"""Durable delivery: subscriptions, ledger, the outbox (events + deliveries), subscription stats (issue 4).

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _row_id() -> sa.types.TypeEngine[int]:
    # INTEGER PRIMARY KEY on SQLite is the rowid itself; see mic.store.schema.RowId.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column(
            "spec",
            sa.JSON(),
            nullable=False,
            comment="SECRET: holds the sink's headers and signing secret; never return or log it",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "generation",
            sa.BigInteger(),
            nullable=False,
            comment="from sequences 'subscriptions'; never reused",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subscriptions")),
    )
    op.create_table(
        "ledger",
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column(
            "scope",
            sa.Text(),
            nullable=False,
            comment="InformerKey.scope: group/resource|namespaces|selector",
        ),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False, comment="'' for cluster-scoped objects"),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("resource_version", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster"], ["clusters.name"], name=op.f("fk_ledger_cluster_clusters"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cluster", "scope", "uid", name=op.f("pk_ledger")),
    )
    op.create_table(
        "events",
        sa.Column("seq", _row_id(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("group", sa.String(253), nullable=False),
        sa.Column("version", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(253), nullable=False),
        sa.Column("resource", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=True),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("resource_version", sa.String(128), nullable=False),
        sa.Column("observed_at", sa.Float(), nullable=False, comment="seconds since the epoch"),
        sa.Column("object", sa.Text(), nullable=False, comment="the object after the change, JSON text"),
        sa.Column("old_object", sa.Text(), nullable=True, comment="the object before the change, JSON text"),
        sa.CheckConstraint("type IN ('ADDED', 'MODIFIED', 'DELETED')", name=op.f("ck_events_type")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", _row_id(), autoincrement=False, nullable=False),
        sa.Column("subscription", sa.String(63), nullable=False),
        sa.Column("event_seq", _row_id(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False, comment="per-object ordering and coalescing key"),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'dead')", name=op.f("ck_deliveries_state")),
        sa.ForeignKeyConstraint(
            ["subscription"],
            ["subscriptions.name"],
            name=op.f("fk_deliveries_subscription_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["event_seq"], ["events.seq"], name=op.f("fk_deliveries_event_seq_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(
        "ix_deliveries_subscription_state_id", "deliveries", ["subscription", "state", "id"], unique=False
    )
    op.create_index(
        "ix_deliveries_subscription_object_key_id",
        "deliveries",
        ["subscription", "object_key", "id"],
        unique=False,
    )
    op.create_index("ix_deliveries_event_seq", "deliveries", ["event_seq"], unique=False)
    op.create_table(
        "subscription_stats",
        sa.Column("subscription", sa.String(63), nullable=False),
        sa.Column("delivered_total", sa.BigInteger(), nullable=False),
        sa.Column("dead_total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription"],
            ["subscriptions.name"],
            name=op.f("fk_subscription_stats_subscription_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription", name=op.f("pk_subscription_stats")),
    )
    sequences = sa.table("sequences", sa.column("name", sa.String()), sa.column("value", sa.BigInteger()))
    op.bulk_insert(
        sequences,
        [
            {"name": "subscriptions", "value": 0},
            {"name": "outbox", "value": 0},
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM sequences WHERE name IN ('subscriptions', 'outbox')")
    op.drop_table("subscription_stats")
    op.drop_index("ix_deliveries_event_seq", table_name="deliveries")
    op.drop_index("ix_deliveries_subscription_object_key_id", table_name="deliveries")
    op.drop_index("ix_deliveries_subscription_state_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("events")
    op.drop_table("ledger")
    op.drop_table("subscriptions")
