"""Audit anchor: signed checkpoints of the audit log's head.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``audit_checkpoints``, empty."""
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("log", sa.String(1000), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoints"),
        sa.CheckConstraint("head_seq >= 0", name="ck_audit_checkpoints_head_seq"),
    )
    op.create_index("ix_audit_checkpoints_log", "audit_checkpoints", ["log"])


def downgrade() -> None:
    """Drop ``audit_checkpoints`` (the anchor of the audit log is lost)."""
    op.drop_index("ix_audit_checkpoints_log", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
