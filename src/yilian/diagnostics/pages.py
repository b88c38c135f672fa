"""HTML pages of shared diagnostics: the site's orders and inbox, the order form with the recognition check, the
centre's worklist, the report and its print view, turnaround, the recognition catalogue and report, consultations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from yilian.db import read_session, unit_of_work
from yilian.diagnostics import catalogue, notify, rules, service
from yilian.diagnostics.rules import Modality, Priority
from yilian.diagnostics.schemas import AmendIn, ChannelIn, ConsultIn, OpinionIn, OrderIn, ReportIn, ScheduleIn
from yilian.errors import Invalid, YilianError
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)
CurrentActor = Annotated[Actor, Depends(current_actor)]

CLINICAL = frozenset(str(r) for r in CLINICAL_ROLES)
NAV = [
    (40, NavItem("/diagnostics", "Diagnostics", CLINICAL)),
    (45, NavItem("/diagnostics/consultations", "Teleconsultation", CLINICAL)),
    (50, NavItem("/diagnostics/recognition", "Recognition")),
]

LABELS: dict[str, str] = {
    "ecg": "ECG",
    "imaging": "Imaging",
    "lab": "Lab",
    "pathology": "Pathology",
    "stat": "Stat",
    "urgent": "Urgent",
    "routine": "Routine",
    "emergency": "Emergency",
    "ordered": "Awaiting study",
    "received": "Ready to read",
    "reported": "Reported",
    "cancelled": "Cancelled",
    "requested": "Requested",
    "scheduled": "Scheduled",
    "answered": "Answered",
    "consultation": "Remote consultation",
    "mdt": "Multi-disciplinary consultation",
    "ward_round": "Remote ward round",
    "consortium": "Consortium",
    "city": "City",
    "province": "Province",
    "reused": "Reused",
    "male": "Male",
    "female": "Female",
    "unknown": "Unknown",
    "repeated": "Repeated",
    "webhook": "Webhook",
    "sms": "SMS",
    **{r.value: label for r, label in rules.REASON_LABELS.items()},
}
ECG_MEASURES = ("heart_rate", "pr", "qrs", "qtc")


def _ctx(**values: object) -> dict[str, object]:
    return {
        "label": lambda v: LABELS.get(str(v), str(v)),
        "local": lambda dt: "" if dt is None else _local(dt),
        "yuan": lambda fen: f"{fen / 100:,.2f}",
        "measures": rules.MEASURES,
        **values,
    }


def _local(dt: datetime) -> str:
    from zoneinfo import ZoneInfo

    from yilian.config import get_settings

    return dt.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M")


def _is_centre(session: Session, actor: Actor) -> bool:
    from yilian.network import service as network

    if actor.facility_id is None:
        return False
    caps = network.get_facility(session, actor.facility_id).capabilities
    return any(c in caps for c in rules.CENTRE_CAPABILITY.values())


# -- home panel ---------------------------------------------------------------------------------------------------------


def home_panel(session: Session, actor: Actor) -> Panel | None:
    if actor.role not in CLINICAL_ROLES or actor.facility_id is None:
        return None
    # The home page reads in a read-only session; patient-level reads here must leave audit rows, so write them.
    with unit_of_work() as uow:
        alerts = service.alerts(uow, actor)
        worklist = len(service.worklist(uow, actor)) if _is_centre(uow, actor) else None
        notes = service.notifications(uow, actor, unread_only=True, limit=10)
        consults = [c for c in service.list_consultations(uow, actor) if {"schedule", "answer"} & set(c.actions)]
    ctx = _ctx(alerts=alerts, notifications=notes, worklist_count=worklist, consultations=consults)
    return Panel("diagnostics/home_panel.html", ctx)


# -- the site's orders --------------------------------------------------------------------------------------------------


@router.get("/diagnostics")
def index_page(request: Request, actor: CurrentActor) -> Response:
    return _index(request, actor)


def _index(request: Request, actor: Actor, **problem: Any) -> Response:
    clinician = actor.role in CLINICAL_ROLES and actor.facility_id is not None
    with unit_of_work() as session:
        orders = service.sent_orders(session, actor) if clinician else []
        alerts = service.alerts(session, actor)
        notes = service.notifications(session, actor)
        centre = _is_centre(session, actor)
        chans = notify.list_channels(session, actor) if clinician else None
    ctx = _ctx(orders=orders, alerts=alerts, notifications=notes, is_centre=centre, channels=chans, **problem)
    return render(request, "diagnostics/index.html", ctx, status=int(problem.get("status", 200)))


@router.post("/diagnostics/channels")
def post_channel_page(
    request: Request,
    actor: CurrentActor,
    kind: Annotated[str, Form()] = "webhook",
    target: Annotated[str, Form()] = "",
    critical_only: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = _validated(ChannelIn, {"kind": kind, "target": target, "critical_only": bool(critical_only)})
        with unit_of_work() as session:
            notify.add_channel(session, actor, body)
    except YilianError as exc:
        return _index(request, actor, error=exc.message, field=exc.field, status=exc.status)
    return RedirectResponse("/diagnostics", status_code=303)


@router.post("/diagnostics/channels/{channel_id}/remove")
def post_remove_channel_page(channel_id: uuid.UUID, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        notify.remove_channel(session, actor, channel_id)
    return RedirectResponse("/diagnostics", status_code=303)


def _order_form(session: Session, actor: Actor, values: dict[str, Any], **extra: object) -> dict[str, object]:
    centres = service.centres_for(session, actor.facility_id) if actor.facility_id else []
    return _ctx(
        values=values,
        centres=centres,
        items=list(catalogue.items().values()),
        modalities=[m.value for m in Modality],
        priorities=[p.value for p in Priority],
        reasons=list(rules.REASON_LABELS),
        **extra,
    )


@router.get("/diagnostics/orders/new")
def new_order_page(request: Request, actor: CurrentActor, patient: str = "", modality: str = "ecg") -> Response:
    with read_session() as session:
        ctx = _order_form(session, actor, {"patient": patient, "modality": modality, "priority": "routine"})
    return render(request, "diagnostics/order_new.html", ctx)


@router.post("/diagnostics/orders/new")
def post_new_order(
    request: Request,
    actor: CurrentActor,
    patient: Annotated[str, Form()] = "",
    modality: Annotated[str, Form()] = "ecg",
    item_code: Annotated[str, Form()] = "",
    item_name: Annotated[str, Form()] = "",
    centre: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "routine",
    clinical_question: Annotated[str, Form()] = "",
    repeat_reason: Annotated[str, Form()] = "",
    repeat_note: Annotated[str, Form()] = "",
    patient_informed: Annotated[str, Form()] = "",
    decision: Annotated[str, Form()] = "order",
) -> Response:
    values = {
        "patient": patient,
        "modality": modality,
        "item_code": item_code,
        "item_name": item_name,
        "centre": centre,
        "priority": priority,
        "clinical_question": clinical_question,
        "repeat_reason": repeat_reason,
        "repeat_note": repeat_note,
        "patient_informed": bool(patient_informed),
    }
    try:
        with unit_of_work() as session:
            if decision == "reuse":
                prior = service.reuse_result(session, actor, patient, item_code)
                if prior.order_id is not None:
                    return RedirectResponse(f"/diagnostics/orders/{prior.order_id}?reused=1", status_code=303)
                # A result from a hospital system has no order page here: confirm on a fresh form.
                ctx = _order_form(session, actor, {"patient": patient, "modality": modality}, reused=prior)
                return render(request, "diagnostics/order_new.html", ctx)
            body = _validated(OrderIn, values)
            if body.item_code and not body.repeat_reason:
                check = service.check_recognition(session, actor, body.patient, body.item_code)
                if check.prior is not None:
                    # Show the earlier result and ask: reuse it, or give a reason (nothing is written yet).
                    ctx = _order_form(session, actor, values, prior=check.prior, error=None, field="repeat_reason")
                    session.rollback()
                    return render(request, "diagnostics/order_new.html", ctx, status=409)
            order = service.place_order(session, actor, body)
            order_id = order.id
    except YilianError as exc:
        with read_session() as session:
            prior = None
            if exc.field in ("repeat_reason", "patient_informed") and item_code:
                with unit_of_work() as s2:
                    prior = service.check_recognition(s2, actor, patient, item_code).prior
            ctx = _order_form(session, actor, values, error=exc.message, field=exc.field, prior=prior)
        return render(request, "diagnostics/order_new.html", ctx, status=exc.status)
    return RedirectResponse(f"/diagnostics/orders/{order_id}", status_code=303)


def _first_field(exc: Exception) -> str | None:
    errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
    return ".".join(str(p) for p in errors[0]["loc"]) if errors else None


@router.get("/diagnostics/orders/{order_id}")
def order_page(request: Request, order_id: str, actor: CurrentActor, reused: str = "") -> Response:
    with unit_of_work() as session:
        order = service.get_order(session, actor, order_id)
    return render(request, "diagnostics/order.html", _ctx(order=order, reused=bool(reused), ecg_measures=ECG_MEASURES))


@router.post("/diagnostics/orders/{order_id}/upload")
def post_upload_page(
    request: Request,
    order_id: str,
    actor: CurrentActor,
    file: Annotated[UploadFile | None, File()] = None,
    heart_rate: Annotated[str, Form()] = "",
    pr: Annotated[str, Form()] = "",
    qrs: Annotated[str, Form()] = "",
    qtc: Annotated[str, Form()] = "",
) -> Response:
    measured = {k: v for k, v in {"heart_rate": heart_rate, "pr": pr, "qrs": qrs, "qtc": qtc}.items() if v.strip()}
    max_bytes = service.settings().diagnostics_max_upload_mb * 1_048_576
    data = file.file.read(max_bytes + 1) if file is not None else b""
    name = (file.filename if file else "") or "upload"
    return _order_action(
        request,
        actor,
        order_id,
        lambda s: service.receive_upload(s, actor, order_id, filename=name, data=data, measurements=measured),
    )


@router.post("/diagnostics/orders/{order_id}/report")
def post_report_page(
    request: Request,
    order_id: str,
    actor: CurrentActor,
    findings: Annotated[str, Form()] = "",
    conclusion: Annotated[str, Form()] = "",
    critical: Annotated[str, Form()] = "",
) -> Response:

    def sign(session: Session) -> None:
        if not conclusion.strip():
            raise Invalid("write the conclusion", field="conclusion")
        service.sign_report(session, actor, order_id, _validated(ReportIn, form))

    form = {"findings": findings, "conclusion": conclusion, "critical": bool(critical)}
    return _order_action(request, actor, order_id, sign, then="/diagnostics/worklist")


@router.post("/diagnostics/orders/{order_id}/amend")
def post_amend_page(
    request: Request,
    order_id: str,
    actor: CurrentActor,
    findings: Annotated[str, Form()] = "",
    conclusion: Annotated[str, Form()] = "",
    critical: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    form = {"findings": findings, "conclusion": conclusion, "critical": bool(critical), "reason": reason}
    return _order_action(
        request, actor, order_id, lambda s: service.amend_report(s, actor, order_id, _validated(AmendIn, form))
    )


@router.post("/diagnostics/orders/{order_id}/claim")
def post_claim_page(request: Request, order_id: str, actor: CurrentActor) -> Response:
    return _order_action(request, actor, order_id, lambda s: service.claim_order(s, actor, order_id))


@router.post("/diagnostics/orders/{order_id}/release")
def post_release_page(request: Request, order_id: str, actor: CurrentActor) -> Response:
    return _order_action(request, actor, order_id, lambda s: service.release_order(s, actor, order_id))


def _order_action(
    request: Request, actor: Actor, order_id: str, do: Callable[[Session], object], *, then: str = ""
) -> Response:
    """Run one action on an order; on refusal show the order page again with the field marked."""
    try:
        with unit_of_work() as session:
            do(session)
    except YilianError as exc:
        with unit_of_work() as session:
            order = service.get_order(session, actor, order_id)
        ctx = _ctx(order=order, ecg_measures=ECG_MEASURES, error=exc.message, field=exc.field, reused=False)
        return render(request, "diagnostics/order.html", ctx, status=exc.status)
    return RedirectResponse(then or f"/diagnostics/orders/{order_id}", status_code=303)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], values: dict[str, Any]) -> M:
    """A form's values as the API's input model; the first problem becomes Invalid naming its field."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v not in ("", None)})
    except ValueError as exc:
        raise Invalid(str(exc).splitlines()[-1], field=_first_field(exc)) from None


