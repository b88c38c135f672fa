"""Outreach use cases: programmes, postings, duty days and demand in; a month's roster solved, locked and re-solved.

Services take a session and never commit. Practitioners and facilities are the network registry's: reached through
`yilian.network.service` only.
"""

from __future__ import annotations

import calendar
import math
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from yilian.db import utcnow
from yilian.errors import Conflict, Forbidden, Invalid, NotFound
from yilian.events import service as outbox
from yilian.network import schemas as network_schemas
from yilian.network import service as network
from yilian.outreach import rostering, rules
from yilian.outreach.instances import travel_minutes_km
from yilian.outreach.models import DemandRow, ExpertDay, Posting, Programme, RosterEntry, RosterRow
from yilian.outreach.schemas import (
    Assignment,
    Demand,
    DemandIn,
    Expert,
    Hospital,
    Lock,
    PostingIn,
    PostingKind,
    Problem,
    ProgrammeIn,
    Recurrence,
    Roster,
    RosterEntryOut,
    RosterOut,
    RosterRules,
    ViolationOut,
)
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor
from yilian.security.roles import Role

DAY_KINDS = ("home_duty", "unavailable")
# Without coordinates the road time is unknown; assume a county-to-city drive rather than refuse to roster.
DEFAULT_TRAVEL_MINUTES = 90


def parse_id(value: uuid.UUID | str, field: str, what: str) -> uuid.UUID:
    """An id from a URL or a body; one that is not even a UUID names nothing, so it is a 404 naming the field."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no {what} with id {value}", field=field) from None


# Who plans outreach: coordinators and consortium administrators — of the programme's own hospitals.
PLANNER_ROLES = frozenset({Role.REFERRAL_COORDINATOR, Role.CONSORTIUM_ADMIN})


def plans_for(session: Session, actor: Actor, facility_ids: Iterable[uuid.UUID | str]) -> bool:
    """Whether the actor coordinates for these hospitals: a coordinator or consortium administrator working at one
    of them, a consortium administrator of a consortium one of them belongs to, or the system administrator."""
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    if actor.role not in PLANNER_ROLES:
        return False
    hospitals = {str(f) for f in facility_ids}
    if actor.facility_id is not None and str(actor.facility_id) in hospitals:
        return True
    if actor.role == Role.CONSORTIUM_ADMIN and actor.consortium_ids:
        return any(
            c.id in actor.consortium_ids
            for f in hospitals
            for c in network.consortia_of_facility(session, uuid.UUID(f))
        )
    return False


def programme_hospitals(programme: Programme) -> list[str]:
    return [str(programme.sending_facility_id), *programme.receiving_facility_ids]


def may_plan(session: Session, actor: Actor, programme: Programme) -> bool:
    return plans_for(session, actor, programme_hospitals(programme))


def require_planner(session: Session, actor: Actor, programme: Programme) -> None:
    if not may_plan(session, actor, programme):
        raise Forbidden(
            "outreach programmes and rosters are planned by the coordinators and consortium administrators of the "
            "programme's hospitals",
            field="programme",
        )


def month_start(month: date | str) -> date:
    """'2026-12' or any date in the month → the month's first day."""
    if isinstance(month, str):
        try:
            year, mon = (int(p) for p in month.strip().split("-")[:2])
            return date(year, mon, 1)
        except ValueError:
            raise Invalid(f"month {month!r} is not YYYY-MM", field="month") from None
    return month.replace(day=1)


# ----------------------------------------------------------------------------------------------------------------------
# Programmes, postings, days, demand


def create_programme(session: Session, data: ProgrammeIn, *, actor: Actor = SYSTEM) -> Programme:
    sending = network.resolve_facility_id(session, data.sending_facility, field="sending_facility")
    receiving = [
        network.resolve_facility_id(session, f, field="receiving_facilities") for f in data.receiving_facilities
    ]
    if sending in receiving:
        raise Invalid("the sending hospital cannot also receive its own experts", field="receiving_facilities")
    if not plans_for(session, actor, [sending, *receiving]):
        raise Forbidden(
            "a programme is set up by a coordinator or consortium administrator of its hospitals", field="programme"
        )
    if data.start and data.end and data.end < data.start:
        raise Invalid("the programme ends before it starts", field="end")
    programme = Programme(
        name=data.name,
        sending_facility_id=sending,
        receiving_facility_ids=[str(r) for r in dict.fromkeys(receiving)],
        terms={"rest_days_per_week": data.rest_days_per_week, "travel_limit_minutes": data.travel_limit_minutes},
        start=data.start,
        end=data.end,
    )
    session.add(programme)
    session.flush()
    audit.record(session, actor, "outreach.programme.create", resource=f"outreach/programme/{programme.id}")
    return programme


