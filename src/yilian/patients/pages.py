"""HTML pages of the shared record: search a patient across the consortium, the person page with the records of every
member facility, break-glass, consent, and the review queue of possible duplicates."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.db import unit_of_work
from yilian.errors import Forbidden, YilianError
from yilian.patients import record, service
from yilian.patients.models import MpiReview
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, JURISDICTION_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)

READER_ROLES = frozenset(
    str(r) for r in CLINICAL_ROLES | JURISDICTION_ROLES | {Role.CONSORTIUM_ADMIN, Role.SYSTEM_ADMIN}
)
REVIEWERS = frozenset(str(r) for r in service.REVIEWER_ROLES)
NAV = [
    (40, NavItem("/patients", "Patients", READER_ROLES)),
    (45, NavItem("/patients/review", "Duplicate review", REVIEWERS)),
]

# Enum values → English msgids (Chinese in i18n/zh.po).
LABELS: dict[str, str] = {
    "male": "Male",
    "female": "Female",
    "other": "Other",
    "unknown": "Unknown",
    "initial": "first registration",
    "exact-id": "same ID card",
    "probabilistic": "matched on name, birth date, phone, address",
    "manual": "decided by a reviewer",
    "review": "linked after review",
    "link": "joined",
    "unlink": "left",
    "national_regional_centre": "National regional medical centre",
    "tertiary": "Provincial / city tertiary hospital",
    "county_hospital": "County hospital",
    "township_centre": "Township / community health centre",
    "village_clinic": "Village clinic / community station",
    "Encounter": "Visit",
    "Condition": "Diagnosis",
    "Observation": "Result",
    "Procedure": "Procedure",
    "MedicationRequest": "Medication",
    "DiagnosticReport": "Report",
    "Immunization": "Immunization",
    "AllergyIntolerance": "Allergy",
    "resident_id": "same ID card",
    "name": "Name",
    "dob": "Birth date",
    "gender": "Gender",
    "phone": "Phone",
    "address": "Address",
}
FIELDS = ("name", "gender", "birthDate", "residentId", "phone", "address", "facility")
FIELD_LABELS = {
    "name": "Name",
    "gender": "Gender",
    "birthDate": "Birth date",
    "residentId": "ID card",
    "phone": "Phone",
    "address": "Address",
    "facility": "Facility",
}


def _ctx(**values: object) -> dict[str, object]:
    return {"label": lambda v: LABELS.get(str(v), str(v)), "field_labels": FIELD_LABELS, "fields": FIELDS, **values}


def index_panel(session: Session, actor: Actor) -> Panel | None:
    """Home: search the shared record; reviewers also see how many possible duplicates wait for them."""
    if str(actor.role) not in READER_ROLES:
        return None
    waiting = None
    if str(actor.role) in REVIEWERS:
        waiting = int(
            session.scalar(select(func.count()).select_from(MpiReview).where(MpiReview.status == "open")) or 0
        )
    return Panel("patients/home_panel.html", _ctx(waiting=waiting))


@router.get("/patients")
def search_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    hits, error = None, None
    if q:
        try:
            with unit_of_work() as session:
                hits = record.search(session, actor, q)
        except YilianError as exc:
            if isinstance(exc, Forbidden):
                raise
            error = exc
    elif str(actor.role) not in READER_ROLES:
        raise Forbidden("your role does not read patient records")
    status = error.status if error else 200
    return render(request, "patients/search.html", _ctx(q=q or "", hits=hits, error=error), status=status)


@router.get("/patients/records/{patient_id}")
def record_page(patient_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with unit_of_work() as session:
        service.sync_index(session)
        view = service.person_of(session, f"Patient/{patient_id[:64]}")
        person = record.resolve_person(session, view.id)
    return RedirectResponse(f"/patients/persons/{person.id}", status_code=303)


@router.get("/patients/persons/{person_id}")
def person_page(request: Request, person_id: uuid.UUID, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    try:
        with unit_of_work() as session:
            pr = record.person_record(session, actor, person_id)
    except Forbidden as exc:
        if exc.details.get("needs_break_glass"):
            ctx = _ctx(person_id=exc.details["person_id"], why=exc.message, error=None)
            return render(request, "patients/break_glass.html", ctx, status=403)
        raise
    if pr.id != person_id:  # merged into another person since the link was made
        return RedirectResponse(f"/patients/persons/{pr.id}", status_code=303)
    return render(request, "patients/person.html", _ctx(p=pr))


@router.post("/patients/persons/{person_id}/break-glass")
def break_glass(
    request: Request,
    person_id: uuid.UUID,
    actor: Annotated[Actor, Depends(current_actor)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        with unit_of_work() as session:
            person = record.break_glass(session, actor, person_id, reason)
    except YilianError as exc:
        if exc.field != "reason":
            raise
        ctx = _ctx(person_id=str(person_id), why="", error=exc)
        return render(request, "patients/break_glass.html", ctx, status=exc.status)
    return RedirectResponse(f"/patients/persons/{person.id}", status_code=303)


@router.post("/patients/persons/{person_id}/consent")
def consent(
    person_id: uuid.UUID,
    actor: Annotated[Actor, Depends(current_actor)],
    share: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    with unit_of_work() as session:
        record.set_sharing(session, actor, person_id, share == "yes")
    return RedirectResponse(f"/patients/persons/{person_id}", status_code=303)


@router.post("/patients/persons/{person_id}/unmerge")
def unmerge(
    person_id: uuid.UUID,
    actor: Annotated[Actor, Depends(current_actor)],
    ref: Annotated[str, Form(max_length=80)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    with unit_of_work() as session:
        target = record.unmerge(session, actor, person_id, [ref], reason or None)
    return RedirectResponse(f"/patients/persons/{target.id}", status_code=303)


@router.get("/patients/review")
def review_page(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with unit_of_work() as session:
        items = record.review_items(session, actor, limit=50)
    return render(request, "patients/review.html", _ctx(items=items))


@router.post("/patients/review/{review_id}")
def review_decision(
    review_id: uuid.UUID,
    actor: Annotated[Actor, Depends(current_actor)],
    decision: Annotated[str, Form(pattern="^(link|separate)$")],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    with unit_of_work() as session:
        record.decide_review(session, actor, review_id, decision, reason=reason or None)
    return RedirectResponse("/patients/review", status_code=303)
