"""JSON API under /api/v1/outreach: programmes, postings, check-ins and compliance, clinics and booking, waitlists,
visiting-day activities, skills logs, impact, and the month's roster (solve, lock, re-solve)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from yilian.db import read_session, unit_of_work
from yilian.errors import Forbidden, Invalid
from yilian.outreach import clinics, service, visits
from yilian.outreach.schemas import (
    ActivityIn,
    ActivityOut,
    AppointmentOut,
    BookingIn,
    BookingOut,
    CancelIn,
    CheckInIn,
    ClinicDayOut,
    ClinicDaysIn,
    ClinicIn,
    ClinicOut,
    ComplianceAlertOut,
    DemandIn,
    ExtraIn,
    ImpactOut,
    PatientIn,
    PostingComplianceOut,
    PostingIn,
    ProgrammeIn,
    RosterEntryOut,
    RosterOut,
    SkillIn,
    SkillProgressOut,
    WaitlistOut,
)
from yilian.security.actor import Actor
from yilian.security.roles import Role
from yilian.web.auth import current_actor
from yilian.web.i18n import translator

router = APIRouter(prefix="/api/v1/outreach", tags=["outreach"])
CurrentActor = Annotated[Actor, Depends(current_actor)]
PLANNERS = frozenset({Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN, Role.REFERRAL_COORDINATOR})


def _planner(actor: Actor) -> None:
    if actor.role not in PLANNERS:
        raise Forbidden("outreach programmes and rosters are planned by coordinators and consortium administrators")


# -- programmes and postings -------------------------------------------------------------------------------------------


class ProgrammeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: Any
    name: str
    sending_facility_id: Any
    receiving_facility_ids: list[str]
    terms: dict[str, Any]
    start: date | None
    end: date | None


class PostingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: Any
    programme_id: Any
    practitioner_id: Any
    practitioner_role_id: Any
    facility_id: Any
    kind: str
    specialties: list[str]
    recurrence: str | None
    start: date | None
    end: date | None
    min_days_per_week: int
    min_days_per_month: int


@router.get("/programmes", response_model=list[ProgrammeOut])
def get_programmes(actor: CurrentActor) -> list[ProgrammeOut]:
    with read_session() as session:
        return [ProgrammeOut.model_validate(p) for p in service.list_programmes(session)]


@router.post("/programmes", response_model=ProgrammeOut, status_code=201)
def post_programme(body: ProgrammeIn, actor: CurrentActor) -> ProgrammeOut:
    _planner(actor)
    with unit_of_work() as session:
        return ProgrammeOut.model_validate(service.create_programme(session, body, actor=actor))


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut)
def get_programme(programme_id: str, actor: CurrentActor) -> ProgrammeOut:
    with read_session() as session:
        return ProgrammeOut.model_validate(service.get_programme(session, programme_id))


@router.get("/programmes/{programme_id}/postings", response_model=list[PostingOut])
def get_postings(programme_id: str, actor: CurrentActor) -> list[PostingOut]:
    with read_session() as session:
        return [PostingOut.model_validate(p) for p in service.list_postings(session, programme_id)]


@router.post("/programmes/{programme_id}/postings", response_model=PostingOut, status_code=201)
def post_posting(programme_id: str, body: PostingIn, actor: CurrentActor) -> PostingOut:
    """Post an expert (resident, short-term, recurring visit, honorary chief); also a PractitionerRole in FHIR."""
    _planner(actor)
    with unit_of_work() as session:
        return PostingOut.model_validate(service.add_posting(session, programme_id, body, actor=actor))


@router.post("/programmes/{programme_id}/demand", status_code=201)
def post_demand(programme_id: str, body: DemandIn, actor: CurrentActor) -> dict[str, Any]:
    _planner(actor)
    with unit_of_work() as session:
        row = service.set_demand(session, programme_id, body, actor=actor)
        return {"id": str(row.id), "specialty": row.specialty, "sessions": row.sessions, "per": row.per}


class DaysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str
    days: list[date] = Field(min_length=1, max_length=366)
    kind: str = Field(description="home_duty or unavailable")


@router.post("/expert-days", status_code=201)
def post_expert_days(body: DaysIn, actor: CurrentActor) -> dict[str, int]:
    """Home-hospital duty or leave days of an expert (the roster keeps them free)."""
    _planner(actor)
    with unit_of_work() as session:
        return {"recorded": service.mark_days(session, body.practitioner_id, body.days, body.kind, actor=actor)}


# -- check-ins and compliance ------------------------------------------------------------------------------------------


@router.post("/programmes/{programme_id}/checkins", status_code=201)
def post_checkin(programme_id: str, body: CheckInIn, actor: CurrentActor) -> dict[str, Any]:
    with unit_of_work() as session:
        row = visits.check_in(session, programme_id, body.practitioner_id, body.day, actor=actor)
        return {"id": str(row.id), "practitioner_id": str(row.practitioner_id), "day": row.day.isoformat()}


@router.get("/programmes/{programme_id}/compliance", response_model=list[PostingComplianceOut])
def get_compliance(
    programme_id: str,
    actor: CurrentActor,
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
) -> list[PostingComplianceOut]:
    """Days on site per week against each posting's rule; `alerts` are finished weeks below it."""
    with read_session() as session:
        return visits.compliance(session, programme_id, first, last)


