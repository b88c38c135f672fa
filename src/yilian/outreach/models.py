"""Outreach tables: programmes, postings, experts' duty and leave days, demand, rosters and their entries (with locks).

Practitioners and facilities belong to the network registry; these tables refer to them by id (foreign keys) and the
domain reaches them through `yilian.network.service`, never its models.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class Programme(Base):
    """A sending hospital's outreach programme to receiving hospitals, with its terms (e.g. ≥ 4 days a week)."""

    __tablename__ = "outreach_programme"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    sending_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    receiving_facility_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # rest days, travel limit, weights
    start: Mapped[date | None] = mapped_column(Date, nullable=True)
    end: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Posting(Base):
    """An expert's posting in a programme; its face in the registry is a PractitionerRole at the receiving facility."""

    __tablename__ = "outreach_posting"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), index=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"), index=True)
    practitioner_role_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("practitioner_role.id"), nullable=True
    )
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # resident | short_term | recurring | honorary_chief
    specialties: Mapped[list[str]] = mapped_column(JSONType, default=list)
    recurrence: Mapped[str | None] = mapped_column(String(128), nullable=True)  # RRULE subset
    start: Mapped[date | None] = mapped_column(Date, nullable=True)
    end: Mapped[date | None] = mapped_column(Date, nullable=True)
    min_days_per_week: Mapped[int] = mapped_column(Integer, default=0)
    min_days_per_month: Mapped[int] = mapped_column(Integer, default=0)
    max_outreach_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    day_trips: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExpertDay(Base):
    """A day an expert cannot do outreach: on duty at the home hospital, or on leave."""

    __tablename__ = "outreach_expert_day"
    __table_args__ = (UniqueConstraint("practitioner_id", "day", name="uq_outreach_expert_day_practitioner_day"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # home_duty | unavailable


class DemandRow(Base):
    """What a receiving hospital asks of a programme: sessions of a specialty per week or per day."""

    __tablename__ = "outreach_demand"
    __table_args__ = (
        UniqueConstraint(
            "programme_id", "facility_id", "specialty", name="uq_outreach_demand_programme_site_specialty"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), index=True
    )
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    specialty: Mapped[str] = mapped_column(String(64))
    sessions: Mapped[int] = mapped_column(Integer)
    per: Mapped[str] = mapped_column(String(8), default="week")
    weekdays: Mapped[list[int]] = mapped_column(JSONType, default=list)
    weight: Mapped[int] = mapped_column(Integer, default=1)


class RosterRow(Base):
    """A programme's roster for one month, as last solved."""

    __tablename__ = "outreach_roster"
    __table_args__ = (UniqueConstraint("programme_id", "month", name="uq_outreach_roster_programme_month"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), index=True
    )
    month: Mapped[date] = mapped_column(Date)  # first day of the month
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | published
    solver_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    feasible: Mapped[bool] = mapped_column(Boolean, default=False)
    unmet_sessions: Mapped[int] = mapped_column(Integer, default=0)
    demand_sessions: Mapped[int] = mapped_column(Integer, default=0)
    shortfalls: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RosterEntry(Base):
    """One expert-day of a roster. A locked entry is a coordinator's decision kept by every re-solve; a locked entry
    without a facility keeps the expert free of outreach that day. One row per expert and day: no two places at once."""

    __tablename__ = "outreach_roster_entry"
    __table_args__ = (
        UniqueConstraint("roster_id", "practitioner_id", "day", name="uq_outreach_roster_entry_expert_day"),
        Index("ix_outreach_roster_entry_facility_day", "facility_id", "day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    roster_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_roster.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"))
    day: Mapped[date] = mapped_column(Date)
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facility.id"), nullable=True)
    specialty: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


# ----------------------------------------------------------------------------------------------------------------------
# Compliance: days actually on site


class CheckIn(Base):
    """An expert recorded on site at the posted facility on a day (by the expert, or by the receiving hospital)."""

    __tablename__ = "outreach_checkin"
    __table_args__ = (UniqueConstraint("posting_id", "day", name="uq_outreach_checkin_posting_day"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    posting_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_posting.id", ondelete="CASCADE"), index=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"))
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    day: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ComplianceAlert(Base):
    """A resident expert's week below the days-on-site rule, raised once (the unique key makes the periodic job and
    the cron command safe to run again); it is the programme's inbox of alerts and went out as an outbox event."""

    __tablename__ = "outreach_compliance_alert"
    __table_args__ = (UniqueConstraint("posting_id", "week_start", name="uq_outreach_compliance_alert_posting_week"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), index=True
    )
    posting_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_posting.id", ondelete="CASCADE"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"))
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    week_start: Mapped[date] = mapped_column(Date)
    required: Mapped[int] = mapped_column(Integer)
    on_site: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ----------------------------------------------------------------------------------------------------------------------
# Expert clinics: a Schedule with days, numbered Slots (号源), Appointments and a waitlist


