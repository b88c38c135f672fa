"""What happens on site: check-ins against a posting's days-per-week rule (compliance and its alerts), visiting-day
activities (ward rounds, surgeries linked to FHIR Procedures, teaching with attendees), local doctors' skills logs,
and the impact of a programme on its receiving hospitals, counted from real records.

Services take a session and never commit; the rules (weeks, proration, alerts) are in rules.py.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yilian.errors import Conflict, Forbidden, Invalid, NotFound
from yilian.events import service as outbox
from yilian.fhir import store
from yilian.network import service as network
from yilian.outreach import fhir as outreach_fhir
from yilian.outreach import rules
from yilian.outreach.clinics import local_now
from yilian.outreach.models import (
    Activity,
    Appointment,
    CheckIn,
    Clinic,
    ComplianceAlert,
    Posting,
    Programme,
    SkillEntry,
    Slot,
    WaitlistEntry,
)
from yilian.outreach.schemas import (
    ActivityIn,
    ActivityKind,
    ComplianceAlertOut,
    ImpactFigure,
    ImpactOut,
    PostingComplianceOut,
    SkillIn,
    SkillLevel,
    SkillProgressOut,
    WeekComplianceOut,
)
from yilian.outreach.service import get_programme as _programme
from yilian.outreach.service import may_plan
from yilian.outreach.service import parse_id as _uuid
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor
from yilian.security.roles import Role

LEVEL_ORDER = [SkillLevel.OBSERVED, SkillLevel.ASSISTED, SkillLevel.SUPERVISED, SkillLevel.INDEPENDENT]


def _posting_of(session: Session, programme: Programme, practitioner_id: str) -> Posting:
    pid = _uuid(practitioner_id, "practitioner_id", "practitioner")
    posting = session.scalar(
        select(Posting).where(Posting.programme_id == programme.id, Posting.practitioner_id == pid)
    )
    if posting is None:
        raise Invalid("this expert has no posting in the programme", field="practitioner_id")
    return posting


def _require_site_staff(
    session: Session,
    actor: Actor,
    facility_id: uuid.UUID,
    practitioner_home: uuid.UUID | None = None,
    *,
    programme: Programme | None = None,
) -> None:
    """Records of what happened on site are kept by the receiving hospital, the expert's home hospital (the expert
    themself), and the programme's coordinators (any coordinator or administrator for a record outside a programme,
    such as a local doctor's skills log)."""
    if actor.facility_id is not None and actor.facility_id in (facility_id, practitioner_home):
        return
    if programme is not None and may_plan(session, actor, programme):
        return
    if programme is None and actor.role in (Role.SYSTEM_ADMIN, Role.REFERRAL_COORDINATOR, Role.CONSORTIUM_ADMIN):
        return
    raise Forbidden("only the receiving hospital, the expert's hospital and the programme's coordinators record this")


# ----------------------------------------------------------------------------------------------------------------------
# Check-ins and compliance


def check_in(
    session: Session, programme_id: uuid.UUID | str, practitioner_id: str, day: date, *, actor: Actor = SYSTEM
) -> CheckIn:
    """Record an expert on site at the posted hospital on a day (once per day)."""
    programme = _programme(session, programme_id)
    posting = _posting_of(session, programme, practitioner_id)
    expert = network.get_practitioner(session, posting.practitioner_id)
    _require_site_staff(session, actor, posting.facility_id, expert.home_facility_id, programme=programme)
    if day > local_now().date():
        raise Invalid("a check-in cannot be in the future", field="day")
    if (posting.start and day < posting.start) or (posting.end and day > posting.end):
        raise Invalid("the day is outside the expert's posting", field="day")
    taken = session.scalar(select(CheckIn.id).where(CheckIn.posting_id == posting.id, CheckIn.day == day))
    if taken:
        raise Conflict(f"{expert.name} is already checked in on {day}", field="day")
    row = CheckIn(
        posting_id=posting.id,
        practitioner_id=posting.practitioner_id,
        facility_id=posting.facility_id,
        day=day,
        recorded_by=actor.username,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "outreach.checkin", resource=f"PractitionerRole/{posting.practitioner_role_id}")
    return row


