"""FHIR store tables: one row per logical resource (the current pointer), one row per version (the JSON), and narrow
search-index tables rebuilt for a resource whenever its current version changes (same transaction).

The index tables carry `res_type` so that every search filters on (type, param, value) first: the composite indexes
start with those columns and end with the resource key, which makes them covering for the usual lookups.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JSONType, UTCDateTime, new_id, utcnow


class FhirResource(Base):
    """The logical resource: its type, id and which version is current (a deleted resource keeps its row)."""

    __tablename__ = "fhir_resource"
    __table_args__ = (
        UniqueConstraint("res_type", "res_id", name="uq_fhir_resource_type_id"),
        Index("ix_fhir_resource_type_updated", "res_type", "last_updated", "res_id"),
    )

    pk: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class FhirResourceVersion(Base):
    """Every version ever written, as sent (plus meta). A delete is a version with `deleted` and no body."""

    __tablename__ = "fhir_resource_version"

    resource_pk: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("fhir_resource.pk", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str] = mapped_column(String(8), default="PUT")  # POST | PUT | DELETE (for history bundles)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


# Index rows have no key of their own and no foreign key: they are only ever written and deleted by the store together
# with their resource (same transaction) and found by (res_type, param, value) or by resource_pk. A primary-key B-tree
# and a foreign-key check per row cost the bulk import about a third of PostgreSQL's time per index row and bought
# nothing. The ORM still wants a key to map a class: it is told one, and never loads these rows as objects.
_INDEX_ROW: dict[str, Any] = {"primary_key": ["resource_pk", "param"]}


class FhirIdxToken(Base):
    __tablename__ = "fhir_idx_token"
    __mapper_args__ = _INDEX_ROW
    __table_args__ = (
        # patient_id after the value: a patient's search by code finds its rows in one range, and a search without
        # a patient still uses the (res_type, param, code, system) prefix.
        Index("ix_fhir_idx_token_lookup", "res_type", "param", "code", "system", "patient_id", "resource_pk"),
        Index("ix_fhir_idx_token_resource", "resource_pk"),
    )

    resource_pk: Mapped[uuid.UUID] = mapped_column(Uuid)
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str] = mapped_column(String(255))
    # The target id of the resource's `patient` reference (NULL without one; one row per patient if it names several).
    patient_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class FhirIdxString(Base):
    __tablename__ = "fhir_idx_string"
    __mapper_args__ = _INDEX_ROW
    __table_args__ = (
        # varchar_pattern_ops lets PostgreSQL use the index for LIKE 'prefix%' whatever the database collation.
        Index(
            "ix_fhir_idx_string_lookup",
            "res_type",
            "param",
            "value_norm",
            "resource_pk",
            postgresql_ops={"value_norm": "varchar_pattern_ops"},
        ),
        Index("ix_fhir_idx_string_resource", "resource_pk"),
    )

    resource_pk: Mapped[uuid.UUID] = mapped_column(Uuid)
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    value_norm: Mapped[str] = mapped_column(String(255))  # lower-case, accents removed: prefix and :contains
    value_exact: Mapped[str] = mapped_column(String(255))  # as written: :exact


class FhirIdxDate(Base):
    __tablename__ = "fhir_idx_date"
    __mapper_args__ = _INDEX_ROW
    __table_args__ = (
        Index("ix_fhir_idx_date_lookup", "res_type", "param", "low", "high", "resource_pk"),
        Index("ix_fhir_idx_date_patient", "res_type", "param", "patient_id", "low", "high", "resource_pk"),
        Index("ix_fhir_idx_date_resource", "resource_pk"),
    )

    resource_pk: Mapped[uuid.UUID] = mapped_column(Uuid)
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    low: Mapped[datetime] = mapped_column(UTCDateTime)  # inclusive
    high: Mapped[datetime] = mapped_column(UTCDateTime)  # inclusive (a partial date covers its whole period)
    patient_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # as in FhirIdxToken


class FhirIdxReference(Base):
    __tablename__ = "fhir_idx_reference"
    __mapper_args__ = _INDEX_ROW
    __table_args__ = (
        Index("ix_fhir_idx_reference_lookup", "res_type", "param", "target_id", "target_type", "resource_pk"),
        # $everything, _revinclude: who points at this resource?
        Index("ix_fhir_idx_reference_target", "target_id", "target_type", "param"),
        Index("ix_fhir_idx_reference_resource", "resource_pk"),
    )

    resource_pk: Mapped[uuid.UUID] = mapped_column(Uuid)
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(128))


class FhirIdxQuantity(Base):
    __tablename__ = "fhir_idx_quantity"
    __mapper_args__ = _INDEX_ROW
    __table_args__ = (
        Index("ix_fhir_idx_quantity_lookup", "res_type", "param", "value", "resource_pk"),
        Index("ix_fhir_idx_quantity_resource", "resource_pk"),
    )

    resource_pk: Mapped[uuid.UUID] = mapped_column(Uuid)
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)


class FhirImportCheckpoint(Base):
    """How far `yilian fhir import` got in one file: a re-run skips what is done."""

    __tablename__ = "fhir_import_checkpoint"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(
        Integer, default=0
    )  # file size when the checkpoint was written (changed file: redo)
    done: Mapped[int] = mapped_column(Integer, default=0)  # lines (NDJSON) or entries (Bundle) already handled
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FhirExportJob(Base):
    """An asynchronous $export: status polled at /fhir/$export-status/<id>; NDJSON files under the data dir."""

    __tablename__ = "fhir_export_job"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64))
    request_url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), default="accepted")  # accepted | running | done | failed
    types: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    output: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
