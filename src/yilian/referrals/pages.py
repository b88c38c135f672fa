"""HTML pages: the referral-centre worklist and queues, a referral's page (history, allowed actions, routing with
reasons, insurance before/after, green-channel clock), the doctor's send-referral form, and the home panel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from yilian.db import unit_of_work
from yilian.errors import Forbidden, Invalid
from yilian.network import service as network
from yilian.referrals import service, timers
from yilian.referrals.schemas import DischargeIn, DownReferIn, ReferralIn, TimesIn
from yilian.security import scope
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.i18n import translator
from yilian.web.templating import render

# The SLA sweep starts and stops with the app that mounts these pages (FastAPI merges router lifespans).
router = APIRouter(include_in_schema=False, lifespan=timers.lifespan)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CLINICAL = frozenset(str(r) for r in CLINICAL_ROLES | {Role.SYSTEM_ADMIN})
SENDER_ROLES = frozenset(
    str(r) for r in (Role.VILLAGE_DOCTOR, Role.TOWNSHIP_DOCTOR, Role.COUNTY_DOCTOR, Role.SPECIALIST)
)
RECEIVER_ROLES = frozenset(str(r) for r in (Role.COUNTY_DOCTOR, Role.SPECIALIST, Role.TOWNSHIP_DOCTOR))
JURISDICTION = frozenset(str(r) for r in (Role.COMMISSION_OFFICIAL, Role.INSURANCE_OFFICER, Role.SYSTEM_ADMIN))
NAV = [
    (40, NavItem("/referrals", "Referrals", CLINICAL)),
    (41, NavItem("/referrals/new", "Send a referral", SENDER_ROLES)),
    (42, NavItem("/referrals/slots", "Slots and beds", RECEIVER_ROLES)),
    (43, NavItem("/referrals/stats", "Referral statistics", JURISDICTION)),
]
QUEUE_LABELS = {
    "sent": "My referrals",
    "to_triage": "To triage",
    "overdue": "Overdue",
    "escalated": "Escalated",
    "offered": "Offered to us",
    "incoming": "Arriving and in care",
    "arriving_today": "Arriving today",
    "down_referral_due": "Due for down-referral",
    "follow_up": "Down-referred: follow-up due",
    "open": "All open",
}
ROLE_QUEUES = {
    Role.REFERRAL_COORDINATOR: ["to_triage", "overdue", "escalated", "down_referral_due", "open"],
    Role.COUNTY_DOCTOR: ["offered", "arriving_today", "incoming", "down_referral_due", "sent"],
    Role.SPECIALIST: ["offered", "arriving_today", "incoming", "down_referral_due", "sent"],
    Role.TOWNSHIP_DOCTOR: ["sent", "follow_up", "offered", "arriving_today", "incoming"],
    Role.VILLAGE_DOCTOR: ["sent", "follow_up"],
    Role.SYSTEM_ADMIN: ["open", "overdue", "down_referral_due"],
}
LABELS = {
    **{s: s for s in ("routine", "urgent", "emergency", "up", "down", "lateral")},
    "chest_pain": "Chest pain",
    "stroke": "Stroke",
    "trauma": "Trauma",
    "critical_maternal": "Critical maternal",
    "critical_neonatal": "Critical neonatal",
}
ACTION_LABELS = {
    "submit": "Submit",
    "triage": "Triage",
    "offer": "Offer to receiver",
    "accept": "Accept",
    "decline": "Decline",
    "redirect": "Redirect",
    "book": "Book",
    "arrive": "Patient arrived",
    "start_treatment": "Start treatment",
    "discharge": "Discharge",
    "down_refer": "Down-refer with care plan",
    "follow_up": "Record follow-up",
    "close": "Close",
    "cancel": "Cancel",
}


def local(value: datetime | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:,.0f} 元"


def _ctx(**values: Any) -> dict[str, Any]:
    return {
        "local": local,
        "yuan": yuan,
        "queue_labels": QUEUE_LABELS,
        "action_labels": ACTION_LABELS,
        "label": lambda v: LABELS.get(str(v), str(v)),
        **values,
    }


def queues_panel(session: Session, actor: Actor) -> Panel | None:
    if actor.role not in ROLE_QUEUES or actor.role == Role.SYSTEM_ADMIN:
        return None
    counts = service.count_queues(session, actor)
    return Panel("referrals/panel.html", _ctx(counts=counts))


@router.get("/referrals")
def worklist(request: Request, actor: Annotated[Actor, Depends(current_actor)], queue: str | None = None) -> Response:
    if actor.role in (Role.COMMISSION_OFFICIAL, Role.INSURANCE_OFFICER):
        return RedirectResponse("/referrals/stats", status_code=303)  # officials see counts, not patients
    queues = ROLE_QUEUES.get(actor.role, ["open"])
    queue = queue or queues[0]
    with unit_of_work() as session:
        items, total = service.list_referrals(session, actor, queue=queue, limit=200)
        names = service.facility_names(
            session, [f for r in items for f in (r.sender_facility_id, r.receiver_facility_id)]
        )
        counts = {q: service._count(session, actor, q) if q != "open" else None for q in queues}
        # Replies and news for the caller's facility (the outbox worker delivers them): the sender sees answers here.
        news = service.inbox(session, actor, limit=10) if actor.facility_id else None
    now = datetime.now(UTC)
    return render(
        request,
        "referrals/list.html",
        _ctx(items=items, total=total, queue=queue, queues=queues, counts=counts, names=names, now=now, news=news),
    )


@router.get("/referrals/slots")
def slots_page(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    """A department publishes outpatient slots or beds for referred patients and sees what is still free."""
    if actor.facility_id is None:
        raise Forbidden("slots and beds belong to a facility: your account has none", field="facility")
    with unit_of_work() as session:
        facility = service.place(session, actor.facility_id)
        summary = service.slot_summary(session, actor.facility_id)
    return render(request, "referrals/slots.html", _ctx(facility=facility, summary=summary))


@router.post("/referrals/slots")
def publish_slots(
    actor: Annotated[Actor, Depends(current_actor)],
    department: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "outpatient",
    start: Annotated[str, Form()] = "",
    count: Annotated[str, Form()] = "1",
    minutes: Annotated[str, Form()] = "30",
) -> Response:
    try:
        begins = datetime.fromisoformat(start).replace(tzinfo=SHANGHAI)  # the form's local time
    except ValueError:
        raise Invalid("give the first slot's date and time", field="start") from None
    with unit_of_work() as session:
        service.publish_slots(
            session,
            actor,
            department=department,
            start=begins,
            count=_int(count, "count"),
            minutes=_int(minutes, "minutes"),
            kind=kind,
        )
    return RedirectResponse("/referrals/slots", status_code=303)


def _int(value: str, field: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise Invalid(f"{field} must be a whole number", field=field) from None


@router.get("/referrals/stats")
def stats_page(
    request: Request, actor: Annotated[Actor, Depends(current_actor)], division: str | None = None
) -> Response:
    """Officials' and insurers' view: referral slips per sending facility and month (aggregates only)."""
    prefix = scope.division_prefix(actor)
    if prefix is None:
        raise Forbidden("referral statistics are for health commissions, insurers and administrators", field="role")
    if division:
        if not scope.in_jurisdiction(actor, division):
            raise Forbidden(f"division {division} is outside your jurisdiction", field="division")
        prefix = division
    with unit_of_work() as session:
        counts = service.monthly_counts(session, actor, prefix)
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for c in counts:
        row = table.setdefault(
            (c["month"], c["facility"]),
            {"month": c["month"], "facility": c["facility"], "up": 0, "down": 0, "lateral": 0},
        )
        row[c["direction"]] = row.get(c["direction"], 0) + c["count"]
    rows = sorted(table.values(), key=lambda r: (-r["up"] - r["down"], r["facility"]))  # busiest senders first
    rows.sort(key=lambda r: r["month"], reverse=True)  # newest month first (the sort is stable)
    return render(request, "referrals/stats.html", _ctx(rows=rows, division=division or prefix))


@router.get("/referrals/new")
def new_form(request: Request, actor: Annotated[Actor, Depends(current_actor)], patient: str = "") -> Response:
    criteria: list[dict[str, Any]] = []
    if patient:
        with unit_of_work() as session:
            criteria = service.criteria_for_patient(session, actor, patient, direction="up")
    return render(
        request, "referrals/new.html", _ctx(patient=patient, criteria=criteria, channels=service.GREEN_CHANNELS)
    )


def _floats(value: str, field: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise Invalid(f"{field} must be a number", field=field) from None


@router.post("/referrals/new")
def send(
    actor: Annotated[Actor, Depends(current_actor)],
    patient: Annotated[str, Form()] = "",
    diagnosis_codes: Annotated[str, Form()] = "",
    systolic: Annotated[str, Form()] = "",
    diastolic: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
    urgency: Annotated[str, Form()] = "routine",
    green_channel: Annotated[str, Form()] = "",
    flags: Annotated[str, Form()] = "",
    consent: Annotated[str, Form()] = "",
    symptom_onset: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    outside_reason: Annotated[str, Form()] = "",
) -> Response:
    times = {}
    if symptom_onset.strip():
        try:
            times["symptom_onset"] = datetime.fromisoformat(symptom_onset).replace(tzinfo=SHANGHAI)
        except ValueError:
            raise Invalid("symptom onset must be a date and time", field="symptom_onset") from None
    data = ReferralIn(
        patient=patient.strip(),
        diagnosis_codes=[c for c in diagnosis_codes.replace("，", ",").replace(" ", ",").split(",") if c],
        systolic=_floats(systolic, "systolic"),
        diastolic=_floats(diastolic, "diastolic"),
        reason=reason,
        summary=summary,
        urgency=urgency,
        green_channel=green_channel or None,
        flags=[f for f in flags.replace(" ", ",").split(",") if f],
        consent=consent == "on",
        times=times or None,
        outside_reason=outside_reason.strip() or None,
    )
    with unit_of_work() as session:
        if target.strip():  # the patient's choice of receiver, by facility code or id
            data.target_facility_id = network.resolve_facility_id(session, target.strip(), field="target")
        r = service.create(session, actor, data, publish=False)
        service.submit(session, actor, r)
        rid = r.id
    return RedirectResponse(f"/referrals/{rid}", status_code=303)


@router.get("/referrals/{referral_id}")
def detail(request: Request, referral_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with unit_of_work() as session:
        r = service.read(session, actor, referral_id)
        events = service.history(session, r)
        names = service.facility_names(
            session, [r.sender_facility_id, r.receiver_facility_id, r.down_facility_id, r.target_facility_id]
        )
        allowed = service.allowed_actions(actor, r)
        slots = (
            service.free_slots(session, r.receiver_facility_id, r.receiver_department, limit=8)
            if "book" in allowed and r.receiver_facility_id
            else []
        )
        chain = service.chain_status(r)
    return render(
        request,
        "referrals/detail.html",
        _ctx(r=r, events=events, names=names, allowed=allowed, slots=slots, chain=chain, now=datetime.now(UTC)),
    )


def qr_svg(text: str) -> str:
    """A QR code as inline SVG (no image files, prints sharply)."""
    import io

    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue().decode().split("?>", 1)[-1]


@router.get("/referrals/{referral_id}/slip")
def slip(request: Request, referral_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    """The printable referral slip (转诊单) with a QR code of the referral id."""
    with unit_of_work() as session:
        r = service.read(session, actor, referral_id)
        names = service.facility_names(session, [r.sender_facility_id, r.receiver_facility_id, r.down_facility_id])
    return render(request, "referrals/slip.html", _ctx(r=r, names=names, qr=qr_svg(f"urn:yilian:referral:{r.id}")))


@router.get("/referrals/{referral_id}/slip.pdf")
def slip_pdf(request: Request, referral_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    """The referral slip as a PDF to print or send (Chinese text as text, QR code of the referral id)."""
    from yilian.referrals import slip as pdf_slip

    with unit_of_work() as session:
        r = service.read(session, actor, referral_id)
        names = service.facility_names(session, [r.sender_facility_id, r.receiver_facility_id, r.down_facility_id])
    lang = getattr(request.state, "lang", "zh")
    body = pdf_slip.render_pdf(r, names, translator(lang, "referrals"), lambda v: LABELS.get(str(v), str(v)), local)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="referral-{r.id}.pdf"'},
    )


@router.post("/referrals/{referral_id}/act")
async def act(request: Request, referral_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    action = form.get("action", "")
    with unit_of_work() as session:
        if action == "offer":
            fid = form.get("facility_id") or None
            service.offer(
                session,
                actor,
                referral_id,
                uuid.UUID(fid) if fid else None,
                outside_reason=form.get("outside_reason") or None,
            )
        elif action == "book":
            slot = form.get("slot_id") or None
            start = None
            if not slot:
                start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
            service.book(
                session,
                actor,
                referral_id,
                slot_id=uuid.UUID(slot) if slot else None,
                start=start,
                kind=form.get("kind") or "outpatient",
            )
        elif action == "discharge":
            service.discharge(
                session,
                actor,
                referral_id,
                DischargeIn(
                    summary=form.get("summary", ""),
                    flags=[f for f in form.get("flags", "").replace(" ", ",").split(",") if f],
                    systolic=_floats(form.get("systolic", ""), "systolic"),
                    diastolic=_floats(form.get("diastolic", ""), "diastolic"),
                    stable=form.get("stable") == "on",
                ),
            )
        elif action == "down_refer":
            service.down_refer(
                session,
                actor,
                referral_id,
                DownReferIn(
                    plan=form.get("plan", ""),
                    medications=[m.strip() for m in form.get("medications", "").split("\n") if m.strip()],
                    follow_up_days=int(form.get("follow_up_days") or 14),
                ),
            )
        elif action == "times":
            point = form.get("point", "")
            service.record_times(session, actor, referral_id, TimesIn(times={point: datetime.now(UTC)}))
        elif action in service.ACTIONS:
            service.ACTIONS[action](session, actor, referral_id, form)
        else:
            raise Invalid(f"unknown step {action}", field="action")
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)