def compliance(
    session: Session, programme_id: uuid.UUID | str, first: date, last: date, *, today: date | None = None
) -> list[PostingComplianceOut]:
    """Per posting with a days-per-week rule: days on site each week against the rule, and the alerts (weeks over
    and short). Today defaults to the local date."""
    if last < first:
        raise Invalid("the period ends before it starts", field="last")
    programme = _programme(session, programme_id)
    today = today or local_now().date()
    postings = session.scalars(
        select(Posting).where(Posting.programme_id == programme.id, Posting.min_days_per_week > 0)
    ).all()
    out = []
    for posting in postings:
        lo = max(first, posting.start) if posting.start else first
        hi = min(last, posting.end) if posting.end else last
        if hi < lo:
            continue
        days = set(
            session.scalars(
                select(CheckIn.day).where(CheckIn.posting_id == posting.id, CheckIn.day >= lo, CheckIn.day <= hi)
            )
        )
        weeks = rules.weekly_compliance(days, lo, hi, posting.min_days_per_week)
        alerts = rules.compliance_alerts(weeks, today)
        expert = network.get_practitioner(session, posting.practitioner_id)
        facility = network.get_facility(session, posting.facility_id)
        out.append(
            PostingComplianceOut(
                posting_id=posting.id,
                practitioner_id=posting.practitioner_id,
                practitioner_name=expert.name,
                facility_name=facility.name,
                kind=posting.kind,
                min_days_per_week=posting.min_days_per_week,
                weeks=[_week(w) for w in weeks],
                alerts=[_week(w) for w in alerts],
            )
        )
    return out


def _week(w: rules.WeekCompliance) -> WeekComplianceOut:
    return WeekComplianceOut(
        week_start=w.week_start, days=w.days, required=w.required, on_site=w.on_site, short_by=w.short_by
    )


def raise_compliance_alerts(session: Session, programme_id: uuid.UUID | str, week_start: date) -> int:
    """After a week: for each resident expert who fell short, one alert row (the programme's inbox) and one outbox
    event (delivered to whoever subscribes: the consortium office's inbox, a webhook) — once per expert and week,
    however often this runs (the periodic job, cron, a coordinator). Returns how many were new."""
    monday = week_start - timedelta(days=week_start.weekday())
    rows = compliance(session, programme_id, monday, monday + timedelta(days=6), today=monday + timedelta(days=7))
    n = 0
    for row in rows:
        for alert in row.alerts:
            raised = session.scalar(
                select(ComplianceAlert.id).where(
                    ComplianceAlert.posting_id == row.posting_id, ComplianceAlert.week_start == alert.week_start
                )
            )
            if raised is not None:
                continue
            posting = session.get(Posting, row.posting_id)
            assert posting is not None
            try:
                # Two runs at once (the server's job and a cron command): the unique key lets only one through.
                with session.begin_nested():
                    session.add(
                        ComplianceAlert(
                            programme_id=posting.programme_id,
                            posting_id=posting.id,
                            practitioner_id=posting.practitioner_id,
                            facility_id=posting.facility_id,
                            week_start=alert.week_start,
                            required=alert.required,
                            on_site=alert.on_site,
                        )
                    )
                    session.flush()
            except IntegrityError:
                continue
            outbox.emit(
                session,
                "outreach.compliance.alert",
                subject=str(row.posting_id),
                payload={
                    "programme_id": str(posting.programme_id),
                    "practitioner_id": str(posting.practitioner_id),
                    "facility_id": str(posting.facility_id),
                    "expert": row.practitioner_name,
                    "facility": row.facility_name,
                    "week_start": alert.week_start.isoformat(),
                    "required": alert.required,
                    "on_site": alert.on_site,
                },
            )
            n += 1
    return n


