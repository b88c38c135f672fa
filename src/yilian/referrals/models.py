"""Referral tables: the referral (workflow source of truth), its event history, and bookable slots/beds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class Referral(Base):
    """One two-way referral, from the sending doctor's slip to the family doctor's follow-up."""

    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_state_sla", "state", "sla_due_at"),
        Index("ix_referral_receiver_state", "receiver_facility_id", "state"),
        Index("ix_referral_sender_state", "sender_facility_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)  # "Patient/<id>" in the shared record
    patient_name: Mapped[str] = mapped_column(String(64), default="")
    direction: Mapped[str] = mapped_column(String(8), default="up")  # up | down | lateral
    urgency: Mapped[str] = mapped_column(String(12), default="routine")  # routine | urgent | emergency
    green_channel: Mapped[str | None] = mapped_column(String(24), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    reason: Mapped[str] = mapped_column(Text, default="")
    diagnosis_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)  # matched criteria + evidence
    summary: Mapped[str] = mapped_column(Text, default="")
    record_refs: Mapped[list[str]] = mapped_column(JSONType, default=list)  # links to the shared record, not copies
    service: Mapped[str | None] = mapped_column(String(32), nullable=True)  # what the patient needs: cardiology ...
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    sender_username: Mapped[str] = mapped_column(String(64))
    target_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facility.id"), nullable=True)
    target_department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receiver_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facility.id"), nullable=True)
    receiver_department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    down_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facility.id"), nullable=True)
    consortium_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)  # of the sender, at submission
    outside_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    routing: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)  # ranked receivers with reasons
    appointment: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    care_plan: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    follow_up: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    stable: Mapped[bool] = mapped_column(Boolean, default=False)  # down-referral criteria met at discharge
    times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)  # green-channel time chain (ISO UTC)
    insurance: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The acceptance clock, kept after it stops (sla_due_at moves on to booking): the acceptance KPI reads both.
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accept_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    service_request_id: Mapped[str] = mapped_column(String(64))  # FHIR ids of its face
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReferralEvent(Base):
    """One step of a referral's history: who did what, from which state to which, and why."""

    __tablename__ = "referral_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ReferralSlot(Base):
    """An outpatient slot or an inpatient bed a department publishes; taken by at most one referral."""

    __tablename__ = "referral_slot"
    __table_args__ = (Index("ix_referral_slot_free", "facility_id", "department", "start"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"))
    department: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12), default="outpatient")  # outpatient | bed
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("referral.id"), nullable=True, index=True)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReferralInboxItem(Base):
    """One piece of referral news in a facility's in-app inbox, delivered from the outbox exactly once."""

    __tablename__ = "referral_inbox"
    __table_args__ = (UniqueConstraint("event_id", "facility_id", name="uq_referral_inbox_event_facility"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the outbox event it came from
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    topic: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
