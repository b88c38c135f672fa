"""JSON routes under /api/v1/referrals, and the FHIR create interceptor for Task (an outside system's Task + its
ServiceRequest start the same workflow as the UI). Routes only open a unit of work and call the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from yilian.db import read_session, unit_of_work
from yilian.errors import Forbidden, Invalid
from yilian.fhir import store
from yilian.referrals import fhir, rules, service
from yilian.referrals.models import Referral
from yilian.referrals.schemas import (
    BookIn,
    DischargeIn,
    DownReferIn,
    EventOut,
    OfferIn,
    ReferralIn,
    ReferralOut,
    ReferralPage,
    SlotOut,
    SlotsIn,
    StepIn,
    TimesIn,
)
from yilian.security import scope
from yilian.security.actor import Actor
from yilian.security.roles import Role
from yilian.web.auth import current_actor

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])
ActorDep = Annotated[Actor, Depends(current_actor)]


def to_out(session: Session, actor: Actor, r: Referral, *, full: bool = False) -> ReferralOut:
    names = service.facility_names(session, [r.sender_facility_id])
    return ReferralOut(
        id=r.id,
        patient=r.patient_ref,
        patient_name=r.patient_name,
        direction=r.direction,
        urgency=r.urgency,
        green_channel=r.green_channel,
        state=r.state,
        reason=r.reason,
        diagnosis_codes=r.diagnosis_codes,
        criteria=r.criteria,
        summary=r.summary,
        record_refs=r.record_refs,
        service=r.service,
        sender_facility_id=r.sender_facility_id,
        sender=names.get(r.sender_facility_id, ""),
        receiver_facility_id=r.receiver_facility_id,
        receiver_department=r.receiver_department,
        down_facility_id=r.down_facility_id,
        routing=r.routing,
        appointment=r.appointment,
        care_plan=r.care_plan,
        follow_up=r.follow_up,
        stable=r.stable,
        times=r.times,
        insurance=r.insurance,
        sla_due_at=r.sla_due_at,
        escalated_at=r.escalated_at,
        decline_reason=r.decline_reason,
        task=f"Task/{r.task_id}",
        service_request=f"ServiceRequest/{r.service_request_id}",
        allowed_actions=service.allowed_actions(actor, r),
        history=[EventOut.model_validate(e, from_attributes=True) for e in service.history(session, r)] if full else [],
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


@router.post("", status_code=201, response_model=ReferralOut)
def create_referral(body: ReferralIn, actor: ActorDep) -> Response:
    """Send a referral (or keep it as a draft with `draft: true`); the router ranks receivers at once."""
    with unit_of_work() as session:
        r = service.create(session, actor, body, publish=body.draft)
        if not body.draft:
            service.submit(session, actor, r)
        out = to_out(session, actor, r, full=True)
    # The answer is serialised here, in this worker thread: returned as a model, FastAPI would validate it again
    # and serialise it in a second trip through the thread pool, on the busiest route of the referral centre.
    return Response(out.model_dump_json(), status_code=201, media_type="application/json")


@router.get("")
def list_referrals(
    actor: ActorDep,
    queue: str | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReferralPage:
    """Referrals the caller may see; `queue` picks a work queue (sent, to_triage, overdue, escalated, offered,
    incoming, down_referral_due, follow_up, open)."""
    with unit_of_work() as session:
        items, total = service.list_referrals(session, actor, queue=queue, state=state, limit=limit, offset=offset)
        return ReferralPage(items=[to_out(session, actor, r) for r in items], total=total, offset=offset, limit=limit)


@router.get("/criteria")
def criteria(
    actor: ActorDep,
    patient: str,
    direction: str | None = None,
    systolic: float | None = None,
    diastolic: float | None = None,
    conditions: Annotated[list[str] | None, Query()] = None,
    flags: Annotated[list[str] | None, Query()] = None,
    service_needed: str | None = None,
) -> list[dict[str, Any]]:
    """The referral criteria a patient meets, each with the observation that triggered it."""
    if direction not in (None, "up", "down"):
        raise Invalid("direction must be up or down", field="direction")
    obs = []
    if systolic is not None:
        obs.append(rules.Observation(service.LOINC_SYSTOLIC, systolic, "mm[Hg]"))
    if diastolic is not None:
        obs.append(rules.Observation(service.LOINC_DIASTOLIC, diastolic, "mm[Hg]"))
    with unit_of_work() as session:
        return service.criteria_for_patient(
            session,
            actor,
            patient,
            direction=direction,
            conditions=conditions or [],
            observations=obs,
            flags=flags or [],
            needed_service=service_needed,
        )


@router.get("/route")
def route(
    actor: ActorDep,
    service_needed: Annotated[str | None, Query(alias="service")] = None,
    urgency: str = "routine",
    green_channel: str | None = None,
    patient_choice: uuid.UUID | None = None,
    outside_reason: str | None = None,
    facility_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Where the router would send a patient from the caller's facility (or `facility_id`), with scores per factor."""
    if urgency not in service.URGENCIES:
        raise Invalid(f"urgency must be one of {', '.join(service.URGENCIES)}", field="urgency")
    if green_channel and green_channel not in service.GREEN_CHANNELS:
        raise Invalid(f"green_channel must be one of {', '.join(service.GREEN_CHANNELS)}", field="green_channel")
    with read_session() as session:
        sender = service.place(session, facility_id or actor.facility_id, field="facility_id")
        return service.rank_receivers(
            session,
            sender,
            service=service_needed,
            urgency=urgency,
            green_channel=green_channel,
            patient_choice=patient_choice,
            outside_reason=outside_reason,
        )