class Clinic(Base):
    """An expert clinic (FHIR Schedule): one expert, one facility, a daily quota released on a booking horizon."""

    __tablename__ = "outreach_clinic"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), nullable=True, index=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"), index=True)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    specialty: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    daily_quota: Mapped[int] = mapped_column(Integer, default=30)
    horizon_days: Mapped[int] = mapped_column(Integer, default=7)
    release_time: Mapped[str] = mapped_column(String(5), default="08:00")  # Asia/Shanghai
    start_time: Mapped[str] = mapped_column(String(5), default="08:00")
    end_time: Mapped[str] = mapped_column(String(5), default="12:00")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClinicDay(Base):
    """One day of a clinic: its quota, and the extra numbers added when demand exceeded it."""

    __tablename__ = "outreach_clinic_day"
    __table_args__ = (UniqueConstraint("clinic_id", "day", name="uq_outreach_clinic_day_clinic_day"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_clinic.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    quota: Mapped[int] = mapped_column(Integer)
    extra: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | cancelled


class Slot(Base):
    """A numbered appointment (号) of a clinic day; taken by a conditional update so that it is never sold twice."""

    __tablename__ = "outreach_slot"
    __table_args__ = (
        UniqueConstraint("clinic_day_id", "number", name="uq_outreach_slot_day_number"),
        Index("ix_outreach_slot_day_status", "clinic_day_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_day_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_clinic_day.id", ondelete="CASCADE"))
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_clinic.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8), default="free")  # free | busy
    extra: Mapped[bool] = mapped_column(Boolean, default=False)


def _one_live_row_per_patient(table: str, status: str) -> Index:
    """A partial unique index: one live row (booked, or waiting) per patient and clinic day. The check in the service
    gives the friendly message; this index is what stops two simultaneous requests for the same patient."""
    where = text(f"status = '{status}'")
    return Index(
        f"uq_{table}_day_patient",
        "clinic_day_id",
        "patient_key",
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


class Appointment(Base):
    """A patient's booking of a slot (FHIR Appointment). The patient is a record in the store when one matched, and
    always the name and contact the booking was made with."""

    __tablename__ = "outreach_appointment"
    __table_args__ = (_one_live_row_per_patient("outreach_appointment", "booked"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(12), unique=True)  # the booking number told to the patient
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_clinic.id", ondelete="CASCADE"), index=True)
    clinic_day_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_clinic_day.id", ondelete="CASCADE"), index=True
    )
    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_slot.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="booked")  # booked | cancelled | arrived | noshow
    channel: Mapped[str] = mapped_column(String(16))  # staff | public | waitlist
    patient_name: Mapped[str] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_card: Mapped[str | None] = mapped_column(String(18), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Who the patient is for "one number per patient per day": the record, else the ID card, else the phone.
    patient_key: Mapped[str] = mapped_column(String(80))
    booked_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WaitlistEntry(Base):
    """A patient waiting for a full clinic day; the first waiting entry takes a cancelled slot automatically."""

    __tablename__ = "outreach_waitlist"
    __table_args__ = (_one_live_row_per_patient("outreach_waitlist", "waiting"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outreach_clinic.id", ondelete="CASCADE"), index=True)
    clinic_day_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_clinic_day.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | promoted | withdrawn
    channel: Mapped[str] = mapped_column(String(16))
    patient_name: Mapped[str] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_card: Mapped[str | None] = mapped_column(String(18), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    patient_key: Mapped[str] = mapped_column(String(80))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("outreach_appointment.id", ondelete="SET NULL"), nullable=True
    )
    added_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Verification(Base):
    """A one-time code sent by SMS to a phone for the public booking page (stored hashed, short-lived)."""

    __tablename__ = "outreach_verification"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    client_ip: Mapped[str | None] = mapped_column(String(45), nullable=True, index=True)  # who asked: rate limit
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ----------------------------------------------------------------------------------------------------------------------
# Visiting days and training


class Activity(Base):
    """What an expert does on a visiting day besides the clinic: ward round, surgery (with the local team; linked to
    a FHIR Procedure), teaching (lecture, teaching round, mentored surgery) with attendees."""

    __tablename__ = "outreach_activity"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("outreach_programme.id", ondelete="CASCADE"), index=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"), index=True)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    local_team: Mapped[list[str]] = mapped_column(JSONType, default=list)  # practitioner ids
    attendees: Mapped[list[str]] = mapped_column(JSONType, default=list)  # practitioner ids
    patient_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operation_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    procedure_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SkillEntry(Base):
    """A local doctor's step in a procedure: observed, assisted, done under supervision, or done independently."""

    __tablename__ = "outreach_skill"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioner.id"), index=True)
    procedure: Mapped[str] = mapped_column(String(128))
    day: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))  # observed | assisted | supervised | independent
    supervisor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("practitioner.id"), nullable=True)
    activity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("outreach_activity.id", ondelete="SET NULL"), nullable=True
    )
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
