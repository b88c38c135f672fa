"""The audit trail: every read and write of person-level data leaves a row, in the same transaction."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from yilian.db import new_id, utcnow
from yilian.security.actor import Actor
from yilian.security.models import AuditEvent

_INSERT = insert(cast(Table, AuditEvent.__table__))


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    patient: str | None = None,
    resource: str | None = None,
    reason: str | None = None,
    break_glass: bool = False,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> None:
    """One INSERT on the session's connection, now: inside the caller's transaction (it commits or rolls back with
    the read or write it records) without the ORM's unit-of-work bookkeeping, which cost more than the row on every
    FHIR read."""
    session.execute(
        _INSERT,
        {
            "id": new_id(),
            "at": utcnow(),
            "user_id": actor.user_id,
            "username": actor.username,
            "role": str(actor.role),
            "facility_id": actor.facility_id,
            "action": action,
            "patient_ref": patient,
            "resource_ref": resource,
            "reason": reason,
            "break_glass": break_glass,
            "outcome": outcome,
            "detail": detail,
        },
    )


def for_patient(session: Session, patient_refs: list[str], limit: int = 200) -> list[AuditEvent]:
    """Who saw what of these patient records, newest first (shown to the patient's own facility)."""
    if not patient_refs:
        return []
    stmt = (
        select(AuditEvent).where(AuditEvent.patient_ref.in_(patient_refs)).order_by(AuditEvent.at.desc()).limit(limit)
    )
    return list(session.scalars(stmt))
