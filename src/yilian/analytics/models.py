"""The registry of materialised views: which Parquet file holds each view, built from which definition and how far
into the snapshot. The indicator engine finds its input tables here (`analytics.materialize.open_views`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, UTCDateTime, utcnow


class MaterializedView(Base):
    __tablename__ = "analytics_materialized_view"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))  # of the definition the rows were computed with
    source: Mapped[str] = mapped_column(String(255))  # "shipped" or ViewDefinition/<id>/_history/<version>
    path: Mapped[str] = mapped_column(String(1024))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    snapshot_part: Mapped[int] = mapped_column(Integer, default=0)  # the last snapshot part folded in
    materialized_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
