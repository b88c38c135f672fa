"""outreach: one live booking and one waitlist place per patient and clinic day (partial unique indexes), the
requesting address of verification codes (rate limits), and compliance alerts raised once per expert-week

Revision ID: 0013_outreach_limits
Revises: 0008_outreach_clinics
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0013_outreach_limits"
down_revision = "0008_outreach_clinics"
branch_labels = None
depends_on = None

# The same key as the service computes: the patient record, else the ID card, else the phone.
PATIENT_KEY = (
    "CASE WHEN patient_ref IS NOT NULL THEN 'ref:' || patient_ref "
    "WHEN id_card IS NOT NULL THEN 'id:' || id_card "
    "ELSE 'tel:' || COALESCE(phone, CAST(id AS VARCHAR(40))) END"
)


def upgrade() -> None:
    for table, live in (("outreach_appointment", "booked"), ("outreach_waitlist", "waiting")):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("patient_key", sa.String(length=80), nullable=True))
        op.execute(f"UPDATE {table} SET patient_key = {PATIENT_KEY}")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("patient_key", existing_type=sa.String(length=80), nullable=False)
        where = sa.text(f"status = '{live}'")
        op.create_index(
            f"uq_{table}_day_patient",
            table,
            ["clinic_day_id", "patient_key"],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )
    with op.batch_alter_table("outreach_verification") as batch_op:
        batch_op.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
        batch_op.create_index(batch_op.f("ix_outreach_verification_client_ip"), ["client_ip"], unique=False)
    op.create_table(
        "outreach_compliance_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("posting_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("on_site", sa.Integer(), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"]),
        sa.ForeignKeyConstraint(["posting_id"], ["outreach_posting.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["practitioner_id"], ["practitioner.id"]),
        sa.ForeignKeyConstraint(["programme_id"], ["outreach_programme.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("posting_id", "week_start", name="uq_outreach_compliance_alert_posting_week"),
    )
    with op.batch_alter_table("outreach_compliance_alert") as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_compliance_alert_programme_id"), ["programme_id"], unique=False)


def downgrade() -> None:
    op.drop_table("outreach_compliance_alert")
    with op.batch_alter_table("outreach_verification") as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_verification_client_ip"))
        batch_op.drop_column("client_ip")
    for table in ("outreach_waitlist", "outreach_appointment"):
        op.drop_index(f"uq_{table}_day_patient", table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("patient_key")