def get_programme(session: Session, programme_id: uuid.UUID | str) -> Programme:
    programme = session.get(Programme, parse_id(programme_id, "programme", "programme"))
    if programme is None:
        raise NotFound(f"no programme with id {programme_id}", field="programme")
    return programme


def list_programmes(session: Session) -> list[Programme]:
    return list(session.scalars(select(Programme).order_by(Programme.created_at)))


def list_postings(session: Session, programme_id: uuid.UUID | str) -> list[Posting]:
    programme = get_programme(session, programme_id)
    return list(
        session.scalars(select(Posting).where(Posting.programme_id == programme.id).order_by(Posting.created_at))
    )


def add_posting(session: Session, programme_id: uuid.UUID | str, data: PostingIn, *, actor: Actor = SYSTEM) -> Posting:
    """Post an expert in a programme; the registry gets the matching PractitionerRole at the receiving facility."""
    programme = get_programme(session, programme_id)
    require_planner(session, actor, programme)
    practitioner = network.get_practitioner(session, data.practitioner_id)
    facility_id = network.resolve_facility_id(session, data.facility, field="facility")
    if str(facility_id) not in programme.receiving_facility_ids:
        raise Invalid("the facility does not receive experts in this programme", field="facility")
    specialties = [s.strip() for s in data.specialties if s.strip()] or (
        [practitioner.specialty] if practitioner.specialty else []
    )
    if not specialties:
        raise Invalid("name the expert's specialties: the registry has none for this practitioner", field="specialties")
    recurrence = None
    if data.kind == PostingKind.RECURRING:
        if not data.recurrence:
            raise Invalid(
                "a recurring visit needs a recurrence rule, e.g. FREQ=MONTHLY;BYDAY=1SA,1SU", field="recurrence"
            )
        try:
            recurrence = str(Recurrence.parse(data.recurrence))
        except ValueError as exc:
            raise Invalid(str(exc), field="recurrence") from None
    elif data.recurrence:
        raise Invalid("only recurring visits take a recurrence rule", field="recurrence")
    if data.kind == PostingKind.SHORT_TERM and not (data.start and data.end):
        raise Invalid("a short-term posting needs its start and end", field="start" if not data.start else "end")
    if data.start and data.end and data.end < data.start:
        raise Invalid("the posting ends before it starts", field="end")
    taken = session.scalar(
        select(Posting.id).where(Posting.programme_id == programme.id, Posting.practitioner_id == practitioner.id)
    )
    if taken:
        raise Conflict("this expert already has a posting in this programme", field="practitioner_id")
    kind = data.kind
    # The posting is authorised by the programme (its planners post experts, see api.py); the registry's
    # PractitionerRole follows from it, so it is written on the programme's behalf — the registry alone would let
    # only administrators of the two hospitals post, and the coordinator who planned it is in the audit row below.
    role = network.add_posting(
        session,
        practitioner.id,
        network_schemas.PostingIn(
            facility_id=str(facility_id), specialty=specialties[0], start=data.start, end=data.end
        ),
        actor=SYSTEM,
    )
    posting = Posting(
        programme_id=programme.id,
        practitioner_id=practitioner.id,
        practitioner_role_id=role.id,
        facility_id=facility_id,
        kind=kind.value,
        specialties=specialties,
        recurrence=recurrence,
        start=data.start,
        end=data.end,
        min_days_per_week=data.min_days_per_week
        if data.min_days_per_week is not None
        else (4 if kind == PostingKind.RESIDENT else 0),
        min_days_per_month=data.min_days_per_month
        if data.min_days_per_month is not None
        else (2 if kind == PostingKind.HONORARY_CHIEF else 0),
        max_outreach_days=data.max_outreach_days,
        day_trips=data.day_trips
        if data.day_trips is not None
        else kind in (PostingKind.RECURRING, PostingKind.HONORARY_CHIEF),
    )
    session.add(posting)
    session.flush()
    audit.record(session, actor, "outreach.posting.create", resource=f"PractitionerRole/{role.id}")
    return posting