@router.get("/programmes/{programme_id}/alerts", response_model=list[ComplianceAlertOut])
def get_alerts(programme_id: str, actor: CurrentActor) -> list[ComplianceAlertOut]:
    """Attendance alerts raised for the programme (once per expert and week, by the server's job or cron)."""
    with read_session() as session:
        return visits.list_alerts(session, programme_id)


# -- clinics and booking -----------------------------------------------------------------------------------------------


@router.get("/clinics", response_model=list[ClinicOut])
def get_clinics(
    actor: CurrentActor,
    facility: Annotated[str | None, Query(description="Facility id or code")] = None,
    programme: Annotated[str | None, Query()] = None,
) -> list[ClinicOut]:
    with read_session() as session:
        return clinics.list_clinics(session, facility=facility, programme_id=programme, upcoming_only=True)


@router.post("/clinics", response_model=ClinicOut, status_code=201)
def post_clinic(body: ClinicIn, actor: CurrentActor) -> ClinicOut:
    """An expert clinic (Schedule) with a daily quota, released `horizon_days` ahead at `release_time`."""
    with unit_of_work() as session:
        clinic = clinics.create_clinic(session, body, actor=actor)
        return clinics.clinic_out(session, clinic)


@router.get("/clinics/{clinic_id}", response_model=ClinicOut)
def get_clinic(clinic_id: str, actor: CurrentActor) -> ClinicOut:
    with read_session() as session:
        return clinics.clinic_out(session, clinics.get_clinic(session, clinic_id))


@router.post("/clinics/{clinic_id}/days", response_model=list[ClinicDayOut], status_code=201)
def post_clinic_days(clinic_id: str, body: ClinicDaysIn, actor: CurrentActor) -> list[ClinicDayOut]:
    """Open more clinic days. An extra session when the waitlist shows demand above the quota: one day with
    `waitlist_of`, whose numbers go first to the patients waiting for that full day (told by SMS)."""
    if body.waitlist_of is not None and len(body.days) != 1:
        raise Invalid("an extra session for a waitlist is one day", field="days")
    with unit_of_work() as session:
        clinic = clinics.get_clinic(session, clinic_id)
        if body.waitlist_of is not None:
            clinics.open_extra_session(session, clinic.id, body.days[0], waitlist_of=body.waitlist_of, actor=actor)
        else:
            clinics.open_days(session, clinic.id, body.days, actor=actor)
        return clinics.clinic_days(session, clinic)


