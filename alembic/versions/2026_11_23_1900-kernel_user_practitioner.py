"""kernel: a user account may be linked to the registry practitioner it belongs to

Revision ID: 0022_user_practitioner
Revises: 0001_kernel
Create Date: 2026-11-23 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_user_practitioner"
down_revision = "0001_kernel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("practitioner_id", sa.Uuid(), nullable=True))
        batch.create_unique_constraint("uq_app_user_practitioner_id", ["practitioner_id"])


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_constraint("uq_app_user_practitioner_id", type_="unique")
        batch.drop_column("practitioner_id")
