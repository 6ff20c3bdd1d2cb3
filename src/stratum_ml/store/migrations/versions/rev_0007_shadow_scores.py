"""Shadow scores: the challenger's rank of every dwelling of a run, beside the champion's.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``run_shadow_items``."""
    op.create_table(
        "run_shadow_items",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "address_id", name="pk_run_shadow_items"),
        sa.UniqueConstraint("run_id", "rank", name="uq_run_shadow_items_run_id_rank"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["scoring_runs.run_id"], name="fk_run_shadow_items_run_id_scoring_runs"
        ),
    )


def downgrade() -> None:
    """Drop ``run_shadow_items`` (the challenger's ranks of past runs are lost)."""
    op.drop_table("run_shadow_items")
