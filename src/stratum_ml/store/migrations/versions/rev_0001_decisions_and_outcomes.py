"""Decisions and visit outcomes (replacing the CSV stores of earlier versions).

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``decisions`` and ``visit_outcomes`` with their constraints."""
    op.create_table(
        "decisions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("key_name", sa.String(200), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("scoring_date", sa.Date(), nullable=False),
        sa.Column("rank_at_decision", sa.Integer(), nullable=False),
        sa.Column("probability_at_decision", sa.Double(), nullable=False),
        sa.Column("supersedes", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_decisions"),
        sa.UniqueConstraint("decision_id", name="uq_decisions_decision_id"),
        sa.UniqueConstraint("supersedes", name="uq_decisions_supersedes"),
        sa.UniqueConstraint("idempotency_key", name="uq_decisions_idempotency_key"),
        sa.UniqueConstraint(
            "decision_id", "address_id", name="uq_decisions_decision_id_address_id"
        ),
        sa.CheckConstraint(
            "decision IN ('pass_on_for_visit', 'decline', 'needs_more_information')",
            name="ck_decisions_decision",
        ),
        sa.CheckConstraint(
            "supersedes IS NULL OR supersedes <> decision_id", name="ck_decisions_not_itself"
        ),
        sa.ForeignKeyConstraint(
            ["supersedes", "address_id"],
            ["decisions.decision_id", "decisions.address_id"],
            name="fk_decisions_supersedes_address_id_decisions",
        ),
    )
    op.create_index("ix_decisions_address_id", "decisions", ["address_id"])
    op.create_index(
        "uq_decisions_chain_start",
        "decisions",
        ["address_id"],
        unique=True,
        sqlite_where=sa.text("supersedes IS NULL"),
        postgresql_where=sa.text("supersedes IS NULL"),
    )
    op.create_table(
        "visit_outcomes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inspection_id", sa.String(64), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("inspected_at", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("violation_type", sa.String(64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_visit_outcomes"),
        sa.UniqueConstraint("inspection_id", name="uq_visit_outcomes_inspection_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_visit_outcomes_idempotency_key"),
    )
    op.create_index("ix_visit_outcomes_address_id", "visit_outcomes", ["address_id"])
    op.create_index(
        "uq_visit_outcomes_visit",
        "visit_outcomes",
        [
            "address_id",
            "inspected_at",
            "reason",
            "outcome",
            sa.text("coalesce(violation_type, '')"),
        ],
        unique=True,
    )


def downgrade() -> None:
    """Drop both tables (their rows are lost)."""
    op.drop_table("visit_outcomes")
    op.drop_table("decisions")
