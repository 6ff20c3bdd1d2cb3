"""A decision's reason is a code from the fixed list plus an optional note.

``decisions.reason`` (free text) becomes ``decisions.note``; a new
``decisions.reason`` holds a code of :data:`stratum_ml.store.tables.DECISION_REASONS`.
Decisions stored before keep their text as the note, with the code ``other``.
The codes are written out here as they were at this revision (a migration is a
snapshot; a later change of the list needs a migration of its own).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

#: the codes at this revision
CODES = (
    "signals_several_sources",
    "recent_reports",
    "explained_by_known_situation",
    "already_in_handling",
    "too_little_information",
    "other",
)


def upgrade() -> None:
    """Rename ``reason`` to ``note`` (nullable); add ``reason`` (code), ``other`` for old rows."""
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("reason", new_column_name="note", existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("reason", sa.String(40), nullable=False, server_default="other"))
    codes = ", ".join(f"'{c}'" for c in CODES)
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column(
            "reason", existing_type=sa.String(40), existing_nullable=False, server_default=None
        )
        batch.create_check_constraint("ck_decisions_reason", f"reason IN ({codes})")
        batch.create_check_constraint(
            "ck_decisions_other_has_note", "reason <> 'other' OR note IS NOT NULL"
        )


def downgrade() -> None:
    """Back to one free-text ``reason``: the code's English words, then the note."""
    with op.batch_alter_table("decisions") as batch:
        batch.drop_constraint("ck_decisions_other_has_note", type_="check")
        batch.drop_constraint("ck_decisions_reason", type_="check")
    words = {
        "signals_several_sources": "signals from several sources point the same way",
        "recent_reports": "recent reports confirm the picture",
        "explained_by_known_situation": "the signals are explained by a known situation",
        "already_in_handling": "the address is already being handled",
        "too_little_information": "too little information to decide",
    }
    decisions = sa.table(
        "decisions", sa.column("reason", sa.String()), sa.column("note", sa.Text())
    )
    for code, text in words.items():
        op.execute(
            decisions.update()
            .where(decisions.c.reason == code)
            .values(note=sa.func.coalesce(text + ": " + decisions.c.note, text))
        )
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column(
            "note", new_column_name="reason", existing_type=sa.Text(), nullable=False
        )