def raise_due_alerts(session: Session, *, today: date | None = None, weeks: int = 2) -> int:
    """Every programme's alerts for the last `weeks` finished weeks (more than one, so that a server that was down
    over a Monday catches up); already raised ones are skipped. What the periodic job and `yilian outreach alerts`
    run. Returns how many were new."""
    today = today or local_now().date()
    this_monday = today - timedelta(days=today.weekday())
    programmes = session.scalars(select(Programme.id).order_by(Programme.created_at)).all()
    return sum(
        raise_compliance_alerts(session, pid, this_monday - timedelta(days=7 * k))
        for pid in programmes
        for k in range(1, weeks + 1)
    )


def list_alerts(session: Session, programme_id: uuid.UUID | str, *, limit: int = 50) -> list[ComplianceAlertOut]:
    """The alerts raised for a programme, newest week first."""
    programme = _programme(session, programme_id)
    rows = session.scalars(
        select(ComplianceAlert)
        .where(ComplianceAlert.programme_id == programme.id)
        .order_by(ComplianceAlert.week_start.desc(), ComplianceAlert.created_at)
        .limit(limit)
    ).all()
    return [
        ComplianceAlertOut(
            id=r.id,
            posting_id=r.posting_id,
            practitioner_id=r.practitioner_id,
            practitioner_name=network.get_practitioner(session, r.practitioner_id).name,
            facility_id=r.facility_id,
            week_start=r.week_start,
            required=r.required,
            on_site=r.on_site,
            raised_at=r.created_at,
        )
        for r in rows
    ]


# ----------------------------------------------------------------------------------------------------------------------
# Visiting-day activities and skills


def record_activity(
    session: Session, programme_id: uuid.UUID | str, data: ActivityIn, *, actor: Actor = SYSTEM
) -> Activity:
    """A ward round, surgery or teaching session on a visiting day. A surgery (or mentored surgery) needs its patient
    and becomes a FHIR Procedure at the receiving hospital, so that operation counts come from records."""
    programme = _programme(session, programme_id)
    posting = _posting_of(session, programme, data.practitioner_id)
    facility_id = network.resolve_facility_id(session, data.facility, field="facility")
    if str(facility_id) not in programme.receiving_facility_ids:
        raise Invalid("the facility does not receive experts in this programme", field="facility")
    expert = network.get_practitioner(session, posting.practitioner_id)
    _require_site_staff(session, actor, facility_id, expert.home_facility_id, programme=programme)
    team = [str(network.get_practitioner(session, p).id) for p in data.local_team]
    attendees = [str(network.get_practitioner(session, p).id) for p in dict.fromkeys(data.attendees)]
    patient_ref = data.patient_ref.removeprefix("Patient/") if data.patient_ref else None
    if data.kind.is_operation:
        if not patient_ref:
            raise Invalid("a surgery is recorded with its patient", field="patient_ref")
        if not store.exists(session, "Patient", patient_ref):
            raise NotFound(f"no patient with id {patient_ref}", field="patient_ref")
    elif data.operation_level is not None:
        raise Invalid("only surgeries have an operation level", field="operation_level")
    if data.kind.is_teaching and not attendees:
        raise Invalid("list who attended the teaching", field="attendees")
    activity = Activity(
        programme_id=programme.id,
        practitioner_id=posting.practitioner_id,
        facility_id=facility_id,
        day=data.day,
        kind=data.kind.value,
        title=data.title.strip(),
        local_team=team,
        attendees=attendees,
        patient_ref=patient_ref,
        operation_level=data.operation_level,
        recorded_by=actor.username,
    )
    session.add(activity)
    session.flush()
    if data.kind.is_operation and patient_ref:
        procedure_id = str(activity.id)
        store.upsert(
            session,
            outreach_fhir.to_procedure(
                procedure_id=procedure_id,
                title=activity.title,
                patient_ref=patient_ref,
                day=data.day,
                expert_id=posting.practitioner_id,
                facility_id=facility_id,
                local_team=team,
                operation_level=data.operation_level,
                activity_id=activity.id,
                planned=data.day > local_now().date(),
            ),
            actor=actor,
        )
        activity.procedure_ref = f"Procedure/{procedure_id}"
    audit.record(
        session,
        actor,
        f"outreach.activity.{activity.kind}",
        patient=f"Patient/{patient_ref}" if patient_ref else None,
        resource=f"outreach/activity/{activity.id}",
    )
    return activity