def mark_days(
    session: Session, practitioner_id: uuid.UUID | str, days: list[date], kind: str, *, actor: Actor = SYSTEM
) -> int:
    """Record home-duty or leave days (replacing whatever was recorded for those days)."""
    if kind not in DAY_KINDS:
        raise Invalid(f"kind must be one of {', '.join(DAY_KINDS)}", field="kind")
    practitioner = network.get_practitioner(session, practitioner_id)
    unique = sorted(set(days))
    session.execute(delete(ExpertDay).where(ExpertDay.practitioner_id == practitioner.id, ExpertDay.day.in_(unique)))
    session.add_all(ExpertDay(practitioner_id=practitioner.id, day=d, kind=kind) for d in unique)
    session.flush()
    audit.record(session, actor, f"outreach.days.{kind}", resource=f"Practitioner/{practitioner.id}")
    return len(unique)


def set_demand(session: Session, programme_id: uuid.UUID | str, data: DemandIn, *, actor: Actor = SYSTEM) -> DemandRow:
    programme = get_programme(session, programme_id)
    require_planner(session, actor, programme)
    facility_id = network.resolve_facility_id(session, data.facility, field="facility")
    if str(facility_id) not in programme.receiving_facility_ids:
        raise Invalid("the facility does not receive experts in this programme", field="facility")
    if any(not 0 <= w <= 6 for w in data.weekdays):
        raise Invalid("weekdays are 0 (Monday) to 6 (Sunday)", field="weekdays")
    row = session.scalar(
        select(DemandRow).where(
            DemandRow.programme_id == programme.id,
            DemandRow.facility_id == facility_id,
            DemandRow.specialty == data.specialty,
        )
    )
    if row is None:
        row = DemandRow(programme_id=programme.id, facility_id=facility_id, specialty=data.specialty)
        session.add(row)
    row.sessions, row.per, row.weekdays, row.weight = data.sessions, data.per, sorted(set(data.weekdays)), data.weight
    session.flush()
    audit.record(session, actor, "outreach.demand.set", resource=f"outreach/programme/{programme.id}")
    return row


# ----------------------------------------------------------------------------------------------------------------------
# Rosters


def build_problem(session: Session, programme_id: uuid.UUID | str, month: date | str) -> Problem:
    """Gather a programme's month into the solver's plain problem (ids are the database's uuids as text)."""
    programme = get_programme(session, programme_id)
    first = month_start(month)
    days = calendar.monthrange(first.year, first.month)[1]
    last = first + timedelta(days=days - 1)
    postings = session.scalars(select(Posting).where(Posting.programme_id == programme.id)).all()
    practitioners = {p.practitioner_id: network.get_practitioner(session, p.practitioner_id) for p in postings}
    facility_ids = {programme.sending_facility_id, *(uuid.UUID(f) for f in programme.receiving_facility_ids)}
    facility_ids |= {p.home_facility_id for p in practitioners.values()}
    facilities = {f: network.get_facility(session, f) for f in facility_ids}
    hospitals = [Hospital(str(f.id), f.name, f.level) for f in facilities.values()]
    travel = {}
    ordered = sorted(facilities.values(), key=lambda f: str(f.id))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            travel[(str(a.id), str(b.id))] = _road_minutes(a.lon, a.lat, b.lon, b.lat)

    marked = session.scalars(
        select(ExpertDay).where(
            ExpertDay.practitioner_id.in_(list(practitioners)), ExpertDay.day >= first, ExpertDay.day <= last
        )
    ).all()
    duty: dict[uuid.UUID, set[date]] = {}
    away: dict[uuid.UUID, set[date]] = {}
    for m in marked:
        (duty if m.kind == "home_duty" else away).setdefault(m.practitioner_id, set()).add(m.day)

    experts = []
    for p in postings:
        who = practitioners[p.practitioner_id]
        experts.append(
            Expert(
                id=str(p.practitioner_id),
                name=who.name,
                home_hospital_id=str(who.home_facility_id),
                specialties=tuple(p.specialties),
                kind=PostingKind(p.kind),
                posted_to=str(p.facility_id),
                recurrence=Recurrence.parse(p.recurrence) if p.recurrence else None,
                posting_start=p.start,
                posting_end=p.end,
                min_days_per_week=p.min_days_per_week,
                min_days_per_month=p.min_days_per_month,
                max_outreach_days=p.max_outreach_days,
                unavailable=frozenset(away.get(p.practitioner_id, set())),
                home_duty=frozenset(duty.get(p.practitioner_id, set())),
                day_trips=p.day_trips,
            )
        )
    demand = [
        Demand(str(d.facility_id), d.specialty, d.sessions, d.per, tuple(d.weekdays or range(7)), d.weight)  # type: ignore[arg-type]
        for d in session.scalars(select(DemandRow).where(DemandRow.programme_id == programme.id))
    ]
    terms = programme.terms or {}
    roster = _roster_row(session, programme.id, first)
    locks = []
    if roster is not None:
        for e in session.scalars(select(RosterEntry).where(RosterEntry.roster_id == roster.id, RosterEntry.locked)):
            locks.append(
                Lock(str(e.practitioner_id), e.day, str(e.facility_id) if e.facility_id else None, e.specialty)
            )
    return Problem(
        first,
        days,
        hospitals,
        experts,
        demand,
        travel,
        rules=RosterRules(
            rest_days_per_week=int(terms.get("rest_days_per_week", 1)),
            travel_limit_minutes=int(terms.get("travel_limit_minutes", 150)),
        ),
        locks=locks,
    )


