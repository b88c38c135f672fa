"""Tables of the master patient index: golden persons, the index of Patient records, link history, review queue.

A person (mpi_person) groups Patient records; the current grouping is mpi_record.person_id, and every change to it
is a row in mpi_link (append-only), so "who put these two records together, when, and on what evidence" is always
answerable, and an unmerge restores what was there. Nothing here ever deletes a Patient or a person.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class MpiPerson(Base):
    """The golden person (rendered as a FHIR Person whose links point at the Patient records)."""

    __tablename__ = "mpi_person"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | merged
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mpi_person.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MpiRecord(Base):
    """One Patient resource in the index: its matching features and the person it currently belongs to."""

    __tablename__ = "mpi_record"
    __table_args__ = (
        Index("ix_mpi_record_name_fuzzy_birth_year", "name_fuzzy", "birth_year"),
        Index("ix_mpi_record_name_fuzzy_month_day", "name_fuzzy", "month_day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    patient_ref: Mapped[str] = mapped_column(String(80), unique=True)  # "Patient/<id>"
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mpi_person.id"), index=True)
    # How the record came to its person: initial | exact-id | probabilistic | manual | review
    link_method: Mapped[str] = mapped_column(String(20), default="initial")
    # A person decided this record's grouping: automatic re-runs leave it where it is.
    pinned: Mapped[bool] = mapped_column(default=False)
    resident_id: Mapped[str | None] = mapped_column(String(18), index=True)
    name: Mapped[str | None] = mapped_column(String(64), index=True)
    name_pinyin: Mapped[str | None] = mapped_column(String(128))
    name_fuzzy: Mapped[str | None] = mapped_column(String(128))
    surname_fuzzy: Mapped[str | None] = mapped_column(String(32))
    name_variants: Mapped[list[str]] = mapped_column(JSONType, default=list)
    dob: Mapped[str | None] = mapped_column(String(8), index=True)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    month_day: Mapped[str | None] = mapped_column(String(4))
    gender: Mapped[str | None] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    county: Mapped[str | None] = mapped_column(String(6))
    town: Mapped[str | None] = mapped_column(String(24))
    facility: Mapped[str | None] = mapped_column(String(64))
    display: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # what a reviewer sees side by side
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MpiLink(Base):
    """History of the grouping: one row each time a record joins or leaves a person. Never updated, never deleted."""

    __tablename__ = "mpi_link"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mpi_person.id"), index=True)
    patient_ref: Mapped[str] = mapped_column(String(80), index=True)
    action: Mapped[str] = mapped_column(String(12))  # link | unlink
    method: Mapped[str] = mapped_column(String(20))  # initial | exact-id | probabilistic | manual | review
    score: Mapped[float | None] = mapped_column(Float)
    matched_ref: Mapped[str | None] = mapped_column(String(80))  # the record whose match caused the link
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MpiReview(Base):
    """A pair the machine could not decide: a person links them or keeps them apart."""

    __tablename__ = "mpi_review"
    __table_args__ = (UniqueConstraint("left_ref", "right_ref", name="uq_mpi_review_pair"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    left_ref: Mapped[str] = mapped_column(String(80), index=True)
    right_ref: Mapped[str] = mapped_column(String(80), index=True)
    score: Mapped[float] = mapped_column(Float)
    vector: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    # open | linked | separate | withdrawn (a record of the pair was deleted from the store)
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
