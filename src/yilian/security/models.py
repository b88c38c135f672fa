"""Users and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    # A facility user works at one facility; a jurisdiction user (official, insurer) at a division.
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    division_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    # The registry practitioner this account belongs to (a clinician's own account). Rules that hinge on "is this
    # the doctor" (an expert's clinic list) compare this id, never the display name, which anybody may share.
    # The kernel knows no practitioners: the network domain checks the id when it links an account.
    practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Who read or changed what, when and why. Written in the same transaction as the read or write it records."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_patient_at", "patient_ref", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    action: Mapped[str] = mapped_column(String(64))  # e.g. "patient.read", "fhir.search", "referral.submit"
    patient_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)  # "Patient/<id>"
    resource_ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # break-glass reason, purpose of use
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
