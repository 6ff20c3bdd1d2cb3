"""A decision taken while the model is paused stores no probability.

While the kill switch is on, no model output is shown, so an analyst deciding
sees the fallback ranking only: ``decisions.probability_at_decision`` becomes
nullable (null: taken while paused; ``rank_at_decision`` is then the fallback
ranking's rank).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Allow a null ``decisions.probability_at_decision``."""
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("probability_at_decision", existing_type=sa.Double(), nullable=True)


def downgrade() -> None:
    """Make ``probability_at_decision`` required again (refused while a row holds a null)."""
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("probability_at_decision", existing_type=sa.Double(), nullable=False)
