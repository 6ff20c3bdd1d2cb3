"""Notifications: subscriptions and the transactional outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``notify_subscriptions`` and ``notify_outbox``, both empty."""
    op.create_table(
        "notify_subscriptions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("neighbourhood", sa.String(64), nullable=True),
        sa.Column("violation_type", sa.String(64), nullable=True),
        sa.Column("secret", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_notify_subscriptions"),
        sa.UniqueConstraint("subscription_id", name="uq_notify_subscriptions_subscription_id"),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook')", name="ck_notify_subscriptions_channel"
        ),
        sa.CheckConstraint("role IN ('analyst', 'admin')", name="ck_notify_subscriptions_role"),
        sa.CheckConstraint(
            "channel = 'email' OR secret IS NOT NULL",
            name="ck_notify_subscriptions_webhook_has_secret",
        ),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("message_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_notify_outbox"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["notify_subscriptions.subscription_id"],
            name="fk_notify_outbox_subscription_id_notify_subscriptions",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["scoring_runs.run_id"], name="fk_notify_outbox_run_id_scoring_runs"
        ),
        sa.UniqueConstraint(
            "subscription_id", "run_id", "kind", name="uq_notify_outbox_subscription_id_run_id_kind"
        ),
        sa.CheckConstraint("kind IN ('changes', 'drift')", name="ck_notify_outbox_kind"),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name="ck_notify_outbox_state"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_notify_outbox_attempts"),
    )
    op.create_index(
        "ix_notify_outbox_state_next_attempt_at", "notify_outbox", ["state", "next_attempt_at"]
    )


def downgrade() -> None:
    """Drop the outbox and the subscriptions (undelivered messages are lost)."""
    op.drop_index("ix_notify_outbox_state_next_attempt_at", table_name="notify_outbox")
    op.drop_table("notify_outbox")
    op.drop_table("notify_subscriptions")