def list_activities(session: Session, programme_id: uuid.UUID | str, *, limit: int = 200) -> list[Activity]:
    programme = _programme(session, programme_id)
    return list(
        session.scalars(
            select(Activity)
            .where(Activity.programme_id == programme.id)
            .order_by(Activity.day.desc(), Activity.created_at.desc())
            .limit(limit)
        )
    )


def log_skill(session: Session, data: SkillIn, *, actor: Actor = SYSTEM) -> SkillEntry:
    doctor = network.get_practitioner(session, data.practitioner_id)
    _require_site_staff(session, actor, doctor.home_facility_id)
    supervisor = network.get_practitioner(session, data.supervisor_id).id if data.supervisor_id else None
    if data.level != SkillLevel.INDEPENDENT and data.level != SkillLevel.OBSERVED and supervisor is None:
        raise Invalid("name the supervising expert", field="supervisor_id")
    activity_id = None
    if data.activity_id:
        activity = session.get(Activity, _uuid(data.activity_id, "activity_id", "activity"))
        if activity is None:
            raise NotFound(f"no activity with id {data.activity_id}", field="activity_id")
        activity_id = activity.id
    entry = SkillEntry(
        practitioner_id=doctor.id,
        procedure=data.procedure.strip(),
        day=data.day,
        level=data.level.value,
        supervisor_id=supervisor,
        activity_id=activity_id,
        recorded_by=actor.username,
    )
    session.add(entry)
    session.flush()
    audit.record(session, actor, "outreach.skill.log", resource=f"Practitioner/{doctor.id}")
    return entry


