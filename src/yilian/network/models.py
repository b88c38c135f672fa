"""Tables of the registry: divisions, facilities, consortia and their members, grids, practitioners and their roles."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class Division(Base):
    """An administrative division by its GB/T 2260 code: province (2 digits), city (4), county (6), township (9)."""

    __tablename__ = "division"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(12), nullable=True, index=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Townships have no published coordinates: they are placed around their county seat and flagged here.
    position_approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    # 7th national census (2020), counties only; the full row (age bands, shares) stays in `census`.
    population: Mapped[int | None] = mapped_column(Integer, nullable=True)
    urban: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rural: Mapped[int | None] = mapped_column(Integer, nullable=True)
    households: Mapped[int | None] = mapped_column(Integer, nullable=True)
    census: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class Facility(Base):
    __tablename__ = "facility"
    __table_args__ = (
        Index("ix_facility_level_division", "level", "division_code"),
        Index("ix_facility_division_code", "division_code", postgresql_ops={"division_code": "varchar_pattern_ops"}),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    level: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32), default="general")
    ownership: Mapped[str] = mapped_column(String(16), default="public")
    division_code: Mapped[str] = mapped_column(String(12), ForeignKey("division.code"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facility.id"), nullable=True)
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    position_approximate: Mapped[bool] = mapped_column(Boolean, default=True)
    beds: Mapped[int] = mapped_column(Integer, default=0)
    doctors: Mapped[int] = mapped_column(Integer, default=0)
    nurses: Mapped[int] = mapped_column(Integer, default=0)
    staff_total: Mapped[int] = mapped_column(Integer, default=0)
    departments: Mapped[list[str]] = mapped_column(JSONType, default=list)
    fourth_level_surgery: Mapped[bool] = mapped_column(Boolean, default=False)
    chest_pain_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    stroke_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    trauma_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    critical_maternal_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    critical_neonatal_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    imaging_reading_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    ecg_reading_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    lab_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    pathology_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    sterile_supply: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Consortium(Base):
    """A partnership of facilities (医联体) in one of four forms, with a lead facility."""

    __tablename__ = "consortium"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    form: Mapped[str] = mapped_column(String(32), index=True)
    lead_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    # The area it serves: a county for a county medical community, a city for an urban medical group.
    division_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("division.code"), nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    specialty: Mapped[str | None] = mapped_column(String(64), nullable=True)  # specialist alliances
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConsortiumMember(Base):
    __tablename__ = "consortium_member"
    __table_args__ = (UniqueConstraint("consortium_id", "facility_id", name="uq_consortium_member_facility"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    consortium_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("consortium.id", ondelete="CASCADE"))
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    membership: Mapped[str] = mapped_column(String(8), default="tight")
    role: Mapped[str] = mapped_column(String(32), default="member")
    joined_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Grid(Base):
    """A grid (网格) of a city's urban medical groups: a set of townships/streets served by one group."""

    __tablename__ = "grid"
    __table_args__ = (UniqueConstraint("city_code", "name", name="uq_grid_city_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    city_code: Mapped[str] = mapped_column(String(4), ForeignKey("division.code"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    consortium_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("consortium.id"), index=True)


class GridTownship(Base):
    """A township in a grid. Unique per city: the database itself refuses a township in two grids of one city."""

    __tablename__ = "grid_township"
    __table_args__ = (UniqueConstraint("city_code", "township_code", name="uq_grid_township_city_township"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    grid_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    city_code: Mapped[str] = mapped_column(String(4))
    township_code: Mapped[str] = mapped_column(String(12), ForeignKey("division.code"))


class Practitioner(Base):
    __tablename__ = "practitioner"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), index=True)
    gender: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(24))
    specialty: Mapped[str | None] = mapped_column(String(64), nullable=True)
    home_facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PractitionerRole(Base):
    """A practitioner at a facility for a period: the home posting, or a posting elsewhere (expert outreach)."""

    __tablename__ = "practitioner_role"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("practitioner.id", ondelete="CASCADE"), index=True
    )
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facility.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="home")
    specialty: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[date | None] = mapped_column(Date, nullable=True)
    end: Mapped[date | None] = mapped_column(Date, nullable=True)