@router.post("/clinics/{clinic_id}/extra")
def post_extra(clinic_id: str, body: ExtraIn, actor: CurrentActor) -> dict[str, int]:
    """Extra numbers (加号) for a day; patients on the day's waitlist take them at once."""
    with unit_of_work() as session:
        promoted = clinics.add_extra(session, clinic_id, body.day, body.count, actor=actor)
        return {"added": body.count, "promoted_from_waitlist": promoted}


@router.post("/clinics/{clinic_id}/bookings", response_model=BookingOut, status_code=201)
def post_booking(clinic_id: str, body: BookingIn, actor: CurrentActor, response: Response) -> BookingOut:
    """Book a number for a patient (staff). 201 booked; 202 on the waitlist; 409 when full and `waitlist` is false."""
    with unit_of_work() as session:
        out = clinics.book(
            session, clinic_id, body.day, body.patient, channel="staff", waitlist=body.waitlist, actor=actor
        )
    if out.status == "waitlisted":
        response.status_code = 202
    return out


@router.get("/clinics/{clinic_id}/days/{day}")
def get_day_list(clinic_id: str, day: date, actor: CurrentActor) -> dict[str, Any]:
    """The day's appointments and waitlist, with patients' names (the clinic's staff; audited)."""
    with unit_of_work() as session:
        appointments, waiting = clinics.day_list(session, clinic_id, day, actor=actor)
    return {
        "appointments": [a.model_dump(mode="json") for a in appointments],
        "waitlist": [w.model_dump(mode="json") for w in waiting],
    }


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def post_cancel(appointment_id: str, body: CancelIn, actor: CurrentActor) -> AppointmentOut:
    """Cancel (id or booking number); the first patient waiting for that day gets the number."""
    with unit_of_work() as session:
        return clinics.cancel(session, appointment_id, actor=actor, reason=body.reason)


# -- public booking (no account: a phone and a verification code) ----------------------------------------------------


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(pattern=r"^1\d{10}$")


class PublicBookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date
    patient: PatientIn
    code: str = Field(min_length=4, max_length=8)


def client_ip(request: Request) -> str | None:
    """The address a public request came from (the proxy's, unless uvicorn is told to trust X-Forwarded-For)."""
    return request.client.host if request.client else None


