"""The audit trail: every read and write of person-level data leaves a row, in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.security.actor import Actor
from yilian.security.models import AuditEvent


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
) -> AuditEvent:
    event = AuditEvent(
        user_id=actor.user_id,
        username=actor.username,
        role=str(actor.role),
        facility_id=actor.facility_id,
        action=action,
        patient_ref=patient,
        resource_ref=resource,
        reason=reason,
        break_glass=break_glass,
        outcome=outcome,
        detail=detail,
    )
    session.add(event)
    return event


def for_patient(session: Session, patient_refs: list[str], limit: int = 200) -> list[AuditEvent]:
    """Who saw what of these patient records, newest first (shown to the patient's own facility)."""
    if not patient_refs:
        return []
    stmt = (
        select(AuditEvent).where(AuditEvent.patient_ref.in_(patient_refs)).order_by(AuditEvent.at.desc()).limit(limit)
    )
    return list(session.scalars(stmt))
