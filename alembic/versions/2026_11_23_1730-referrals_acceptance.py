"""referrals: when a referral was accepted and by when it was due to be (the acceptance KPI reads both)

Revision ID: 0021_referrals_acceptance
Revises: 0006_referrals
Create Date: 2026-11-23 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0021_referrals_acceptance"
down_revision = "0006_referrals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        batch.add_column(sa.Column("accepted_at", yilian.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("accept_due_at", yilian.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("accept_due_at")
        batch.drop_column("accepted_at")
