"""Small, hand-made outreach regions shared by the tests: `laixi_region()` is a roster problem as plain values (a
city hospital sending experts to two near county hospitals and a far one); `build_site()` writes a Laixi-like region
into the test database (facilities, experts, a programme, an expert clinic, users with tokens)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from yilian.db import unit_of_work
from yilian.network import service as network
from yilian.network.models import Division
from yilian.network.schemas import FacilityIn, PractitionerIn
from yilian.outreach import clinics, service
from yilian.outreach.clinics import local_now
from yilian.outreach.schemas import (
    ClinicIn,
    Demand,
    Expert,
    Hospital,
    PostingIn,
    PostingKind,
    Problem,
    ProgrammeIn,
    Recurrence,
)
from yilian.security import tokens
from yilian.security.models import User

DEC = date(2026, 12, 1)  # a Tuesday: week 1 is Dec 1–6 (partial), weeks 2–4 are full, week 5 is Dec 28–31


def dec(day: int) -> date:
    return date(2026, 12, day)


def weekdays(weekday: int, month_start: date = DEC) -> frozenset[date]:
    """Every given weekday (0 = Monday) of December 2026."""
    return frozenset(d for d in (month_start + timedelta(days=i) for i in range(31)) if d.weekday() == weekday)


def laixi_region(**overrides: object) -> Problem:
    hospitals = [
        Hospital("S01", "青岛市市立医院", "tertiary"),
        Hospital("H1", "莱西市人民医院", "county"),
        Hospital("H2", "莱西市中医医院", "county"),
        Hospital("H3", "炎陵县人民医院", "county"),
    ]
    travel = {
        ("S01", "H1"): 60,
        ("S01", "H2"): 70,
        ("H1", "H2"): 20,
        ("S01", "H3"): 240,
        ("H1", "H3"): 200,
        ("H2", "H3"): 210,
    }
    experts = [
        Expert.resident("E1", "张三", "S01", ["cardiology"], "H1", home_duty=frozenset({dec(9)})),
        Expert.resident("E2", "刘洋", "S01", ["paediatrics", "neurology"], "H2"),
        Expert(
            "E3",
            "李四",
            "S01",
            ("neurology",),
            PostingKind.RECURRING,
            posted_to="H3",
            recurrence=Recurrence.parse("FREQ=MONTHLY;BYDAY=1SA,1SU"),
            home_duty=weekdays(0) | weekdays(1) | weekdays(2),
            max_outreach_days=6,
        ),
        Expert(
            "E4",
            "王五",
            "S01",
            ("orthopaedics",),
            PostingKind.HONORARY_CHIEF,
            posted_to="H2",
            min_days_per_month=2,
            max_outreach_days=5,
            home_duty=weekdays(0) | weekdays(1) | weekdays(3),
        ),
        Expert(
            "E5",
            "赵六",
            "S01",
            ("paediatrics",),
            PostingKind.SHORT_TERM,
            posted_to="H2",
            posting_start=dec(7),
            posting_end=dec(20),
            day_trips=False,
        ),
        Expert(
            "E6",
            "陈静",
            "S01",
            ("cardiology", "neurology"),
            PostingKind.RECURRING,
            posted_to="H2",
            recurrence=Recurrence.parse("FREQ=WEEKLY;BYDAY=TH"),
            home_duty=weekdays(0) | weekdays(2),
            max_outreach_days=7,
        ),
    ]
    demand = [
        Demand("H1", "cardiology", 5),
        Demand("H2", "orthopaedics", 2),
        Demand("H2", "paediatrics", 5, weight=2),
        Demand("H2", "cardiology", 2),
        Demand("H2", "neurology", 1),
        Demand("H3", "neurology", 2),
    ]
    problem = Problem(DEC, 31, hospitals, experts, demand, travel)
    for key, value in overrides.items():
        setattr(problem, key, value)
    return problem


@dataclass
class Site:
    programme_id: str
    clinic_id: str
    day: date  # a clinic day open for booking
    zhang: str  # resident cardiologist posted to LXRM
    li: str  # first-weekend neurologist at LXZY
    local_doctor: str  # a surgeon of LXRM
    facilities: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def build_site(quota: int = 3, horizon_days: int = 7) -> Site:
    today = local_now().date()
    with unit_of_work() as s:
        s.add_all(
            [Division(code="3702", name="青岛市", level="city"), Division(code="370285", name="莱西市", level="county")]
        )
        s.flush()
        fac = {}
        for code, name, level, division, lon, lat in [
            ("QDSL", "青岛市市立医院", "tertiary", "3702", 120.38, 36.07),
            ("LXRM", "莱西市人民医院", "county_hospital", "370285", 120.52, 36.89),
            ("LXZY", "莱西市中医医院", "county_hospital", "370285", 120.50, 36.87),
            ("LXWS", "莱西市院上镇卫生院", "township_centre", "370285", 120.45, 36.95),
        ]:
            fac[code] = str(
                network.create_facility(
                    s, FacilityIn(code=code, name=name, level=level, division_code=division, lon=lon, lat=lat)
                ).id
            )
        people = {}
        for name, g, spec, home in [
            ("张三", "male", "cardiology", "QDSL"),
            ("李四", "female", "neurology", "QDSL"),
            ("孙医生", "male", "general_surgery", "LXRM"),
        ]:
            people[name] = str(
                network.create_practitioner(
                    s, PractitionerIn(name=name, gender=g, title="chief", specialty=spec, home_facility_id=home)
                ).id
            )
        programme = service.create_programme(
            s,
            ProgrammeIn(
                name="市立医院—莱西专家下沉",
                sending_facility="QDSL",
                receiving_facilities=["LXRM", "LXZY"],
                start=today - timedelta(days=60),
            ),
        )
        pid = str(programme.id)
        service.add_posting(
            s, pid, PostingIn(practitioner_id=people["张三"], facility="LXRM", kind=PostingKind.RESIDENT)
        )
        service.add_posting(
            s,
            pid,
            PostingIn(
                practitioner_id=people["李四"],
                facility="LXZY",
                kind=PostingKind.RECURRING,
                recurrence="FREQ=MONTHLY;BYDAY=1SA,1SU",
            ),
        )
        day = today + timedelta(days=2)
        clinic = clinics.create_clinic(
            s,
            ClinicIn(
                practitioner_id=people["张三"],
                facility="LXRM",
                programme_id=pid,
                daily_quota=quota,
                horizon_days=horizon_days,
                release_time="00:00",
                days=[day],
            ),
        )
        users = {
            "coord": ("referral_coordinator", fac["LXRM"], None),
            "township": ("township_doctor", fac["LXWS"], None),
            "official": ("commission_official", None, "3702"),
            "desk": ("county_doctor", fac["LXRM"], None),
            "tcm": ("county_doctor", fac["LXZY"], None),
            # 张三's own account at the home hospital, a colleague there, and a coordinator outside the programme
            "expert": ("specialist", fac["QDSL"], None),
            "colleague": ("specialist", fac["QDSL"], None),
            "far_coord": ("referral_coordinator", fac["LXWS"], None),
        }
        # The colleague bears the expert's name too: only the account linked to 张三's record is the expert.
        names = {"expert": "张三（心内科）", "colleague": "张三（普外科）"}
        # Users with no usable password (the tests use tokens): hashing five passwords would take seconds.
        s.add_all(
            User(
                username=username,
                display_name=names.get(username, username),
                role=role,
                facility_id=uuid.UUID(facility_id) if facility_id else None,
                division_code=division,
                password_hash="!",
            )
            for username, (role, facility_id, division) in users.items()
        )
        s.flush()
        network.link_account(s, "expert", people["张三"])
        site = Site(pid, str(clinic.id), day, people["张三"], people["李四"], people["孙医生"], fac)
    site.tokens = {u: tokens.issue(u) for u in users}
    return site