def _road_minutes(lon1: float | None, lat1: float | None, lon2: float | None, lat2: float | None) -> int:
    if None in (lon1, lat1, lon2, lat2):
        return DEFAULT_TRAVEL_MINUTES
    assert lon1 is not None and lat1 is not None and lon2 is not None and lat2 is not None
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return travel_minutes_km(2 * 6371 * math.asin(math.sqrt(h)))


def _roster_row(session: Session, programme_id: uuid.UUID, first: date) -> RosterRow | None:
    return session.scalar(select(RosterRow).where(RosterRow.programme_id == programme_id, RosterRow.month == first))


def solve_roster(
    session: Session,
    programme_id: uuid.UUID | str,
    month: date | str,
    options: rostering.SolverOptions | None = None,
    *,
    actor: Actor = SYSTEM,
) -> RosterOut:
    """Solve (or re-solve around the locked entries) a programme's month and store it as the draft roster."""
    programme = get_programme(session, programme_id)
    require_planner(session, actor, programme)
    first = month_start(month)
    problem = build_problem(session, programme.id, first)
    if not problem.experts:
        raise Invalid("the programme has no posted experts to roster", field="programme")
    row = _roster_row(session, programme.id, first)
    previous = _stored_roster(session, row) if row is not None else None
    result = rostering.solve(problem, options, previous)
    if row is None:
        row = RosterRow(programme_id=programme.id, month=first)
        session.add(row)
        session.flush()
    session.execute(delete(RosterEntry).where(RosterEntry.roster_id == row.id, RosterEntry.locked.is_(False)))
    chosen = {(uuid.UUID(a.expert_id), a.day): a for a in result.roster.assignments}
    kept = set()
    for entry in session.scalars(select(RosterEntry).where(RosterEntry.roster_id == row.id, RosterEntry.locked)):
        kept.add((entry.practitioner_id, entry.day))
        solved = chosen.get((entry.practitioner_id, entry.day))
        if solved and entry.facility_id and str(entry.facility_id) == solved.hospital_id:
            entry.specialty = solved.specialty
    session.add_all(
        RosterEntry(
            roster_id=row.id,
            practitioner_id=uuid.UUID(a.expert_id),
            day=a.day,
            facility_id=uuid.UUID(a.hospital_id),
            specialty=a.specialty,
        )
        for a in result.roster.assignments
        if (uuid.UUID(a.expert_id), a.day) not in kept
    )
    row.status = "draft"
    row.solver_status = result.status
    row.feasible = result.feasible
    row.unmet_sessions = result.unmet_sessions
    row.demand_sessions = result.demand_sessions
    row.shortfalls = [_jsonable(asdict(s)) for s in result.shortfalls]
    row.solved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "outreach.roster.solve",
        resource=f"outreach/roster/{row.id}",
        detail={"status": result.status, "feasible": result.feasible, "seconds": round(result.seconds, 2)},
    )
    outbox.emit(session, "outreach.roster.solved", subject=str(row.id), payload={"feasible": result.feasible})
    return get_roster(session, row.id)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.items()}