@router.post("/slots", status_code=201)
def publish_slots(body: SlotsIn, actor: ActorDep) -> list[SlotOut]:
    """A department publishes outpatient slots or beds for referred patients."""
    with unit_of_work() as session:
        slots = service.publish_slots(
            session,
            actor,
            department=body.department,
            start=body.start,
            count=body.count,
            minutes=body.minutes,
            kind=body.kind,
            facility_id=body.facility_id,
        )
        return [SlotOut.model_validate(s, from_attributes=True) for s in slots]


@router.get("/slots")
def list_slots(actor: ActorDep, facility_id: uuid.UUID, department: str | None = None) -> list[SlotOut]:
    with read_session() as session:
        return [
            SlotOut.model_validate(s, from_attributes=True)
            for s in service.free_slots(session, facility_id, department, limit=100)
        ]


@router.post("/sla/run")
def run_sla(actor: ActorDep) -> dict[str, Any]:
    """Run the SLA timers now (the worker does this every minute): escalate overdue referrals, expire stale ones."""
    if actor.role not in (Role.SYSTEM_ADMIN, Role.REFERRAL_COORDINATOR):
        raise Forbidden("only the referral centre or an administrator runs the SLA timers", field="role")
    with unit_of_work() as session:
        escalated = service.escalate_overdue(session)
        return {"escalated": [str(r.id) for r in escalated]}


@router.get("/stats/monthly")
def monthly(actor: ActorDep, division: str | None = None) -> list[dict[str, Any]]:
    """Referral slips per sending facility per month (aggregates for health commissions and insurers)."""
    prefix = scope.division_prefix(actor)
    if prefix is None:
        raise Forbidden("monthly counts are for health commissions, insurers and administrators", field="role")
    if division:
        if not scope.in_jurisdiction(actor, division):
            raise Forbidden(f"division {division} is outside your jurisdiction", field="division")
        prefix = division
    with read_session() as session:
        return service.monthly_counts(session, actor, prefix)


