"""Scoring runs: the run, its ranked items, the reasons of its top K, its changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _run_id() -> sa.Column[str]:
    return sa.Column("run_id", sa.String(32), nullable=False)


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["scoring_runs.run_id"], name=f"fk_{table}_run_id_scoring_runs"
    )


def upgrade() -> None:
    """Create ``scoring_runs``, ``run_items``, ``run_reasons`` and ``run_changes``."""
    op.create_table(
        "scoring_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        _run_id(),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("sources_fingerprint", sa.String(64), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("changes_min_move", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("timings", sa.Text(), nullable=False),
        sa.Column("drift", sa.Text(), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=True),
        sa.Column("drift_note", sa.Text(), nullable=True),
        sa.Column("previous_run_id", sa.String(32), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_scoring_runs"),
        sa.UniqueConstraint("run_id", name="uq_scoring_runs_run_id"),
        sa.CheckConstraint("top_k >= 1", name="ck_scoring_runs_top_k"),
    )
    op.create_index("ix_scoring_runs_model_name_as_of", "scoring_runs", ["model_name", "as_of"])
    op.create_table(
        "run_items",
        _run_id(),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("fallback_rank", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("neighbourhood", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "address_id", name="pk_run_items"),
        sa.UniqueConstraint("run_id", "rank", name="uq_run_items_run_id_rank"),
        _fk("run_items"),
    )
    op.create_table(
        "run_reasons",
        _run_id(),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(100), nullable=False),
        sa.Column("theme", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("contribution", sa.Double(), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("text_nl", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "address_id", "position", name="pk_run_reasons"),
        _fk("run_reasons"),
    )
    op.create_table(
        "run_changes",
        _run_id(),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("previous_run_id", sa.String(32), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("previous_rank", sa.Integer(), nullable=True),
        sa.Column("district", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "address_id", name="pk_run_changes"),
        sa.CheckConstraint(
            "change IN ('entered', 'left', 'moved_up', 'moved_down')", name="ck_run_changes_change"
        ),
        _fk("run_changes"),
    )


def downgrade() -> None:
    """Drop the four tables (their rows are lost)."""
    op.drop_table("run_changes")
    op.drop_table("run_reasons")
    op.drop_table("run_items")
    op.drop_index("ix_scoring_runs_model_name_as_of", table_name="scoring_runs")
    op.drop_table("scoring_runs")
