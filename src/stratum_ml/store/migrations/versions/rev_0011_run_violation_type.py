"""The likely violation type of every scored dwelling of a run; case file exports.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``run_items.violation_type``/``violation_type_share``; create ``case_file_exports``."""
    with op.batch_alter_table("run_items") as batch:
        batch.add_column(sa.Column("violation_type", sa.String(32), nullable=True))
        batch.add_column(sa.Column("violation_type_share", sa.Double(), nullable=True))
    op.create_table(
        "case_file_exports",
        sa.Column("export_id", sa.String(36), nullable=False),
        sa.Column("address_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(1000), nullable=False),
        sa.Column("legal_basis", sa.String(500), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("export_id", name="pk_case_file_exports"),
    )
    op.create_index("ix_case_file_exports_address_id", "case_file_exports", ["address_id"])


def downgrade() -> None:
    """Drop ``case_file_exports`` and the two columns (the runs' violation types are lost)."""
    op.drop_index("ix_case_file_exports_address_id", table_name="case_file_exports")
    op.drop_table("case_file_exports")
    with op.batch_alter_table("run_items") as batch:
        batch.drop_column("violation_type_share")
        batch.drop_column("violation_type")
