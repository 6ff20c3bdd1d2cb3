"""Visit plans with a challenger stratum: the challenger's top picks, drawn by design.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``visit_plans.challenger_share``/``n_challenger`` (0 for the plans stored before)
    and allow the pick ``challenger`` in ``visit_plan_items``."""
    with op.batch_alter_table("visit_plans") as batch:
        batch.add_column(
            sa.Column("challenger_share", sa.Double(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("n_challenger", sa.Integer(), server_default="0", nullable=False)
        )
        batch.create_check_constraint(
            "ck_visit_plans_challenger_share", "challenger_share >= 0 AND challenger_share <= 1"
        )
    with op.batch_alter_table("visit_plan_items") as batch:
        batch.drop_constraint("ck_visit_plan_items_pick", type_="check")
        batch.create_check_constraint(
            "ck_visit_plan_items_pick", "pick IN ('top', 'exploration', 'challenger')"
        )


def downgrade() -> None:
    """Drop the columns and the pick ``challenger`` (refused while a plan holds one)."""
    with op.batch_alter_table("visit_plan_items") as batch:
        batch.drop_constraint("ck_visit_plan_items_pick", type_="check")
        batch.create_check_constraint("ck_visit_plan_items_pick", "pick IN ('top', 'exploration')")
    with op.batch_alter_table("visit_plans") as batch:
        batch.drop_constraint("ck_visit_plans_challenger_share", type_="check")
        batch.drop_column("n_challenger")
        batch.drop_column("challenger_share")
