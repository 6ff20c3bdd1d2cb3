"""API key lock-out: wrong secrets, lock-outs and unlocks per key id.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``key_lockout_events``, empty."""
    op.create_table(
        "key_lockout_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_key_lockout_events"),
        sa.CheckConstraint(
            "event IN ('wrong_secret', 'locked', 'unlocked')",
            name="ck_key_lockout_events_event",
        ),
    )
    op.create_index("ix_key_lockout_events_key_id_seq", "key_lockout_events", ["key_id", "seq"])


def downgrade() -> None:
    """Drop ``key_lockout_events``."""
    op.drop_index("ix_key_lockout_events_key_id_seq", table_name="key_lockout_events")
    op.drop_table("key_lockout_events")
