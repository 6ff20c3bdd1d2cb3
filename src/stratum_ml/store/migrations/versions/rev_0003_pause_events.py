"""The kill switch: every pause and resume of the model.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``pause_events``; an empty table means the model is not paused."""
    op.create_table(
        "pause_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("follows", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("key_name", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_pause_events"),
        sa.UniqueConstraint("follows", name="uq_pause_events_follows"),
        sa.CheckConstraint("action IN ('pause', 'resume')", name="ck_pause_events_action"),
        sa.CheckConstraint("channel IN ('cli', 'api')", name="ck_pause_events_channel"),
        sa.CheckConstraint(
            "action = 'resume' OR reason IS NOT NULL", name="ck_pause_events_pause_has_reason"
        ),
        sa.CheckConstraint("follows >= 0", name="ck_pause_events_follows"),
    )


def downgrade() -> None:
    """Drop ``pause_events`` (the switch's history is lost; the model is no longer paused)."""
    op.drop_table("pause_events")
