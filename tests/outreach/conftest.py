"""Fixtures for the outreach tests: a small Laixi-like region in a real database (the roster-only region is in
tests/support/roster_region.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine

from support.roster_region import laixi_region
from yilian.db import unit_of_work
from yilian.network import service as network
from yilian.network.models import Division
from yilian.network.schemas import FacilityIn, PractitionerIn
from yilian.outreach import clinics, service
from yilian.outreach.clinics import local_now
from yilian.outreach.schemas import ClinicIn, PostingIn, PostingKind, Problem, ProgrammeIn
from yilian.security import tokens
from yilian.security.models import User


@pytest.fixture
def laixi() -> Problem:
    return laixi_region()


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
        }
        # Users with no usable password (the tests use tokens): hashing five passwords would take seconds.
        s.add_all(
            User(
                username=username,
                display_name=username,
                role=role,
                facility_id=uuid.UUID(facility_id) if facility_id else None,
                division_code=division,
                password_hash="!",
            )
            for username, (role, facility_id, division) in users.items()
        )
        site = Site(pid, str(clinic.id), day, people["张三"], people["李四"], people["孙医生"], fac)
    site.tokens = {u: tokens.issue(u) for u in users}
    return site


@pytest.fixture
def site(clean_db: Engine) -> Iterator[Site]:
    yield build_site()
