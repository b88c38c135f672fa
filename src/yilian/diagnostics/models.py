"""Tables of shared diagnostics: orders to reading centres, their studies and reports, critical-value alerts,
notifications to the ordering site, recognition decisions and qualifications, teleconsultations.

These rows are the source of truth for the workflow; their FHIR face (ServiceRequest, Task, ImagingStudy, Observation,
DiagnosticReport) is written into the FHIR store by `fhir.py` in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class DiagnosticOrder(Base):
    """An order from a member site to a shared reading centre (影像/心电/检验/病理中心)."""

    __tablename__ = "diagnostic_order"
    __table_args__ = (
        Index("ix_diagnostic_order_centre_state", "centre_facility_id", "state"),
        Index("ix_diagnostic_order_site_state", "ordering_facility_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)  # "Patient/<id>"
    ordering_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    centre_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    ordered_by: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # recognition catalogue
    item_name: Mapped[str] = mapped_column(String(128))
    priority: Mapped[str] = mapped_column(String(12), default="routine")
    clinical_question: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="ordered")
    # A repeat of a recognised result: which reason, that the patient was told, and the earlier report.
    repeat_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    repeat_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    patient_informed: Mapped[bool] = mapped_column(Boolean, default=False)
    prior_report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # The earlier result as a FHIR reference: a report signed here, or one imported from a hospital system.
    prior_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    # The reader who took the study from the centre's worklist, so that two readers never read the same study.
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DiagnosticStudy(Base):
    """What arrived for an order: an uploaded file, a study in a PACS (DICOMweb), and/or measured values."""

    __tablename__ = "diagnostic_study"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("diagnostic_order.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # upload | dicomweb | values
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    study_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wado_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DiagnosticReportRow(Base):
    """The centre's signed report. Reports of recognised items carry the HR mark (互认)."""

    __tablename__ = "diagnostic_report"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("diagnostic_order.id"), unique=True)
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)
    item_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    performer_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    findings: Mapped[str] = mapped_column(Text, default="")
    conclusion: Mapped[str] = mapped_column(Text)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    recognised: Mapped[bool] = mapped_column(Boolean, default=False)  # the HR mark
    signed_by: Mapped[str] = mapped_column(String(64), index=True)
    signed_by_name: Mapped[str] = mapped_column(String(64), default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A signed report is corrected by amending it: the row holds the current version, the earlier ones are kept in
    # diagnostic_report_version (and in the FHIR store's history of the DiagnosticReport).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(12), default="final", server_default="final")  # final | amended
    amend_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    amended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DiagnosticReportVersion(Base):
    """An earlier version of a report, kept when the report was amended (never deleted: it may have been acted on)."""

    __tablename__ = "diagnostic_report_version"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("diagnostic_report.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    findings: Mapped[str] = mapped_column(Text, default="")
    conclusion: Mapped[str] = mapped_column(Text)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_by_name: Mapped[str] = mapped_column(String(64), default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CriticalAlert(Base):
    """A critical value (危急值) reported to the ordering site; open until someone there acknowledges it."""

    __tablename__ = "diagnostic_critical_alert"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("diagnostic_order.id"), index=True)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    patient_ref: Mapped[str] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DiagnosticNotification(Base):
    """News for a facility's inbox: a report is ready to print, a consultation was answered."""

    __tablename__ = "diagnostic_notification"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # report_ready | consultation_answered | consultation_scheduled
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the order or consultation
    message: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecognitionQualification(Base):
    """A facility passed quality control (质控) for a recognised item, or for a whole modality (item_code '*ecg')."""

    __tablename__ = "recognition_qualification"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(32))
    passed_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))


class RecognitionDecision(Base):
    """What happened when an order met a valid recognised result: reused (a test avoided) or repeated (with reason)."""

    __tablename__ = "recognition_decision"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)
    item_code: Mapped[str] = mapped_column(String(32))
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    # A report signed here (prior_report_id) or any result of the shared record (prior_ref, always set from now on).
    prior_report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("diagnostic_report.id"), nullable=True)
    prior_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    outcome: Mapped[str] = mapped_column(String(12))  # reused | repeated
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    patient_informed: Mapped[bool] = mapped_column(Boolean, default=False)
    price_fen: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Teleconsultation(Base):
    """A remote consultation (远程会诊), multi-disciplinary consultation or remote ward round."""

    __tablename__ = "teleconsultation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), default="consultation")
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)
    requesting_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    centre_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(12), default="routine")
    question: Mapped[str] = mapped_column(Text)
    record_items: Mapped[list[str]] = mapped_column(JSONType, default=list)  # FHIR references shared with the expert
    # A remote ward round visits several patients: their "Patient/<id>" references, in round order.
    round_patients: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True, default=list)
    state: Mapped[str] = mapped_column(String(16), default="requested")
    experts: Mapped[list[str]] = mapped_column(JSONType, default=list)  # usernames
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    meeting_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    opinion: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # diagnosis, advice, follow_up, text
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationChannel(Base):
    """Where a facility wants its news besides the in-app inbox: a webhook of its hospital system, or a phone for SMS
    (critical values). Deliveries go through the outbox, one event per channel, so one failing target is retried alone."""

    __tablename__ = "diagnostic_channel"
    __table_args__ = (Index("ix_diagnostic_channel_facility", "facility_id", "active"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    kind: Mapped[str] = mapped_column(String(12))  # webhook | sms
    target: Mapped[str] = mapped_column(String(500))  # URL or phone number
    critical_only: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
