"""diagnostics: orders to reading centres, studies, reports, critical alerts, notifications, recognition, teleconsultations

Revision ID: 0009_diagnostics
Revises: 0005_outreach
Create Date: 2026-11-23 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0009_diagnostics"
down_revision = "0005_outreach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diagnostic_notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("message", sa.String(length=255), nullable=False),
        sa.Column("created_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("printed_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_diagnostic_notification_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_notification")),
    )
    with op.batch_alter_table("diagnostic_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_notification_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "diagnostic_order",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=False),
        sa.Column("ordering_facility_id", sa.Uuid(), nullable=False),
        sa.Column("centre_facility_id", sa.Uuid(), nullable=False),
        sa.Column("ordered_by", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=True),
        sa.Column("item_name", sa.String(length=128), nullable=False),
        sa.Column("priority", sa.String(length=12), nullable=False),
        sa.Column("clinical_question", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("repeat_reason", sa.String(length=32), nullable=True),
        sa.Column("repeat_note", sa.Text(), nullable=True),
        sa.Column("patient_informed", sa.Boolean(), nullable=False),
        sa.Column("prior_report_id", sa.Uuid(), nullable=True),
        sa.Column("ordered_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reported_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["centre_facility_id"], ["facility.id"], name=op.f("fk_diagnostic_order_centre_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["ordering_facility_id"], ["facility.id"], name=op.f("fk_diagnostic_order_ordering_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_order")),
    )
    with op.batch_alter_table("diagnostic_order", schema=None) as batch_op:
        batch_op.create_index("ix_diagnostic_order_centre_state", ["centre_facility_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_diagnostic_order_item_code"), ["item_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_diagnostic_order_patient_ref"), ["patient_ref"], unique=False)
        batch_op.create_index("ix_diagnostic_order_site_state", ["ordering_facility_id", "state"], unique=False)

    op.create_table(
        "recognition_qualification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("passed_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_recognition_qualification_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recognition_qualification")),
    )
    with op.batch_alter_table("recognition_qualification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recognition_qualification_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "teleconsultation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=False),
        sa.Column("requesting_facility_id", sa.Uuid(), nullable=False),
        sa.Column("centre_facility_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=12), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("record_items", yilian.db.JSONType, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("experts", yilian.db.JSONType, nullable=False),
        sa.Column("scheduled_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("meeting_url", sa.String(length=500), nullable=True),
        sa.Column("opinion", yilian.db.JSONType, nullable=False),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("requested_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["centre_facility_id"], ["facility.id"], name=op.f("fk_teleconsultation_centre_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["requesting_facility_id"],
            ["facility.id"],
            name=op.f("fk_teleconsultation_requesting_facility_id_facility"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teleconsultation")),
    )
    with op.batch_alter_table("teleconsultation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_teleconsultation_centre_facility_id"), ["centre_facility_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_teleconsultation_patient_ref"), ["patient_ref"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_teleconsultation_requesting_facility_id"), ["requesting_facility_id"], unique=False
        )

    op.create_table(
        "diagnostic_critical_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", yilian.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_diagnostic_critical_alert_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["diagnostic_order.id"], name=op.f("fk_diagnostic_critical_alert_order_id_diagnostic_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_critical_alert")),
    )
    with op.batch_alter_table("diagnostic_critical_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_critical_alert_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_diagnostic_critical_alert_order_id"), ["order_id"], unique=False)

    op.create_table(
        "diagnostic_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=True),
        sa.Column("performer_facility_id", sa.Uuid(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("recognised", sa.Boolean(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signed_by_name", sa.String(length=64), nullable=False),
        sa.Column("signed_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["diagnostic_order.id"], name=op.f("fk_diagnostic_report_order_id_diagnostic_order")
        ),
        sa.ForeignKeyConstraint(
            ["performer_facility_id"], ["facility.id"], name=op.f("fk_diagnostic_report_performer_facility_id_facility")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_report")),
        sa.UniqueConstraint("order_id", name=op.f("uq_diagnostic_report_order_id")),
    )
    with op.batch_alter_table("diagnostic_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_report_patient_ref"), ["patient_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_diagnostic_report_signed_by"), ["signed_by"], unique=False)

    op.create_table(
        "diagnostic_study",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("wado_url", sa.String(length=500), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("measurements", yilian.db.JSONType, nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("received_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["diagnostic_order.id"],
            name=op.f("fk_diagnostic_study_order_id_diagnostic_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_study")),
    )
    with op.batch_alter_table("diagnostic_study", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostic_study_order_id"), ["order_id"], unique=False)

    op.create_table(
        "recognition_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("prior_report_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("patient_informed", sa.Boolean(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", yilian.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facility.id"], name=op.f("fk_recognition_decision_facility_id_facility")
        ),
        sa.ForeignKeyConstraint(
            ["prior_report_id"],
            ["diagnostic_report.id"],
            name=op.f("fk_recognition_decision_prior_report_id_diagnostic_report"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recognition_decision")),
    )
    with op.batch_alter_table("recognition_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recognition_decision_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recognition_decision_patient_ref"), ["patient_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recognition_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recognition_decision_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_recognition_decision_facility_id"))

    op.drop_table("recognition_decision")
    with op.batch_alter_table("diagnostic_study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnostic_study_order_id"))

    op.drop_table("diagnostic_study")
    with op.batch_alter_table("diagnostic_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnostic_report_signed_by"))
        batch_op.drop_index(batch_op.f("ix_diagnostic_report_patient_ref"))

    op.drop_table("diagnostic_report")
    with op.batch_alter_table("diagnostic_critical_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnostic_critical_alert_order_id"))
        batch_op.drop_index(batch_op.f("ix_diagnostic_critical_alert_facility_id"))

    op.drop_table("diagnostic_critical_alert")
    with op.batch_alter_table("teleconsultation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teleconsultation_requesting_facility_id"))
        batch_op.drop_index(batch_op.f("ix_teleconsultation_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_teleconsultation_centre_facility_id"))

    op.drop_table("teleconsultation")
    with op.batch_alter_table("recognition_qualification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recognition_qualification_facility_id"))

    op.drop_table("recognition_qualification")
    with op.batch_alter_table("diagnostic_order", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnostic_order_site_state")
        batch_op.drop_index(batch_op.f("ix_diagnostic_order_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_diagnostic_order_item_code"))
        batch_op.drop_index("ix_diagnostic_order_centre_state")

    op.drop_table("diagnostic_order")
    with op.batch_alter_table("diagnostic_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnostic_notification_facility_id"))

    op.drop_table("diagnostic_notification")
