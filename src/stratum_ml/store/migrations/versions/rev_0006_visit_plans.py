"""Visit plans: a run's planned visits, declined picks, and the run a visit outcome answers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``visit_plans``, ``visit_plan_items`` and ``plan_declines``; add
    ``visit_outcomes.run_id`` (None for the outcomes stored before: no design visits)."""
    op.create_table(
        "visit_plans",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("exploration_share", sa.Double(), nullable=False),
        sa.Column("population_share", sa.Double(), nullable=False),
        sa.Column("n_top", sa.Integer(), nullable=False),
        sa.Column("n_exploration", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("strata", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_visit_plans"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["scoring_runs.run_id"], name="fk_visit_plans_run_id_scoring_runs"
        ),
        sa.CheckConstraint("capacity >= 1", name="ck_visit_plans_capacity"),
        sa.CheckConstraint(
            "exploration_share >= 0 AND exploration_share <= 1", name="ck_visit_plans_share"
        ),
    )
    op.create_table(
        "visit_plan_items",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.Integer(), nullable=False),
        sa.Column("pick", sa.String(16), nullable=False),
        sa.Column("inclusion_probability", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "address_id", name="pk_visit_plan_items"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["visit_plans.run_id"], name="fk_visit_plan_items_run_id_visit_plans"
        ),
        sa.CheckConstraint("pick IN ('top', 'exploration')", name="ck_visit_plan_items_pick"),
        sa.CheckConstraint(
            "inclusion_probability > 0 AND inclusion_probability <= 1",
            name="ck_visit_plan_items_probability",
        ),
    )
    op.create_table(
        "plan_declines",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declined_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_plan_declines"),
        sa.UniqueConstraint("run_id", "address_id", name="uq_plan_declines_run_id_address_id"),
        sa.ForeignKeyConstraint(
            ["run_id", "address_id"],
            ["visit_plan_items.run_id", "visit_plan_items.address_id"],
            name="fk_plan_declines_run_id_visit_plan_items",
        ),
        sa.CheckConstraint(
            "reason IN ('no_access', 'safety', 'open_case', 'not_a_dwelling', 'other')",
            name="ck_plan_declines_reason",
        ),
        sa.CheckConstraint(
            "reason <> 'other' OR note IS NOT NULL", name="ck_plan_declines_other_has_note"
        ),
    )
    with op.batch_alter_table("visit_outcomes") as batch:
        batch.add_column(sa.Column("run_id", sa.String(32), nullable=True))
        batch.create_index("ix_visit_outcomes_run_id", ["run_id"])


def downgrade() -> None:
    """Drop the plans and declines and ``visit_outcomes.run_id``."""
    with op.batch_alter_table("visit_outcomes") as batch:
        batch.drop_index("ix_visit_outcomes_run_id")
        batch.drop_column("run_id")
    op.drop_table("plan_declines")
    op.drop_table("visit_plan_items")
    op.drop_table("visit_plans")
