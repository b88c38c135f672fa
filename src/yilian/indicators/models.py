"""Recorded assessments of the yes/no monitoring items (资源统一管理, 民主决策, 服务协同联动): a commission's finding for
one scope and year, with who recorded it and on what evidence. Numbers come from activity; these come from people."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, UTCDateTime, new_id, utcnow


class Assessment(Base):
    __tablename__ = "indicator_assessment"
    __table_args__ = (UniqueConstraint("indicator_id", "scope", "year"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    indicator_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64))  # county code or consortium id
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
