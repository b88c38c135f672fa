"""diagnostics: reader claims, amended reports, recognition of shared-record results, ward-round lists, channels

Revision ID: 0013_diagnostics_claims
Revises: 0009_diagnostics
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0013_diagnostics_claims"
down_revision = "0009_diagnostics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("diagnostic_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prior_ref", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", yilian.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("diagnostic_report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("status", sa.String(length=12), server_default="final", nullable=False))
        batch_op.add_column(sa.Column("amend_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("amended_at", yilian.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "diagnostic_report_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signed_by_name", sa.String(length=64), nullable=False),
        sa.Column("signed_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["diagnostic_report.id"],
            name=op.f("fk_diagnostic_report_version_report_id_diagnostic_report"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_report_version")),
    )
    with op.batch_alter_table("diagnostic_report_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_report_version_report_id"), ["report_id"], unique=False)
    with op.batch_alter_table("recognition_decision", schema=None) as batch_op:
        batch_op.alter_column("prior_report_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("prior_ref", sa.String(length=120), nullable=True))
    with op.batch_alter_table("teleconsultation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round_patients", yilian.db.JSONType, nullable=True))
    op.create_table(
        "diagnostic_channel",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("critical_only", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_diagnostic_channel_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_channel")),
    )
    with op.batch_alter_table("diagnostic_channel", schema=None) as batch_op:
        batch_op.create_index("ix_diagnostic_channel_facility", ["facility_id", "active"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("diagnostic_channel", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnostic_channel_facility")
    op.drop_table("diagnostic_channel")
    with op.batch_alter_table("teleconsultation", schema=None) as batch_op:
        batch_op.drop_column("round_patients")
    with op.batch_alter_table("recognition_decision", schema=None) as batch_op:
        batch_op.drop_column("prior_ref")
        batch_op.alter_column("prior_report_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("diagnostic_report_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnostic_report_version_report_id"))
    op.drop_table("diagnostic_report_version")
    with op.batch_alter_table("diagnostic_report", schema=None) as batch_op:
        batch_op.drop_column("amended_at")
        batch_op.drop_column("amend_reason")
        batch_op.drop_column("status")
        batch_op.drop_column("version")
    with op.batch_alter_table("diagnostic_order", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("prior_ref")