def _stored_roster(session: Session, row: RosterRow) -> Roster:
    entries = session.scalars(select(RosterEntry).where(RosterEntry.roster_id == row.id)).all()
    return Roster(
        [
            Assignment(str(e.practitioner_id), e.day, str(e.facility_id), e.specialty or "", e.locked)
            for e in entries
            if e.facility_id is not None
        ]
    )


def get_roster(session: Session, roster_id: uuid.UUID | str) -> RosterOut:
    """The stored roster, checked again by the independent validator (entries may have been locked by hand since)."""
    row = session.get(RosterRow, parse_id(roster_id, "roster", "roster"))
    if row is None:
        raise NotFound(f"no roster with id {roster_id}", field="roster")
    entries = session.scalars(
        select(RosterEntry)
        .where(RosterEntry.roster_id == row.id)
        .order_by(RosterEntry.day, RosterEntry.practitioner_id)
    ).all()
    problem = build_problem(session, row.programme_id, row.month)
    violations = rules.validate(problem, _stored_roster(session, row))
    return RosterOut(
        id=row.id,
        programme_id=row.programme_id,
        month=row.month,
        status=row.status,
        solver_status=row.solver_status,
        feasible=row.feasible,
        unmet_sessions=row.unmet_sessions,
        demand_sessions=row.demand_sessions,
        shortfalls=list(row.shortfalls or []),
        entries=[RosterEntryOut.model_validate(e) for e in entries],
        violations=[ViolationOut(**asdict(v)) for v in violations],
    )


def find_roster(session: Session, programme_id: uuid.UUID | str, month: date | str) -> RosterOut:
    programme = get_programme(session, programme_id)
    row = _roster_row(session, programme.id, month_start(month))
    if row is None:
        raise NotFound(f"no roster for {month_start(month):%Y-%m} yet: solve it first", field="month")
    return get_roster(session, row.id)


def lock_entry(
    session: Session,
    roster_id: uuid.UUID | str,
    practitioner_id: uuid.UUID | str,
    day: date,
    facility: str | None,
    specialty: str | None = None,
    *,
    actor: Actor = SYSTEM,
) -> RosterEntryOut:
    """A coordinator fixes an expert's day (at a facility, or free of outreach); re-solving keeps it."""
    row = session.get(RosterRow, parse_id(roster_id, "roster", "roster"))
    if row is None:
        raise NotFound(f"no roster with id {roster_id}", field="roster")
    require_planner(session, actor, get_programme(session, row.programme_id))
    last = row.month + timedelta(days=calendar.monthrange(row.month.year, row.month.month)[1] - 1)
    if not row.month <= day <= last:
        raise Invalid(f"{day} is outside the roster's month {row.month:%Y-%m}", field="day")
    pid = parse_id(practitioner_id, "practitioner_id", "practitioner")
    if not session.scalar(
        select(Posting.id).where(Posting.programme_id == row.programme_id, Posting.practitioner_id == pid)
    ):
        raise Invalid("this expert has no posting in the roster's programme", field="practitioner_id")
    facility_id = network.resolve_facility_id(session, facility, field="facility") if facility else None
    entry = session.scalar(
        select(RosterEntry).where(
            RosterEntry.roster_id == row.id, RosterEntry.practitioner_id == pid, RosterEntry.day == day
        )
    )
    if entry is None:
        entry = RosterEntry(roster_id=row.id, practitioner_id=pid, day=day)
        session.add(entry)
    entry.facility_id = facility_id
    entry.specialty = specialty if facility_id else None  # None: the next solve picks the specialty served
    entry.locked = True
    entry.locked_by = actor.username
    session.flush()
    audit.record(session, actor, "outreach.roster.lock", resource=f"outreach/roster/{row.id}")
    return RosterEntryOut.model_validate(entry)