def skills_of(session: Session, practitioner_id: str) -> list[SkillProgressOut]:
    """Per procedure: how often observed, assisted, done under supervision, done independently, and since when."""
    doctor = network.get_practitioner(session, practitioner_id)
    rows = session.scalars(
        select(SkillEntry).where(SkillEntry.practitioner_id == doctor.id).order_by(SkillEntry.day)
    ).all()
    by_procedure: dict[str, list[SkillEntry]] = defaultdict(list)
    for r in rows:
        by_procedure[r.procedure].append(r)
    out = []
    for procedure, entries in sorted(by_procedure.items()):
        counts = {lv.value: sum(1 for e in entries if e.level == lv.value) for lv in LEVEL_ORDER}
        independent = [e.day for e in entries if e.level == SkillLevel.INDEPENDENT.value]
        best = max((LEVEL_ORDER.index(SkillLevel(e.level)) for e in entries), default=0)
        out.append(
            SkillProgressOut(
                procedure=procedure,
                counts=counts,
                first_independent=independent[0] if independent else None,
                level=LEVEL_ORDER[best].value,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Impact


def _count(session: Session, res_type: str, params: list[tuple[str, str]]) -> int:
    result = store.search(session, res_type, [*params, ("_summary", "count")])
    return int(result.total or 0)


def impact(session: Session, programme_id: uuid.UUID | str, *, window_days: int = 90) -> ImpactOut:
    """The receiving hospitals before the programme started vs now (the latest window), from the FHIR store's
    Encounters (outpatient visits; discharges = inpatient stays that ended) and Procedures (operations; 3rd/4th
    level by the operation-level extension); and from the programme's own clinics and activities.

    Patients who would otherwise have travelled (out-of-county referrals avoided) are counted as the patients seen
    in the programme's expert clinics plus those operated on by its experts at the receiving hospitals: each is a
    visit that, before the programme, meant going to the sending hospital's city."""
    programme = _programme(session, programme_id)
    if not 7 <= window_days <= 730:
        raise Invalid("the window is 7 to 730 days", field="window_days")
    start = programme.start or programme.created_at.date()
    today = local_now().date()
    # Before: the window up to the start. After: the latest window (or since the start, if the programme is younger).
    before = (start - timedelta(days=window_days), start)
    after_end = max(today + timedelta(days=1), start + timedelta(days=1))
    after = (max(start, after_end - timedelta(days=window_days)), after_end)
    figures: dict[str, list[int]] = {
        "outpatient_visits": [0, 0],
        "discharges": [0, 0],
        "operations": [0, 0],
        "operations_level_3_4": [0, 0],
    }
    for facility in programme.receiving_facility_ids:
        for i, (lo, hi) in enumerate((before, after)):
            when = [("date", f"ge{lo.isoformat()}"), ("date", f"lt{hi.isoformat()}")]
            org = ("service-provider", f"Organization/{facility}")
            figures["outpatient_visits"][i] += _count(session, "Encounter", [org, ("class", "AMB"), *when])
            figures["discharges"][i] += _count(
                session, "Encounter", [org, ("class", "IMP"), ("status", "finished"), *when]
            )
            loc = ("location", f"Location/{facility}")
            ops = store.search(session, "Procedure", [loc, ("status", "completed"), *when, ("_count", "1000")])
            figures["operations"][i] += int(ops.total or len(ops.resources))
            figures["operations_level_3_4"][i] += sum(
                1
                for p in ops.resources
                if any(
                    e.get("url") == outreach_fhir.EXT_OPERATION_LEVEL and int(e.get("valueInteger", 0)) >= 3
                    for e in p.get("extension", [])
                )
            )
    clinic_ids = list(session.scalars(select(Clinic.id).where(Clinic.programme_id == programme.id)))
    offered = booked = seen = unmet = 0
    if clinic_ids:
        offered = session.scalar(select(func.count(Slot.id)).where(Slot.clinic_id.in_(clinic_ids))) or 0
        booked = (
            session.scalar(select(func.count(Slot.id)).where(Slot.clinic_id.in_(clinic_ids), Slot.status == "busy"))
            or 0
        )
        seen = (
            session.scalar(
                select(func.count(Appointment.id)).where(
                    Appointment.clinic_id.in_(clinic_ids), Appointment.status.in_(("booked", "arrived"))
                )
            )
            or 0
        )
        unmet = (
            session.scalar(
                select(func.count(WaitlistEntry.id)).where(
                    WaitlistEntry.clinic_id.in_(clinic_ids), WaitlistEntry.status == "waiting"
                )
            )
            or 0
        )
    activities = session.execute(
        select(Activity.kind, func.count()).where(Activity.programme_id == programme.id).group_by(Activity.kind)
    ).all()
    per_kind = dict(activities)
    surgeries = per_kind.get(ActivityKind.SURGERY.value, 0) + per_kind.get(ActivityKind.MENTORED_SURGERY.value, 0)
    teaching = sum(n for k, n in per_kind.items() if ActivityKind(k).is_teaching)
    attendees: set[str] = set()
    for (people,) in session.execute(
        select(Activity.attendees).where(
            Activity.programme_id == programme.id,
            Activity.kind.in_([k.value for k in ActivityKind if k.is_teaching]),
        )
    ):
        attendees.update(people or [])
    return ImpactOut(
        programme_id=programme.id,
        start=start,
        window_days=window_days,
        figures=[
            {
                **ImpactFigure(name=k, before=v[0], after=v[1]).model_dump(),
                "change": ImpactFigure(name=k, before=v[0], after=v[1]).change,
            }
            for k, v in figures.items()
        ],
        referrals_avoided=seen + surgeries,
        slots_offered=offered,
        slots_booked=booked,
        fill_rate=rules.fill_rate(booked, offered),
        unmet_demand=unmet,
        surgeries_by_experts=surgeries,
        teaching_sessions=teaching,
        doctors_trained=len(attendees),
    )
