"""outreach: check-ins, expert clinics (days, slots, appointments, waitlist, verification codes), activities, skills

Revision ID: 0008_outreach_clinics
Revises: 0005_outreach
Create Date: 2026-11-23 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import yilian.db  # noqa: F401

revision = "0008_outreach_clinics"
down_revision = "0005_outreach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach_verification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_verification")),
    )
    with op.batch_alter_table("outreach_verification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_verification_phone"), ["phone"], unique=False)

    op.create_table(
        "outreach_activity",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("local_team", yilian.db.JSONType, nullable=False),
        sa.Column("attendees", yilian.db.JSONType, nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("operation_level", sa.Integer(), nullable=True),
        sa.Column("procedure_ref", sa.String(length=64), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_outreach_activity_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"], name=op.f("fk_outreach_activity_practitioner_id_practitioner")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["outreach_programme.id"],
            name=op.f("fk_outreach_activity_programme_id_outreach_programme"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_activity")),
    )
    with op.batch_alter_table("outreach_activity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_activity_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_activity_practitioner_id"), ["practitioner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_activity_programme_id"), ["programme_id"], unique=False)

    op.create_table(
        "outreach_clinic",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=True),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("daily_quota", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("release_time", sa.String(length=5), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], name=op.f("fk_outreach_clinic_facility_id_facility")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"], name=op.f("fk_outreach_clinic_practitioner_id_practitioner")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["outreach_programme.id"],
            name=op.f("fk_outreach_clinic_programme_id_outreach_programme"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_clinic")),
    )
    with op.batch_alter_table("outreach_clinic", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_clinic_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_clinic_practitioner_id"), ["practitioner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_clinic_programme_id"), ["programme_id"], unique=False)

    op.create_table(
        "outreach_clinic_day",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["outreach_clinic.id"],
            name=op.f("fk_outreach_clinic_day_clinic_id_outreach_clinic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_clinic_day")),
        sa.UniqueConstraint("clinic_id", "day", name="uq_outreach_clinic_day_clinic_day"),
    )
    with op.batch_alter_table("outreach_clinic_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_clinic_day_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_clinic_day_day"), ["day"], unique=False)

    op.create_table(
        "outreach_skill",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("procedure", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("supervisor_id", sa.Uuid(), nullable=True),
        sa.Column("activity_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["outreach_activity.id"],
            name=op.f("fk_outreach_skill_activity_id_outreach_activity"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"], name=op.f("fk_outreach_skill_practitioner_id_practitioner")
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_id"], ["practitioner.id"], name=op.f("fk_outreach_skill_supervisor_id_practitioner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_skill")),
    )
    with op.batch_alter_table("outreach_skill", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_skill_practitioner_id"), ["practitioner_id"], unique=False)

    op.create_table(
        "outreach_checkin",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("posting_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_outreach_checkin_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["outreach_posting.id"],
            name=op.f("fk_outreach_checkin_posting_id_outreach_posting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"], name=op.f("fk_outreach_checkin_practitioner_id_practitioner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_checkin")),
        sa.UniqueConstraint("posting_id", "day", name="uq_outreach_checkin_posting_day"),
    )
    with op.batch_alter_table("outreach_checkin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_checkin_posting_id"), ["posting_id"], unique=False)

    op.create_table(
        "outreach_slot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_day_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("extra", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_day_id"],
            ["outreach_clinic_day.id"],
            name=op.f("fk_outreach_slot_clinic_day_id_outreach_clinic_day"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["outreach_clinic.id"],
            name=op.f("fk_outreach_slot_clinic_id_outreach_clinic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_slot")),
        sa.UniqueConstraint("clinic_day_id", "number", name="uq_outreach_slot_day_number"),
    )
    with op.batch_alter_table("outreach_slot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_slot_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index("ix_outreach_slot_day_status", ["clinic_day_id", "status"], unique=False)

    op.create_table(
        "outreach_appointment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_day_id", sa.Uuid(), nullable=False),
        sa.Column("slot_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("patient_name", sa.String(length=64), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("id_card", sa.String(length=18), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("booked_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_day_id"],
            ["outreach_clinic_day.id"],
            name=op.f("fk_outreach_appointment_clinic_day_id_outreach_clinic_day"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["outreach_clinic.id"],
            name=op.f("fk_outreach_appointment_clinic_id_outreach_clinic"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["outreach_slot.id"],
            name=op.f("fk_outreach_appointment_slot_id_outreach_slot"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_appointment")),
        sa.UniqueConstraint("reference", name=op.f("uq_outreach_appointment_reference")),
    )
    with op.batch_alter_table("outreach_appointment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_appointment_clinic_day_id"), ["clinic_day_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_appointment_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_appointment_slot_id"), ["slot_id"], unique=False)

    op.create_table(
        "outreach_waitlist",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_day_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("patient_name", sa.String(length=64), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("id_card", sa.String(length=18), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["outreach_appointment.id"],
            name=op.f("fk_outreach_waitlist_appointment_id_outreach_appointment"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_day_id"],
            ["outreach_clinic_day.id"],
            name=op.f("fk_outreach_waitlist_clinic_day_id_outreach_clinic_day"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["outreach_clinic.id"],
            name=op.f("fk_outreach_waitlist_clinic_id_outreach_clinic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_waitlist")),
    )
    with op.batch_alter_table("outreach_waitlist", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_waitlist_clinic_day_id"), ["clinic_day_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outreach_waitlist_clinic_id"), ["clinic_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outreach_waitlist", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_waitlist_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_waitlist_clinic_day_id"))

    op.drop_table("outreach_waitlist")
    with op.batch_alter_table("outreach_appointment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_appointment_slot_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_appointment_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_appointment_clinic_day_id"))

    op.drop_table("outreach_appointment")
    with op.batch_alter_table("outreach_slot", schema=None) as batch_op:
        batch_op.drop_index("ix_outreach_slot_day_status")
        batch_op.drop_index(batch_op.f("ix_outreach_slot_clinic_id"))

    op.drop_table("outreach_slot")
    with op.batch_alter_table("outreach_checkin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_checkin_posting_id"))

    op.drop_table("outreach_checkin")
    with op.batch_alter_table("outreach_skill", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_skill_practitioner_id"))

    op.drop_table("outreach_skill")
    with op.batch_alter_table("outreach_clinic_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_clinic_day_day"))
        batch_op.drop_index(batch_op.f("ix_outreach_clinic_day_clinic_id"))

    op.drop_table("outreach_clinic_day")
    with op.batch_alter_table("outreach_clinic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_clinic_programme_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_clinic_practitioner_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_clinic_facility_id"))

    op.drop_table("outreach_clinic")
    with op.batch_alter_table("outreach_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_activity_programme_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_activity_practitioner_id"))
        batch_op.drop_index(batch_op.f("ix_outreach_activity_facility_id"))

    op.drop_table("outreach_activity")
    with op.batch_alter_table("outreach_verification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_verification_phone"))

    op.drop_table("outreach_verification")
