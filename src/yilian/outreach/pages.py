"""HTML pages of expert outreach: programmes (postings, compliance, activities, impact), the month's roster as a
calendar with locks and re-solve, expert clinics for staff (book, cancel, extra numbers), and the public,
mobile-friendly booking page for patients (phone + verification code), plus the home panel.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yilian.config import get_settings
from yilian.db import read_session, unit_of_work, utcnow
from yilian.errors import Forbidden, Invalid, YilianError
from yilian.network import service as network
from yilian.outreach import clinics, service, sms, visits
from yilian.outreach.api import client_ip
from yilian.outreach.clinics import PUBLIC
from yilian.outreach.models import Appointment, ClinicDay, Slot, WaitlistEntry
from yilian.outreach.schemas import ActivityIn, ActivityKind, PatientIn
from yilian.security.actor import Actor
from yilian.security.roles import Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)

PATIENT_COOKIE = "yilian_patient"
PATIENT_AUDIENCE = "yilian-patient"  # a patient's cookie can never pass for a staff session (different audience)
PLANNERS = frozenset({Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN, Role.REFERRAL_COORDINATOR})
OUTREACH_ROLES = frozenset(str(r) for r in Role)

NAV = [(40, NavItem("/outreach", "Expert outreach", OUTREACH_ROLES))]

KIND_LABELS = {
    "resident": "Resident expert",
    "short_term": "Short-term posting",
    "recurring": "Recurring visit",
    "honorary_chief": "Honorary department chief",
    "ward_round": "Ward round",
    "surgery": "Surgery",
    "lecture": "Lecture",
    "teaching_round": "Teaching round",
    "mentored_surgery": "Mentored surgery",
    "outpatient_visits": "Outpatient visits",
    "discharges": "Discharges",
    "operations": "Operations",
    "operations_level_3_4": "3rd/4th-level operations",
    "booked": "Booked",
    "cancelled": "Cancelled",
    "waiting": "Waiting",
    "promoted": "Promoted from the waitlist",
    "staff": "Staff",
    "public": "Patient (public page)",
    "waitlist": "Waitlist",
    # the hard rules a roster may fail to keep (shortfalls)
    "resident_days": "Resident's days on site in a week",
    "rest_days": "Rest days in a week",
    "recurring_visit": "A date of the recurring visit",
    "monthly_days": "Days a month at the posting",
    "lock": "A coordinator's lock",
    "two_places": "Two places on one day",
    "unavailable": "On leave",
    "home_duty": "On duty at the home hospital",
    "not_eligible": "Not eligible there",
    "outside_posting": "Outside the posting",
    "travel_hop": "Too far between consecutive days",
    "max_outreach": "Cap on outreach days",
}


def _label(value: object) -> str:
    return KIND_LABELS.get(str(value), str(value))


def _ctx(**values: object) -> dict[str, object]:
    return {"label": _label, **values}


def _names(session: Session, facility_ids: list[str]) -> dict[str, str]:
    out = {}
    for fid in facility_ids:
        try:
            out[str(fid)] = network.get_facility(session, fid).name
        except YilianError:
            out[str(fid)] = str(fid)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Home panel


def home_panel(session: Session, actor: Actor) -> Panel | None:
    """Upcoming expert clinics (with free numbers) and this month's compliance alerts, for staff."""
    if actor.role in (Role.INSURANCE_OFFICER,):
        return None
    today = clinics.local_now().date()
    upcoming = []
    for clinic in clinics.list_clinics(session, upcoming_only=True)[:40]:
        for day in clinic.days[:3]:
            upcoming.append((clinic, day))
    upcoming.sort(key=lambda cd: cd[1].day)
    alerts = []
    # Attendance is for those who plan and oversee the programme, not for every clinician.
    overseers = PLANNERS | {Role.COMMISSION_OFFICIAL}
    for programme in service.list_programmes(session)[:10] if actor.role in overseers else []:
        first = today.replace(day=1) - timedelta(days=7)
        for row in visits.compliance(session, programme.id, first, today, today=today):
            for alert in row.alerts[-1:]:
                alerts.append((programme, row, alert))
    if not upcoming and not alerts:
        return None
    return Panel("outreach/home_panel.html", _ctx(upcoming=upcoming[:8], alerts=alerts[:8]))


# ----------------------------------------------------------------------------------------------------------------------
# Programmes


