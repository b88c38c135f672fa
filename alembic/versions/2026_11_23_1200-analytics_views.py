"""analytics: the registry of materialised views

Revision ID: 0011_analytics_views
Revises: 0005_outreach
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0011_analytics_views"
down_revision = "0005_outreach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_materialized_view",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("snapshot_part", sa.Integer(), nullable=False),
        sa.Column("materialized_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_materialized_view")),
    )


def downgrade() -> None:
    op.drop_table("analytics_materialized_view")