@router.get("/diagnostics/orders/{order_id}/print")
def print_page(request: Request, order_id: str, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        view = service.print_view(session, actor, order_id)
    return render(request, "diagnostics/print.html", _ctx(view=view))


@router.post("/diagnostics/alerts/{alert_id}/acknowledge")
def post_ack_page(alert_id: uuid.UUID, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        service.acknowledge_alert(session, actor, alert_id)
    return RedirectResponse("/diagnostics", status_code=303)


# -- the centre ---------------------------------------------------------------------------------------------------------


@router.get("/diagnostics/worklist")
def worklist_page(request: Request, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        items = service.worklist(session, actor)
        late = service.overdue(session, actor)
        assert actor.facility_id is not None
        load = service.workload(session, actor.facility_id, since=service.since_days(30))
    return render(request, "diagnostics/worklist.html", _ctx(items=items, overdue=late, workload=load))


@router.get("/diagnostics/turnaround")
def turnaround_page(request: Request, actor: CurrentActor, days: int = 30) -> Response:
    days = max(1, min(days, 3660))
    with read_session() as session:
        rows = service.turnaround(session, since=service.since_days(days))
    return render(request, "diagnostics/turnaround.html", _ctx(rows=rows, days=days))


# -- recognition ---------------------------------------------------------------------------------------------------------


@router.get("/diagnostics/recognition")
def recognition_page(request: Request, actor: CurrentActor, days: int = 365) -> Response:
    days = max(1, min(days, 3660))
    with read_session() as session:
        items = service.catalogue_out(session, facility_id=actor.facility_id)
        report = service.recognition_report(session, since=service.since_days(days))
    return render(request, "diagnostics/recognition.html", _ctx(items=items, report=report, days=days))


# -- teleconsultation ----------------------------------------------------------------------------------------------------


@router.get("/diagnostics/consultations")
def consultations_page(request: Request, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        rows = service.list_consultations(session, actor)
    return render(request, "diagnostics/consultations.html", _ctx(rows=rows, values={}, kinds=list(rules.ConsultKind)))


@router.post("/diagnostics/consultations")
def post_consultation_page(
    request: Request,
    actor: CurrentActor,
    patient: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "consultation",
    specialty: Annotated[str, Form()] = "",
    question: Annotated[str, Form()] = "",
    urgency: Annotated[str, Form()] = "routine",
    centre: Annotated[str, Form()] = "",
    record_items: Annotated[list[str] | None, Form()] = None,
    round_patients: Annotated[list[str] | None, Form()] = None,
) -> Response:
    values: dict[str, Any] = {
        "patient": patient,
        "kind": kind,
        "specialty": specialty,
        "question": question,
        "urgency": urgency,
        "centre": centre,
        "record_items": record_items or [],
        "round_patients": round_patients or [],
    }
    try:
        body = _validated(ConsultIn, {k: v for k, v in values.items() if v != []})
        with unit_of_work() as session:
            c = service.request_consultation(session, actor, body)
            cid = c.id
    except YilianError as exc:
        with unit_of_work() as session:
            rows = service.list_consultations(session, actor)
            # Show the record and the round list again, with what was ticked still ticked.
            choices, _ = _record_choices(session, actor, patient, "")
            names = service.patient_names(session, values["round_patients"])
        ctx = _ctx(
            rows=rows,
            values=values,
            kinds=list(rules.ConsultKind),
            error=exc.message,
            field=exc.field,
            record_choices=choices,
            patient_choices=[(r, names.get(r, r)) for r in values["round_patients"]],
        )
        return render(request, "diagnostics/consultations.html", ctx, status=exc.status)
    return RedirectResponse(f"/diagnostics/consultations/{cid}", status_code=303)


def _record_choices(
    session: Session, actor: Actor, patient: str, text: str
) -> tuple[list[service.RecordItem], str | None]:
    if not patient.strip():
        return [], None
    try:
        return service.search_record(session, actor, patient, text=text), None
    except YilianError as exc:
        return [], exc.message


@router.get("/diagnostics/record-picker")
def record_picker(request: Request, actor: CurrentActor, patient: str = "", record_q: str = "") -> Response:
    """htmx: the patient's shared-record items matching the search, as checkboxes for the consultation form."""
    with unit_of_work() as session:  # the search is a read of patient data: it leaves audit rows
        choices, problem = _record_choices(session, actor, patient, record_q)
    ctx = _ctx(record_choices=choices, picker_error=problem, values={})
    return render(request, "diagnostics/_record_picker.html", ctx)


@router.get("/diagnostics/patient-picker")
def patient_picker(request: Request, actor: CurrentActor, patient_q: str = "") -> Response:
    """htmx: patients found by name, as checkboxes for a ward-round list."""
    with unit_of_work() as session:
        choices = service.search_patients(session, actor, patient_q)
    return render(
        request, "diagnostics/_patient_picker.html", _ctx(patient_choices=choices, patient_q=patient_q, values={})
    )


@router.get("/diagnostics/consultations/{consult_id}")
def consultation_page(request: Request, consult_id: str, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        c = service.get_consultation(session, actor, consult_id)
    return render(request, "diagnostics/consultation.html", _ctx(c=c))


@router.post("/diagnostics/consultations/{consult_id}/schedule")
def post_schedule_page(
    request: Request,
    consult_id: str,
    actor: CurrentActor,
    experts: Annotated[str, Form()] = "",
    scheduled_at: Annotated[str, Form()] = "",
) -> Response:
    return _consult_action(request, actor, consult_id, "schedule", {"experts": experts, "scheduled_at": scheduled_at})


@router.post("/diagnostics/consultations/{consult_id}/opinion")
def post_opinion_page(
    request: Request,
    consult_id: str,
    actor: CurrentActor,
    diagnosis: Annotated[str, Form()] = "",
    advice: Annotated[str, Form()] = "",
    follow_up: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    form = {"diagnosis": diagnosis, "advice": advice, "follow_up": follow_up, "text": text}
    return _consult_action(request, actor, consult_id, "answer", form)


def _consult_action(request: Request, actor: Actor, consult_id: str, action: str, form: dict[str, str]) -> Response:
    try:
        with unit_of_work() as session:
            if action == "schedule":
                when = _parse_local(form["scheduled_at"])
                experts = [e.strip() for e in form["experts"].replace("，", ",").split(",") if e.strip()]
                if not experts:
                    raise Invalid("assign at least one expert", field="experts")
                service.schedule_consultation(
                    session, actor, consult_id, ScheduleIn(experts=experts, scheduled_at=when)
                )
            else:
                if not form["diagnosis"].strip():
                    raise Invalid("write the diagnosis or impression", field="diagnosis")
                service.answer_consultation(session, actor, consult_id, OpinionIn(**form))
    except YilianError as exc:
        with unit_of_work() as session:
            c = service.get_consultation(session, actor, consult_id)
        return render(
            request, "diagnostics/consultation.html", _ctx(c=c, error=exc.message, field=exc.field), status=exc.status
        )
    return RedirectResponse(f"/diagnostics/consultations/{consult_id}", status_code=303)


def _parse_local(text: str) -> datetime:
    """A datetime-local field (Asia/Shanghai wall time) as an aware datetime."""
    from zoneinfo import ZoneInfo

    from yilian.config import get_settings

    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid("give the date and time of the consultation", field="scheduled_at") from None
    return naive.replace(tzinfo=ZoneInfo(get_settings().timezone)) if naive.tzinfo is None else naive


def is_admin(actor: Actor) -> bool:
    return actor.role in (Role.SYSTEM_ADMIN, Role.COMMISSION_OFFICIAL, Role.CONSORTIUM_ADMIN)
