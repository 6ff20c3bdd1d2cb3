"""The web app's server-side sessions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``app_sessions`` (one row per browser session; the token is stored hashed)."""
    op.create_table(
        "app_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_app_sessions"),
        sa.CheckConstraint("language IN ('nl', 'en')", name="ck_app_sessions_language"),
    )
    op.create_index("ix_app_sessions_key_id", "app_sessions", ["key_id"])


def downgrade() -> None:
    """Drop ``app_sessions`` (everyone signed in to the web app is signed out)."""
    op.drop_index("ix_app_sessions_key_id", table_name="app_sessions")
    op.drop_table("app_sessions")