@router.get("/outreach")
def outreach_page(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with read_session() as session:
        programmes = service.list_programmes(session)
        rows = []
        for p in programmes:
            postings = service.list_postings(session, p.id)
            rows.append((p, _names(session, [str(p.sending_facility_id)])[str(p.sending_facility_id)], len(postings)))
        clinic_list = clinics.list_clinics(session, upcoming_only=True)
    return render(request, "outreach/index.html", _ctx(programmes=rows, clinics=clinic_list))


@router.get("/outreach/programmes/{programme_id}")
def programme_page(request: Request, programme_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    today = clinics.local_now().date()
    with read_session() as session:
        programme = service.get_programme(session, programme_id)
        names = _names(session, [str(programme.sending_facility_id), *programme.receiving_facility_ids])
        postings = []
        for p in service.list_postings(session, programme.id):
            expert = network.get_practitioner(session, p.practitioner_id)
            postings.append((p, expert, names.get(str(p.facility_id), "")))
        first = today.replace(day=1)
        compliance = visits.compliance(session, programme.id, first - timedelta(days=28), today, today=today)
        alerts = visits.list_alerts(session, programme.id, limit=12)
        activities = visits.list_activities(session, programme.id, limit=30)
        impact = visits.impact(session, programme.id)
        local_doctors = [
            (str(p.id), p.name, names.get(fid, ""))
            for fid in programme.receiving_facility_ids
            for p in network.list_practitioners(session, facility_id=uuid.UUID(fid), limit=100).items
            if str(p.home_facility_id) == fid
        ]
        clinic_list = clinics.list_clinics(session, programme_id=str(programme.id), upcoming_only=True)
        may_plan = service.may_plan(session, actor, programme)
    return render(
        request,
        "outreach/programme.html",
        _ctx(
            programme=programme,
            names=names,
            postings=postings,
            compliance=compliance,
            alerts=alerts,
            tz=clinics.LOCAL,
            activities=activities,
            impact=impact,
            clinics=clinic_list,
            month=f"{today:%Y-%m}",
            can_plan=may_plan,
            can_record=may_plan
            or (actor.facility_id is not None and str(actor.facility_id) in programme.receiving_facility_ids),
            local_doctors=local_doctors,
            today=today,
            kinds=[k.value for k in ActivityKind],
        ),
    )


@router.post("/outreach/programmes/{programme_id}/checkins")
def programme_checkin(
    programme_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    practitioner_id: Annotated[str, Form()],
    day: Annotated[date, Form()],
) -> Response:
    with unit_of_work() as session:
        visits.check_in(session, programme_id, practitioner_id, day, actor=actor)
    return RedirectResponse(f"/outreach/programmes/{programme_id}#compliance", status_code=303)


@router.post("/outreach/programmes/{programme_id}/activities")
def programme_activity(
    programme_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    practitioner_id: Annotated[str, Form()],
    facility: Annotated[str, Form()],
    day: Annotated[date, Form()],
    kind: Annotated[ActivityKind, Form()],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    patient_ref: Annotated[str, Form()] = "",
    operation_level: Annotated[str, Form()] = "",
    people: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Record a ward round, surgery or teaching session; for surgeries the chosen local doctors are the team, for
    teaching they are the attendees (a mentored surgery: both)."""
    chosen = [p for p in (people or []) if p]
    level = int(operation_level) if operation_level.strip().isdigit() else None
    data = ActivityIn(
        practitioner_id=practitioner_id,
        facility=facility,
        day=day,
        kind=kind,
        title=title,
        local_team=chosen if kind.is_operation else [],
        attendees=chosen if kind.is_teaching else [],
        patient_ref=patient_ref.strip() or None,
        operation_level=level if kind.is_operation else None,
    )
    with unit_of_work() as session:
        visits.record_activity(session, programme_id, data, actor=actor)
    return RedirectResponse(f"/outreach/programmes/{programme_id}#activities", status_code=303)


# ----------------------------------------------------------------------------------------------------------------------
# Roster calendar, locks, re-solve


def _month_days(month: date) -> list[date]:
    n = calendar.monthrange(month.year, month.month)[1]
    return [month + timedelta(days=i) for i in range(n)]


@router.get("/outreach/programmes/{programme_id}/roster")
def roster_page(
    request: Request,
    programme_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> Response:
    first = service.month_start(month or f"{clinics.local_now().date():%Y-%m}")
    with read_session() as session:
        programme = service.get_programme(session, programme_id)
        may_plan = service.may_plan(session, actor, programme)
        names = _names(session, programme.receiving_facility_ids)
        short = {fid: name.removesuffix("医院")[-4:] for fid, name in names.items()}
        experts = {
            str(p.practitioner_id): network.get_practitioner(session, p.practitioner_id).name
            for p in service.list_postings(session, programme.id)
        }
        try:
            roster = service.find_roster(session, programme.id, first)
        except YilianError:
            roster = None
    cells: dict[tuple[str, date], Any] = {}
    if roster:
        for e in roster.entries:
            cells[(str(e.practitioner_id), e.day)] = e
    prev_month = (first - timedelta(days=1)).replace(day=1)
    next_month = first + timedelta(days=32)
    return render(
        request,
        "outreach/roster.html",
        _ctx(
            programme=programme,
            roster=roster,
            days=_month_days(first),
            experts=experts,
            cells=cells,
            names=names,
            short=short,
            month=f"{first:%Y-%m}",
            prev=f"{prev_month:%Y-%m}",
            next=f"{next_month:%Y-%m}",
            can_plan=may_plan,
        ),
    )


@router.post("/outreach/programmes/{programme_id}/roster")
def roster_solve(
    programme_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    month: Annotated[str, Form(pattern=r"^\d{4}-\d{2}$")],
) -> Response:
    if actor.role not in PLANNERS:
        raise Forbidden("rosters are planned by coordinators and consortium administrators")
    from yilian.outreach.rostering import SolverOptions

    with unit_of_work() as session:
        service.solve_roster(session, programme_id, month, SolverOptions(time_limit_seconds=20), actor=actor)
    return RedirectResponse(f"/outreach/programmes/{programme_id}/roster?month={month}", status_code=303)


@router.post("/outreach/programmes/{programme_id}/roster/lock")
def roster_lock(
    programme_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    month: Annotated[str, Form(pattern=r"^\d{4}-\d{2}$")],
    practitioner_id: Annotated[str, Form()],
    day: Annotated[date, Form()],
    facility: Annotated[str, Form()] = "",
) -> Response:
    if actor.role not in PLANNERS:
        raise Forbidden("rosters are planned by coordinators and consortium administrators")
    with unit_of_work() as session:
        roster = service.find_roster(session, programme_id, month)
        service.lock_entry(session, roster.id, practitioner_id, day, facility or None, actor=actor)
    return RedirectResponse(f"/outreach/programmes/{programme_id}/roster?month={month}", status_code=303)


# ----------------------------------------------------------------------------------------------------------------------
# Clinics (staff)


@router.get("/outreach/clinics/{clinic_id}")
def clinic_page(
    request: Request,
    clinic_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    day: Annotated[date | None, Query()] = None,
) -> Response:
    with unit_of_work() as session:
        clinic = clinics.get_clinic(session, clinic_id)
        out = clinics.clinic_out(session, clinic, upcoming_only=True)
        chosen = day or (out.days[0].day if out.days else None)
        appointments: list[Any] = []
        waiting: list[Any] = []
        may_see = True
        if chosen:
            try:
                appointments, waiting = clinics.day_list(session, clinic.id, chosen, actor=actor)
            except Forbidden:
                may_see = False
    return render(
        request,
        "outreach/clinic.html",
        _ctx(clinic=out, day=chosen, appointments=appointments, waiting=waiting, may_see=may_see, error=None),
    )


@router.post("/outreach/clinics/{clinic_id}/book")
def clinic_book(
    request: Request,
    clinic_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    day: Annotated[date, Form()],
    name: Annotated[str, Form()] = "",
    id_card: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    patient = _patient_form(name, id_card, phone)
    with unit_of_work() as session:
        clinics.book(session, clinic_id, day, patient, channel="staff", actor=actor)
    return RedirectResponse(f"/outreach/clinics/{clinic_id}?day={day}", status_code=303)


@router.post("/outreach/clinics/{clinic_id}/extra")
def clinic_extra(
    clinic_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    day: Annotated[date, Form()],
    count: Annotated[int, Form(ge=1, le=100)],
) -> Response:
    with unit_of_work() as session:
        clinics.add_extra(session, clinic_id, day, count, actor=actor)
    return RedirectResponse(f"/outreach/clinics/{clinic_id}?day={day}", status_code=303)


@router.post("/outreach/clinics/{clinic_id}/days")
def clinic_open_day(
    clinic_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    day: Annotated[date, Form()],
    waitlist_of: Annotated[date | None, Form()] = None,
) -> Response:
    """An extra session: one more clinic day with the clinic's quota, its numbers first for the patients waiting
    for the full day the desk was looking at (when asked)."""
    if day < clinics.local_now().date():
        raise Invalid("a clinic day cannot be in the past", field="day")
    with unit_of_work() as session:
        if waitlist_of is not None:
            clinics.open_extra_session(session, clinic_id, day, waitlist_of=waitlist_of, actor=actor)
        else:
            clinics.open_days(session, clinic_id, [day], actor=actor)
    return RedirectResponse(f"/outreach/clinics/{clinic_id}?day={day}", status_code=303)


@router.post("/outreach/appointments/{appointment_id}/cancel")
def appointment_cancel(
    appointment_id: str, actor: Annotated[Actor, Depends(current_actor)], back: Annotated[str, Form()] = "/outreach"
) -> Response:
    with unit_of_work() as session:
        clinics.cancel(session, appointment_id, actor=actor, reason="cancelled at the clinic desk")
    target = back if back.startswith("/") and not back.startswith("//") else "/outreach"
    return RedirectResponse(target, status_code=303)


def _patient_form(name: str, id_card: str, phone: str) -> PatientIn:
    try:
        return PatientIn(name=name.strip(), id_card=id_card.strip() or None, phone=phone.strip() or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "name"
        messages = {
            "name": "enter the patient's name",
            "id_card": "a resident ID card number has 18 characters (the last may be X)",
            "phone": "enter an 11-digit mainland mobile number",
        }
        raise Invalid(messages.get(field, "check the form"), field=field) from None


# ----------------------------------------------------------------------------------------------------------------------
# Public booking page (no account)


def _with_retry_after(response: Response, exc: YilianError) -> Response:
    """A form refused for asking too often tells the browser (and any script) when to come back."""
    if isinstance(exc, clinics.TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _patient_phone(request: Request) -> str | None:
    token = request.cookies.get(PATIENT_COOKIE)
    if not token:
        return None
    try:
        claims = jwt.decode(
            token, get_settings().resolved_secret_key(), algorithms=["HS256"], audience=PATIENT_AUDIENCE
        )
    except jwt.PyJWTError:
        return None
    phone = claims.get("phone")
    return phone if isinstance(phone, str) else None


def _patient_cookie(phone: str) -> str:
    now = utcnow()
    claims = {"phone": phone, "aud": PATIENT_AUDIENCE, "exp": int((now + timedelta(minutes=30)).timestamp())}
    return jwt.encode(claims, get_settings().resolved_secret_key(), algorithm="HS256")


@router.get("/book")
def public_clinics(request: Request) -> Response:
    with read_session() as session:
        clinic_list = clinics.list_clinics(session, upcoming_only=True)
    return render(request, "outreach/book_list.html", _ctx(clinics=clinic_list, phone=_patient_phone(request)))


def _public_form(
    request: Request,
    clinic_id: str,
    day: date,
    *,
    values: dict[str, str] | None = None,
    error: YilianError | None = None,
    demo_code: str | None = None,
    status: int = 200,
) -> Response:
    with read_session() as session:
        clinic = clinics.get_clinic(session, clinic_id)
        out = clinics.clinic_out(session, clinic, upcoming_only=True)
    chosen = next((d for d in out.days if d.day == day), None)
    if chosen is None:
        raise Invalid(f"{out.name} holds no clinic on {day}", field="day")
    return render(
        request,
        "outreach/book_form.html",
        _ctx(
            clinic=out,
            clinic_day=chosen,
            values=values or {},
            error=error,
            demo_code=demo_code,
            console=sms.gateway().shows_codes,
        ),
        status=status,
    )


@router.get("/book/{clinic_id}/{day}")
def public_form(request: Request, clinic_id: str, day: date) -> Response:
    return _public_form(request, clinic_id, day)


@router.post("/book/{clinic_id}/{day}")
def public_book(
    request: Request,
    clinic_id: str,
    day: date,
    action: Annotated[str, Form()] = "book",
    name: Annotated[str, Form()] = "",
    id_card: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    """One form, two buttons: send the code to the phone; then book with the code."""
    values = {"name": name, "id_card": id_card, "phone": phone}
    try:
        if action == "code":
            with unit_of_work() as session:
                shown = clinics.send_code(session, phone.strip(), client_ip=client_ip(request))
            return _public_form(request, clinic_id, day, values=values, demo_code=shown)
        patient = _patient_form(name, id_card, phone)
        if not patient.phone:
            raise Invalid("enter the mobile number the code is sent to", field="phone")
        if not code.strip():
            raise Invalid("enter the verification code sent to your phone", field="code")
        clinics.verify_code(patient.phone, code)
        with unit_of_work() as session:
            out = clinics.book(session, clinic_id, day, patient, channel="public", actor=PUBLIC)
    except YilianError as exc:
        return _with_retry_after(
            _public_form(request, clinic_id, day, values=values, error=exc, status=exc.status), exc
        )
    response = render(request, "outreach/book_done.html", _ctx(booking=out, clinic_id=clinic_id))
    response.set_cookie(PATIENT_COOKIE, _patient_cookie(patient.phone), httponly=True, samesite="lax", max_age=1800)
    return response


def _mine(session: Session, phone: str) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    from sqlalchemy import select

    rows = session.execute(
        select(Appointment, Slot, ClinicDay)
        .join(Slot, Slot.id == Appointment.slot_id)
        .join(ClinicDay, ClinicDay.id == Appointment.clinic_day_id)
        .where(Appointment.phone == phone)
        .order_by(ClinicDay.day.desc())
    ).all()
    appointments = [
        (
            clinics.appointment_out(a, s, d),
            clinics.clinic_out(session, clinics.get_clinic(session, a.clinic_id), days=False),
        )
        for a, s, d in rows
    ]
    entries = session.execute(
        select(WaitlistEntry, ClinicDay)
        .join(ClinicDay, ClinicDay.id == WaitlistEntry.clinic_day_id)
        .where(WaitlistEntry.phone == phone, WaitlistEntry.status == "waiting")
    ).all()
    waiting = [
        (
            clinics._waitlist_out(session, e, d),
            clinics.clinic_out(session, clinics.get_clinic(session, e.clinic_id), days=False),
        )
        for e, d in entries
    ]
    return appointments, waiting


@router.get("/book/mine")
def public_mine(request: Request) -> Response:
    phone = _patient_phone(request)
    if phone is None:
        return render(request, "outreach/book_mine.html", _ctx(phone=None, values={}, error=None, demo_code=None))
    with unit_of_work() as session:
        appointments, waiting = _mine(session, phone)
        from yilian.security import audit

        audit.record(session, PUBLIC, "outreach.appointment.read_own", detail={"phone": phone[-4:]})
    return render(
        request, "outreach/book_mine.html", _ctx(phone=phone, appointments=appointments, waiting=waiting, error=None)
    )


@router.post("/book/mine")
def public_mine_sign_in(
    request: Request,
    action: Annotated[str, Form()] = "show",
    phone: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    values = {"phone": phone}
    try:
        if action == "code":
            with unit_of_work() as session:
                shown = clinics.send_code(session, phone.strip(), client_ip=client_ip(request))
            return render(
                request, "outreach/book_mine.html", _ctx(phone=None, values=values, error=None, demo_code=shown)
            )
        clinics.verify_code(phone.strip(), code)
    except YilianError as exc:
        page = render(
            request,
            "outreach/book_mine.html",
            _ctx(phone=None, values=values, error=exc, demo_code=None),
            status=exc.status,
        )
        return _with_retry_after(page, exc)
    response = RedirectResponse("/book/mine", status_code=303)
    response.set_cookie(PATIENT_COOKIE, _patient_cookie(phone.strip()), httponly=True, samesite="lax", max_age=1800)
    return response


@router.post("/book/mine/{appointment_id}/cancel")
def public_cancel(request: Request, appointment_id: uuid.UUID) -> Response:
    phone = _patient_phone(request)
    if phone is None:
        return RedirectResponse("/book/mine", status_code=303)
    with unit_of_work() as session:
        clinics.cancel(session, appointment_id, actor=PUBLIC, phone=phone, reason="cancelled by the patient")
    return RedirectResponse("/book/mine", status_code=303)


@router.post("/book/mine/waitlist/{entry_id}/withdraw")
def public_withdraw(request: Request, entry_id: uuid.UUID) -> Response:
    phone = _patient_phone(request)
    if phone is None:
        return RedirectResponse("/book/mine", status_code=303)
    with unit_of_work() as session:
        clinics.withdraw(session, entry_id, phone=phone, actor=PUBLIC)
    return RedirectResponse("/book/mine", status_code=303)
