"""JSON API under /api/v1/patients: register, search, the person with all linked records, review, merge, consent."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from yilian.db import unit_of_work
from yilian.patients import fhir, record, service
from yilian.security.actor import Actor
from yilian.web.auth import current_actor

router = APIRouter(prefix="/api/v1/patients", tags=["patients"])
CurrentActor = Annotated[Actor, Depends(current_actor)]


class PatientIn(BaseModel):
    """A registration at a facility (the caller's own unless a system administrator names another)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="In Chinese characters, surname first")
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birth_date: date | None = None
    resident_id: str | None = Field(default=None, max_length=18, description="居民身份证号 (checked, GB 11643)")
    phone: str | None = Field(default=None, max_length=20)
    address: str | None = Field(default=None, max_length=200)
    mrn: str | None = Field(default=None, max_length=40, description="The facility's medical record number")
    facility: str | None = Field(default=None, max_length=64, description="Facility id or code")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["link", "separate"]
    reason: str | None = Field(default=None, max_length=500)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    absorb: uuid.UUID = Field(description="The person whose records move into this one")
    reason: str | None = Field(default=None, max_length=500)


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[Annotated[str, Field(pattern=r"^Patient/[A-Za-z0-9\-.]{1,64}$")]] = Field(min_length=1, max_length=50)
    reason: str | None = Field(default=None, max_length=500)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_outside_consortium: bool


class BreakGlassIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=500)


def _match(m: service.Match) -> dict[str, Any]:
    return {
        "record": m.score.right,
        "person": str(m.person_id),
        "score": round(m.score.probability, 6),
        "grade": m.grade,
        "route": m.route,
        "method": m.score.method,
        "vector": m.score.vector,
    }


@router.post("", status_code=201)
def register(body: PatientIn, actor: CurrentActor) -> dict[str, Any]:
    """Register a patient: stored as a FHIR Patient and matched against the index in the same transaction.

    `outcome` is linked (joined a known person), review (a person must decide), or new."""
    with unit_of_work() as session:
        reg = record.register(session, actor, body.model_dump(mode="json"))
        return {
            "patient": reg.patient,
            "record": reg.result.patient_ref,
            "person": str(reg.result.person_id),
            "outcome": reg.result.outcome,
            "matches": [_match(m) for m in reg.result.matches[:10]],
        }


@router.get("")
def search(actor: CurrentActor, q: Annotated[str, Query(max_length=64, description="Name, pinyin, ID card or phone")]):
    """Persons across the consortium whose records match; records of restricted patients show names only."""
    with unit_of_work() as session:
        hits = record.search(session, actor, q)
        return {
            "items": [
                {
                    "person": str(h.person_id),
                    "name": h.name,
                    "gender": h.gender,
                    "birth_date": h.birth_date,
                    "records": h.records,
                    "needs_break_glass": not h.access.allowed,
                }
                for h in hits
            ],
            "kind": record.query_kind(q),
        }


def _person_out(pr: record.PersonRecord) -> dict[str, Any]:
    return {
        "id": str(pr.id),
        "status": pr.status,
        "name": pr.name,
        "gender": pr.gender,
        "birth_date": pr.birth_date,
        "resident_id": pr.resident_id,
        "phone": pr.phone,
        "restricted": pr.restricted,
        "break_glass": pr.access.broke_glass,
        "records": pr.records,
        "links": [
            {
                "record": h.patient_ref,
                "person": str(h.person_id),
                "action": h.action,
                "method": h.method,
                "score": h.score,
                "matched": h.matched_ref,
                "by": h.actor,
                "reason": h.reason,
                "at": h.at.isoformat(),
            }
            for h in pr.history
        ],
        "timeline": [
            {
                "date": t.date,
                "type": t.kind,
                "text": t.text,
                "status": t.status,
                "ref": t.ref,
                "record": t.patient_ref,
                "facility": t.facility,
                "level": t.level,
            }
            for t in pr.timeline
        ],
        "audit": None
        if pr.audit is None
        else [
            {
                "at": a.at.isoformat(),
                "user": a.username,
                "role": a.role,
                "action": a.action,
                "record": a.patient_ref,
                "reason": a.reason,
                "break_glass": a.break_glass,
                "outcome": a.outcome,
            }
            for a in pr.audit
        ],
    }


