"""The scoring run a decision was taken on (nullable: earlier decisions have none).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``decisions.run_id``, indexed for reading a run's decisions back."""
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("run_id", sa.String(32), nullable=True))
        batch.create_index("ix_decisions_run_id", ["run_id"])


def downgrade() -> None:
    """Drop ``decisions.run_id`` (which run a decision was taken on is lost)."""
    with op.batch_alter_table("decisions") as batch:
        batch.drop_index("ix_decisions_run_id")
        batch.drop_column("run_id")
