"""The likely violation type of every scored dwelling of a run.

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``run_items.violation_type`` and ``violation_type_share`` (NULL for older runs)."""
    with op.batch_alter_table("run_items") as batch:
        batch.add_column(sa.Column("violation_type", sa.String(32), nullable=True))
        batch.add_column(sa.Column("violation_type_share", sa.Double(), nullable=True))


def downgrade() -> None:
    """Drop the two columns (the runs' violation types are lost)."""
    with op.batch_alter_table("run_items") as batch:
        batch.drop_column("violation_type_share")
        batch.drop_column("violation_type")