def too_many(request: Request, exc: clinics.TooManyRequests) -> JSONResponse:
    """429 in the caller's language, with Retry-After (seconds) as the header and in the body."""
    _ = translator(getattr(request.state, "lang", "zh"))
    return JSONResponse(
        {
            "error": exc.code,
            "message": _(exc.message, **exc.details),
            "field": exc.field,
            "retry_after": exc.retry_after,
        },
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


@router.post(
    "/public/codes",
    status_code=202,
    responses={429: {"description": "Too many codes from this address or for this phone; see Retry-After"}},
)
def post_code(body: CodeIn, request: Request) -> Any:
    """Send a verification code to a phone (through the configured SMS gateway). Limited per address and per phone
    each hour, and refused while the phone is locked after too many wrong codes: 429 with Retry-After."""
    try:
        with unit_of_work() as session:
            clinics.send_code(session, body.phone, client_ip=client_ip(request))
    except clinics.TooManyRequests as exc:
        return too_many(request, exc)
    return {"sent": True}


@router.get("/public/clinics", response_model=list[ClinicOut])
def get_public_clinics() -> list[ClinicOut]:
    """Open expert clinics and their days (no patient data), for the public booking page and apps."""
    with read_session() as session:
        return clinics.list_clinics(session, upcoming_only=True)


@router.post(
    "/public/clinics/{clinic_id}/bookings",
    response_model=BookingOut,
    status_code=201,
    responses={429: {"description": "The phone is locked after too many wrong codes; see Retry-After"}},
)
def post_public_booking(clinic_id: str, body: PublicBookingIn, request: Request, response: Response) -> Any:
    """A patient books for themself with their phone's verification code; 202 when put on the waitlist. Each wrong
    code counts: after 5 the code is void, after 10 in an hour the phone is locked (429)."""
    if not body.patient.phone:
        raise Invalid("the phone the code was sent to is needed", field="patient.phone")
    try:
        clinics.verify_code(body.patient.phone, body.code)
    except clinics.TooManyRequests as exc:
        return too_many(request, exc)
    with unit_of_work() as session:
        out = clinics.book(session, clinic_id, body.day, body.patient, channel="public", actor=clinics.PUBLIC)
    if out.status == "waitlisted":
        response.status_code = 202
    return out


# -- activities, skills, impact ----------------------------------------------------------------------------------------


@router.post("/programmes/{programme_id}/activities", response_model=ActivityOut, status_code=201)
def post_activity(programme_id: str, body: ActivityIn, actor: CurrentActor) -> ActivityOut:
    """Ward round, surgery (becomes a FHIR Procedure), lecture, teaching round, mentored surgery."""
    with unit_of_work() as session:
        return ActivityOut.model_validate(visits.record_activity(session, programme_id, body, actor=actor))


@router.get("/programmes/{programme_id}/activities", response_model=list[ActivityOut])
def get_activities(programme_id: str, actor: CurrentActor) -> list[ActivityOut]:
    with read_session() as session:
        return [ActivityOut.model_validate(a) for a in visits.list_activities(session, programme_id)]


@router.post("/skills", status_code=201)
def post_skill(body: SkillIn, actor: CurrentActor) -> dict[str, Any]:
    with unit_of_work() as session:
        row = visits.log_skill(session, body, actor=actor)
        return {"id": str(row.id), "procedure": row.procedure, "level": row.level}


@router.get("/skills/{practitioner_id}", response_model=list[SkillProgressOut])
def get_skills(practitioner_id: str, actor: CurrentActor) -> list[SkillProgressOut]:
    with read_session() as session:
        return visits.skills_of(session, practitioner_id)


@router.get("/programmes/{programme_id}/impact", response_model=ImpactOut)
def get_impact(
    programme_id: str, actor: CurrentActor, window_days: Annotated[int, Query(ge=7, le=730)] = 90
) -> ImpactOut:
    with read_session() as session:
        return visits.impact(session, programme_id, window_days=window_days)


# -- rosters -----------------------------------------------------------------------------------------------------------


class SolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    time_limit_seconds: float = Field(default=20, ge=1, le=120)


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str
    day: date
    facility: str | None = Field(default=None, description="Facility id or code; none keeps the expert free")
    specialty: str | None = None


@router.post("/programmes/{programme_id}/rosters", response_model=RosterOut)
def post_roster(programme_id: str, body: SolveIn, actor: CurrentActor) -> RosterOut:
    """Solve (or re-solve, keeping locked entries) the month's roster; the answer is checked by the validator."""
    _planner(actor)
    from yilian.outreach.rostering import SolverOptions

    with unit_of_work() as session:
        return service.solve_roster(
            session, programme_id, body.month, SolverOptions(time_limit_seconds=body.time_limit_seconds), actor=actor
        )


@router.get("/programmes/{programme_id}/rosters/{month}", response_model=RosterOut)
def get_roster(programme_id: str, month: str, actor: CurrentActor) -> RosterOut:
    with read_session() as session:
        return service.find_roster(session, programme_id, month)


@router.post("/rosters/{roster_id}/locks", response_model=RosterEntryOut, status_code=201)
def post_lock(roster_id: str, body: LockIn, actor: CurrentActor) -> RosterEntryOut:
    """Fix an expert's day (at a facility, or free); the next solve keeps it or says why it cannot."""
    _planner(actor)
    with unit_of_work() as session:
        return service.lock_entry(
            session, roster_id, body.practitioner_id, body.day, body.facility, body.specialty, actor=actor
        )


def _plain(obj: Any) -> Any:
    return asdict(obj)


__all__ = ["WaitlistOut", "router"]
