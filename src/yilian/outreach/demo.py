"""Expert-outreach activity for a built demo region: a Laixi-style programme of resident experts (≥ 4 days a week,
with their check-ins — one of them short last week), a Zhuzhou→Yanling-style monthly-weekend programme with an
honorary chief, expert clinics of 30 numbers a day released 7 days ahead, bookings (one day full with a waitlist),
visiting-day ward rounds, surgeries and teaching, a local doctor's skills log, and this month's roster.

`seed_demo(session, anchors=region.anchors)` is the one entry point (the twin's demo builder calls it after the
registry is built). It goes through the same services as the API, so the demo's data obeys every rule.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.errors import NotFound, YilianError
from yilian.fhir import store
from yilian.network import service as network
from yilian.network.schemas import PractitionerIn
from yilian.outreach import clinics, service, visits
from yilian.outreach.models import Appointment, Slot, WaitlistEntry
from yilian.outreach.rostering import SolverOptions
from yilian.outreach.schemas import (
    ActivityIn,
    ActivityKind,
    ClinicIn,
    DemandIn,
    PatientIn,
    PostingIn,
    PostingKind,
    ProgrammeIn,
    SkillIn,
    SkillLevel,
)
from yilian.security import service as security_service

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["建国", "秀英", "桂兰", "志强", "丽", "伟", "芳", "军", "敏", "静", "海燕", "国华", "玉兰", "德明", "春梅"]
SPECIALTIES = ["心血管内科", "神经内科", "普外科", "骨科", "儿科", "妇产科"]


@dataclass(frozen=True)
class OutreachDemo:
    resident_programme: uuid.UUID
    weekend_programme: uuid.UUID
    clinics: int
    slots: int
    appointments: int
    waiting: int

    def summary(self) -> str:
        return (
            f"outreach: 2 programmes, {self.clinics} expert clinics, {self.slots} slots, "
            f"{self.appointments} appointments, {self.waiting} on waitlists"
        )


def _experts(session: Session, sending: uuid.UUID, needed: int, rng: random.Random) -> list[str]:
    """Senior practitioners whose home is the sending hospital; registered if the region has too few."""
    page = network.list_practitioners(session, facility_id=sending, limit=200)
    found = [
        p
        for p in page.items
        if p.home_facility_id == sending and p.title in ("chief", "associate_chief") and p.specialty
    ]
    ids = [str(p.id) for p in found[:needed]]
    for i in range(needed - len(ids)):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        ids.append(
            str(
                network.create_practitioner(
                    session,
                    PractitionerIn(
                        name=name,
                        gender="male" if i % 2 else "female",
                        title="chief",
                        specialty=SPECIALTIES[i % len(SPECIALTIES)],
                        home_facility_id=str(sending),
                    ),
                ).id
            )
        )
    return ids


def _display_name(patient: dict[str, object]) -> str:
    names = patient.get("name") or [{}]
    first = names[0] if isinstance(names, list) and names else {}
    if not isinstance(first, dict):
        return "患者"
    text = first.get("text") or (str(first.get("family", "")) + "".join(first.get("given", []) or []))
    return str(text)[:64] or "患者"


def _patients(session: Session, n: int) -> list[str]:
    found = store.search(session, "Patient", [("_count", str(n))])
    ids = [str(r["id"]) for r in found.resources]
    for i in range(n - len(ids)):
        created = store.create(
            session,
            {
                "resourceType": "Patient",
                "name": [{"text": f"示例患者{i + 1}"}],
                "gender": "male" if i % 2 else "female",
            },
        )
        ids.append(str(created["id"]))
    return ids


def _pick_facilities(session: Session, anchors: dict[str, uuid.UUID] | None) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    sending = (anchors or {}).get("regional_centre")
    if sending is None:
        for level in ("national_regional_centre", "tertiary"):
            top = network.list_facilities(session, level=level, limit=1).items
            if top:
                sending = top[0].id
                break
    counties = [f.id for f in network.list_facilities(session, level="county_hospital", limit=20).items]
    first = (anchors or {}).get("county_hospital") or (counties[0] if counties else None)
    second = next((c for c in counties if c != first), None)
    if sending is None or first is None or second is None:
        raise YilianError("the region needs a regional or tertiary hospital and two county hospitals", field="region")
    return sending, first, second


def _link_demo_expert(session: Session, practitioner_id: uuid.UUID) -> None:
    """The demo's `expert` account, when the region has one at the expert's hospital, becomes the resident expert
    whose clinic is full, under the expert's own name: signing in as `expert` shows that clinic's patients."""
    try:
        user = security_service.get_user(session, "expert")
    except NotFound:
        return
    expert = network.get_practitioner(session, practitioner_id)
    if user.practitioner_id is not None or user.facility_id != expert.home_facility_id:
        return
    network.link_account(session, user.username, practitioner_id)
    title = {"chief": "主任医师", "associate_chief": "副主任医师"}.get(str(expert.title), "医生")
    security_service.update_user(session, user.username, display_name=f"{expert.name}{title}（区域医疗中心）")


def seed_demo(
    session: Session, *, anchors: dict[str, uuid.UUID] | None = None, today: date | None = None, seed: int = 1
) -> OutreachDemo:
    rng = random.Random(seed)
    today = today or clinics.local_now().date()
    sending, resident_site, weekend_site = _pick_facilities(session, anchors)
    experts = _experts(session, sending, 7, rng)
    residents, weekend, honorary = experts[:3], experts[3:6], experts[6]

    # 1. Laixi-style: resident experts on site at least 4 days a week.
    laixi = service.create_programme(
        session,
        ProgrammeIn(
            name="名医托管 · 常驻专家（≥4天/周）",
            sending_facility=str(sending),
            receiving_facilities=[str(resident_site)],
            start=today - timedelta(days=120),
        ),
    )
    for pid in residents:
        service.add_posting(
            session, laixi.id, PostingIn(practitioner_id=pid, facility=str(resident_site), kind=PostingKind.RESIDENT)
        )
    # Check-ins for the last four full weeks: 4–5 days a week, except one expert with 3 days last week (an alert).
    last_monday = today - timedelta(days=today.weekday() + 7)
    for w in range(4):
        monday = last_monday - timedelta(days=7 * w)
        for k, pid in enumerate(residents):
            days = 3 if (w == 0 and k == 0) else rng.choice((4, 5, 5))
            for d in range(days):
                visits.check_in(session, laixi.id, pid, monday + timedelta(days=d))

    # 2. Zhuzhou→Yanling-style: the first weekend of every month, plus an honorary department chief.
    yanling = service.create_programme(
        session,
        ProgrammeIn(
            name="每月第一个周末专家坐诊",
            sending_facility=str(sending),
            receiving_facilities=[str(weekend_site)],
            start=today - timedelta(days=200),
        ),
    )
    for pid in weekend:
        service.add_posting(
            session,
            yanling.id,
            PostingIn(
                practitioner_id=pid,
                facility=str(weekend_site),
                kind=PostingKind.RECURRING,
                recurrence="FREQ=MONTHLY;BYDAY=1SA,1SU",
            ),
        )
    service.add_posting(
        session,
        yanling.id,
        PostingIn(practitioner_id=honorary, facility=str(weekend_site), kind=PostingKind.HONORARY_CHIEF),
    )

    # 3. Expert clinics: 30 numbers a day, released 7 days ahead at 08:00.
    workdays = [today + timedelta(days=i) for i in range(0, 10) if (today + timedelta(days=i)).weekday() < 5][:5]
    made = []
    for pid in residents:
        made.append(
            clinics.create_clinic(
                session,
                ClinicIn(practitioner_id=pid, facility=str(resident_site), programme_id=str(laixi.id), days=workdays),
            )
        )
    weekend_days = [d for d in (today + timedelta(days=i) for i in range(1, 8)) if d.weekday() >= 5]
    for pid in weekend[:2]:
        made.append(
            clinics.create_clinic(
                session,
                ClinicIn(
                    practitioner_id=pid,
                    facility=str(weekend_site),
                    programme_id=str(yanling.id),
                    days=weekend_days,
                    start_time="08:30",
                    end_time="16:30",
                ),
            )
        )

    # 4. Bookings: the first resident clinic's first day is full with a waitlist (demand above quota); others partly.
    counter = 0
    # Half the bookings are for patients already in the shared record (the demo's patients), linked to them.
    known = [(str(r["id"]), _display_name(r)) for r in store.search(session, "Patient", [("_count", "60")]).resources]
    rng.shuffle(known)

    def person() -> PatientIn:
        nonlocal counter
        counter += 1
        phone = f"1370000{counter:04d}"
        if known and counter % 2 == 0:
            ref, name = known.pop()
            return PatientIn(name=name, patient_ref=ref, phone=phone)
        return PatientIn(name=rng.choice(SURNAMES) + rng.choice(GIVEN), phone=phone)

    full_clinic, full_day = made[0], workdays[0]
    _link_demo_expert(session, full_clinic.practitioner_id)
    for _ in range(33):
        clinics.book(session, full_clinic.id, full_day, person())
    for clinic in made[1:]:
        open_days = weekend_days if clinic.facility_id == weekend_site else workdays
        for day in open_days[:2]:
            for _ in range(rng.randint(4, 9)):
                clinics.book(session, clinic.id, day, person())

    # 5. Visiting days: ward rounds, surgeries with the local team (Procedures), teaching; a local doctor's skills.
    local = [
        p.id
        for p in network.list_practitioners(session, facility_id=weekend_site, limit=50).items
        if p.home_facility_id == weekend_site
    ][:6]
    for i in range(2 - len(local)):  # the local team the experts teach
        local.append(
            network.create_practitioner(
                session,
                PractitionerIn(
                    name=rng.choice(SURNAMES) + rng.choice(GIVEN),
                    gender="male" if i else "female",
                    title="attending",
                    specialty=SPECIALTIES[i],
                    home_facility_id=str(weekend_site),
                ),
            ).id
        )
    patients = _patients(session, 4)
    first_weekend = sorted(
        d for d in (today - timedelta(days=i) for i in range(1, 40)) if d.weekday() >= 5 and d.day <= 7
    )[:2] or [today - timedelta(days=14)]
    visit = first_weekend[0]
    visits.record_activity(
        session,
        yanling.id,
        ActivityIn(
            practitioner_id=weekend[0],
            facility=str(weekend_site),
            day=visit,
            kind=ActivityKind.WARD_ROUND,
            title="疑难病例查房",
        ),
    )
    for k, title, level in [(0, "腹腔镜胆囊切除术", 3), (1, "全髋关节置换术", 4), (2, "经皮冠状动脉介入治疗", 4)]:
        visits.record_activity(
            session,
            yanling.id,
            ActivityIn(
                practitioner_id=weekend[k % len(weekend)],
                facility=str(weekend_site),
                day=visit,
                kind=ActivityKind.MENTORED_SURGERY if k == 2 else ActivityKind.SURGERY,
                title=title,
                local_team=[str(p) for p in local[:2]],
                attendees=[str(p) for p in local[:2]] if k == 2 else [],
                patient_ref=patients[k],
                operation_level=level,
            ),
        )
    visits.record_activity(
        session,
        yanling.id,
        ActivityIn(
            practitioner_id=weekend[1],
            facility=str(weekend_site),
            day=visit,
            kind=ActivityKind.LECTURE,
            title="急性卒中的识别与溶栓",
            attendees=[str(p) for p in local],
        ),
    )
    for i, step in enumerate([SkillLevel.OBSERVED, SkillLevel.ASSISTED, SkillLevel.SUPERVISED, SkillLevel.INDEPENDENT]):
        visits.log_skill(
            session,
            SkillIn(
                practitioner_id=str(local[0]),
                procedure="经皮冠状动脉介入治疗",
                day=visit - timedelta(days=90 - 30 * i),
                level=step,
                supervisor_id=weekend[2] if step in (SkillLevel.ASSISTED, SkillLevel.SUPERVISED) else None,
            ),
        )

    # 6. Demand and this month's roster.
    for spec_pid in residents:
        spec = network.get_practitioner(session, spec_pid).specialty or SPECIALTIES[0]
        service.set_demand(session, laixi.id, DemandIn(facility=str(resident_site), specialty=spec, sessions=5))
    for spec_pid in weekend:
        spec = network.get_practitioner(session, spec_pid).specialty or SPECIALTIES[0]
        service.set_demand(session, yanling.id, DemandIn(facility=str(weekend_site), specialty=spec, sessions=1))
    service.solve_roster(session, laixi.id, f"{today:%Y-%m}", SolverOptions(time_limit_seconds=10))
    service.solve_roster(session, yanling.id, f"{today:%Y-%m}", SolverOptions(time_limit_seconds=10))

    ids = [c.id for c in made]
    return OutreachDemo(
        resident_programme=laixi.id,
        weekend_programme=yanling.id,
        clinics=len(made),
        slots=session.scalar(select(func.count(Slot.id)).where(Slot.clinic_id.in_(ids))) or 0,
        appointments=session.scalar(
            select(func.count(Appointment.id)).where(Appointment.clinic_id.in_(ids), Appointment.status == "booked")
        )
        or 0,
        waiting=session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.clinic_id.in_(ids), WaitlistEntry.status == "waiting"
            )
        )
        or 0,
    )
