"""indicators: recorded assessments of the yes/no monitoring items

Revision ID: 0010_indicators
Revises: 0005_outreach
Create Date: 2026-11-23 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0010_indicators"
down_revision = "0005_outreach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_assessment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_assessment")),
        sa.UniqueConstraint("indicator_id", "scope", "year", name=op.f("uq_indicator_assessment_indicator_id")),
    )


def downgrade() -> None:
    op.drop_table("indicator_assessment")
