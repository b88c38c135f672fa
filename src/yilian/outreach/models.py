"""Outreach tables: programmes, postings, experts' duty and leave days, demand, rosters and their entries (with locks).

Practitioners and facilities belong to the network registry; these tables refer to them by id (foreign keys) and the
domain reaches them through `yilian.network.service`, never its models.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
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