@router.get("/persons/{person_id}")
def get_person(person_id: uuid.UUID, actor: CurrentActor) -> dict[str, Any]:
    """One person: identity, every linked record with its facility, links with scores, timeline, and (for the
    patient's own facility) who saw what. 403 with field `break_glass_reason` when a reason is needed first."""
    with unit_of_work() as session:
        return _person_out(record.person_record(session, actor, person_id))


@router.get("/persons/{person_id}/fhir")
def get_person_fhir(person_id: uuid.UUID, actor: CurrentActor) -> dict[str, Any]:
    """The golden record as a FHIR Person whose links point at each Patient record."""
    with unit_of_work() as session:
        return fhir.person_resource(session, actor, person_id)


@router.post("/persons/{person_id}/break-glass")
def post_break_glass(person_id: uuid.UUID, body: BreakGlassIn, actor: CurrentActor) -> dict[str, Any]:
    """Say why you must read a record outside your scope; audited and shown to the patient's facility."""
    with unit_of_work() as session:
        person = record.break_glass(session, actor, person_id, body.reason)
        return {"person": str(person.id), "hours": record.BREAK_GLASS_HOURS}


@router.put("/persons/{person_id}/consent")
def put_consent(person_id: uuid.UUID, body: ConsentIn, actor: CurrentActor) -> dict[str, Any]:
    """The patient's choice to restrict sharing to their consortium (recorded as a FHIR Consent)."""
    with unit_of_work() as session:
        share = record.set_sharing(session, actor, person_id, body.share_outside_consortium)
        return {"person": str(person_id), "share_outside_consortium": share}


@router.post("/persons/{person_id}/merge")
def post_merge(person_id: uuid.UUID, body: MergeIn, actor: CurrentActor) -> dict[str, Any]:
    """Move every record of `absorb` into this person (reviewers only; history kept, nothing deleted)."""
    with unit_of_work() as session:
        kept = record.merge(session, actor, record.resolve_person(session, person_id).id, body.absorb, body.reason)
        return {"person": str(kept.id), "absorbed": str(body.absorb)}


@router.post("/persons/{person_id}/unmerge")
def post_unmerge(person_id: uuid.UUID, body: UnmergeIn, actor: CurrentActor) -> dict[str, Any]:
    """Take records out of this person into a person of their own; the pair is never joined again by a re-run."""
    with unit_of_work() as session:
        target = record.unmerge(session, actor, person_id, body.records, body.reason)
        return {"person": str(person_id), "separated_into": str(target.id)}


@router.get("/records/{patient_id}")
def get_record_person(patient_id: str, actor: CurrentActor) -> dict[str, Any]:
    """The person a Patient record belongs to (follow `person` to read it)."""
    with unit_of_work() as session:
        service.sync_index(session)
        view = service.person_of(session, f"Patient/{patient_id[:64]}")
        return {"record": f"Patient/{patient_id}", "person": str(record.resolve_person(session, view.id).id)}


@router.get("/review")
def get_review(
    actor: CurrentActor,
    status: Annotated[Literal["open", "linked", "separate"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Pairs the matcher could not decide, most likely first, each side as registered (reviewers only)."""
    with unit_of_work() as session:
        items = record.review_items(session, actor, status=status, limit=limit)
        return {
            "items": [
                {
                    "id": str(i.id),
                    "score": round(i.score, 6),
                    "vector": i.vector,
                    "status": i.status,
                    "left": i.left,
                    "right": i.right,
                }
                for i in items
            ]
        }


@router.post("/review/{review_id}")
def post_review(review_id: uuid.UUID, body: Decision, actor: CurrentActor) -> dict[str, Any]:
    """Link the pair (one person) or keep them apart for good (not a match). Audited."""
    with unit_of_work() as session:
        review = record.decide_review(session, actor, review_id, body.decision, reason=body.reason)
        left = service.person_of(session, review.left_ref)
        return {"id": str(review.id), "status": review.status, "person": str(left.id)}