@router.get("/inbox")
def inbox(actor: ActorDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Referral news for the caller's facility (delivered from the outbox by the worker)."""
    with read_session() as session:
        return [
            {
                "referral": str(i.referral_id),
                "topic": i.topic,
                "state": i.state,
                "at": i.created_at.isoformat(),
                "event": str(i.event_id),
            }
            for i in service.inbox(session, actor, limit)
        ]


@router.get("/{referral_id}")
def get_referral(referral_id: str, actor: ActorDep) -> ReferralOut:
    """A referral with its history and the steps the caller may take now."""
    with unit_of_work() as session:
        return to_out(session, actor, service.read(session, actor, referral_id), full=True)


@router.post("/{referral_id}/offer")
def offer(referral_id: str, body: OfferIn, actor: ActorDep) -> ReferralOut:
    with unit_of_work() as session:
        r = service.offer(session, actor, referral_id, body.facility_id, body.department, body.outside_reason)
        return to_out(session, actor, r, full=True)


@router.post("/{referral_id}/book")
def book(referral_id: str, body: BookIn, actor: ActorDep) -> ReferralOut:
    with unit_of_work() as session:
        r = service.book(session, actor, referral_id, slot_id=body.slot_id, start=body.start, kind=body.kind)
        return to_out(session, actor, r, full=True)


@router.post("/{referral_id}/discharge")
def discharge(referral_id: str, body: DischargeIn, actor: ActorDep) -> ReferralOut:
    with unit_of_work() as session:
        return to_out(session, actor, service.discharge(session, actor, referral_id, body), full=True)


@router.post("/{referral_id}/down-refer")
def down_refer(referral_id: str, body: DownReferIn, actor: ActorDep) -> ReferralOut:
    with unit_of_work() as session:
        return to_out(session, actor, service.down_refer(session, actor, referral_id, body), full=True)


@router.post("/{referral_id}/times")
def times(referral_id: str, body: TimesIn, actor: ActorDep) -> ReferralOut:
    with unit_of_work() as session:
        return to_out(session, actor, service.record_times(session, actor, referral_id, body), full=True)


@router.post("/{referral_id}/{action}")
def step(referral_id: str, action: str, actor: ActorDep, body: StepIn | None = None) -> ReferralOut:
    """submit, triage, accept, decline (reason), redirect (reason), arrive, start_treatment, follow_up (note),
    close, cancel (reason). An illegal step answers 409 naming the allowed next steps."""
    fn = service.ACTIONS.get(action.replace("-", "_"))
    if fn is None:
        raise Invalid(f"unknown step {action}", field="action")
    with unit_of_work() as session:
        r = fn(session, actor, referral_id, (body.model_dump(exclude_none=True) if body else {}))
        return to_out(session, actor, r, full=True)


# --- FHIR: an outside system posts a Task based on a referral ServiceRequest ---------------------------------------------


def _is_referral_request(sr: dict[str, Any] | None) -> bool:
    if not sr:
        return False
    return any(c.get("code") == "3457005" for cat in sr.get("category") or [] for c in cat.get("coding") or [])


def intercept_task(session: Session, actor: Actor, resource: dict[str, Any]) -> dict[str, Any] | None:
    """FHIR create interceptor for Task (registered by `referrals.install`): a Task with intent order whose basedOn is
    a referral ServiceRequest (category SNOMED 3457005) starts a referral, whether it was posted to /fhir/Task or came
    in a batch or transaction Bundle (then in the Bundle's transaction: it rolls back with it). Any other Task is
    left to the store (None)."""
    if resource.get("intent") != "order":
        return None
    based = [str(b.get("reference", "")) for b in resource.get("basedOn") or [] if isinstance(b, dict)]
    sr_id = next((b.removeprefix("ServiceRequest/") for b in based if b.startswith("ServiceRequest/")), None)
    sr = (
        store.read(session, "ServiceRequest", sr_id)
        if sr_id and store.exists(session, "ServiceRequest", sr_id)
        else None
    )
    if not _is_referral_request(sr):
        return None
    data = fhir.from_task(resource, sr)
    try:
        draft = ReferralIn.model_validate(data)
    except ValueError as exc:
        raise Invalid(f"the Task does not describe a referral: {exc}", field="Task") from None
    # Inside a transaction the Task carries the id the Bundle planned for it, so other entries' references hold.
    r = service.create(session, actor, draft, task_id=resource.get("id"), publish=draft.draft)
    if not draft.draft:
        service.submit(session, actor, r)
    session.flush()
    return store.read(session, "Task", r.task_id)
