"""A programme's month rostered from real rows (SQLite and PostgreSQL), locked by a coordinator and re-solved."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import Engine

from yilian.db import unit_of_work
from yilian.errors import Conflict, Invalid
from yilian.network import service as network
from yilian.network.models import Division
from yilian.network.schemas import FacilityIn, PractitionerIn
from yilian.outreach import service
from yilian.outreach.schemas import DemandIn, PostingIn, PostingKind, ProgrammeIn


@dataclass
class Laixi:
    programme_id: str
    zhang: str  # resident cardiologist at the people's hospital
    li: str  # first-weekend neurologist at the TCM hospital
    wang: str  # honorary orthopaedics chief at the TCM hospital


def dec(day: int) -> date:
    return date(2026, 12, day)


@pytest.fixture
def laixi(clean_db: Engine) -> Iterator[Laixi]:
    with unit_of_work() as s:
        s.add_all(
            [Division(code="3702", name="青岛市", level="city"), Division(code="370285", name="莱西市", level="county")]
        )
        s.flush()
        for code, name, level, division, lon, lat in [
            ("QDSL", "青岛市市立医院", "tertiary", "3702", 120.38, 36.07),
            ("LXRM", "莱西市人民医院", "county_hospital", "370285", 120.52, 36.89),
            ("LXZY", "莱西市中医医院", "county_hospital", "370285", 120.50, 36.87),
        ]:
            network.create_facility(
                s, FacilityIn(code=code, name=name, level=level, division_code=division, lon=lon, lat=lat)
            )
        people = {
            name: str(
                network.create_practitioner(
                    s,
                    PractitionerIn(name=name, gender=g, title="chief", specialty=spec, home_facility_id="QDSL"),
                ).id
            )
            for name, g, spec in [
                ("张三", "male", "cardiology"),
                ("李四", "female", "neurology"),
                ("王五", "male", "orthopaedics"),
            ]
        }
        programme = service.create_programme(
            s, ProgrammeIn(name="市立医院—莱西专家下沉", sending_facility="QDSL", receiving_facilities=["LXRM", "LXZY"])
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
                max_outreach_days=6,
            ),
        )
        service.add_posting(
            s, pid, PostingIn(practitioner_id=people["王五"], facility="LXZY", kind=PostingKind.HONORARY_CHIEF)
        )
        service.mark_days(s, people["张三"], [dec(9)], "home_duty")
        service.mark_days(s, people["李四"], [dec(d) for d in range(1, 32) if dec(d).weekday() < 3], "home_duty")
        service.mark_days(
            s, people["王五"], [dec(d) for d in range(1, 32) if dec(d).weekday() in (0, 1, 3)], "home_duty"
        )
        service.set_demand(s, pid, DemandIn(facility="LXRM", specialty="cardiology", sessions=5))
        service.set_demand(s, pid, DemandIn(facility="LXZY", specialty="neurology", sessions=2))
        service.set_demand(s, pid, DemandIn(facility="LXZY", specialty="orthopaedics", sessions=1))
    yield Laixi(pid, people["张三"], people["李四"], people["王五"])


def test_it_rosters_a_programmes_month_from_the_registry(laixi: Laixi) -> None:
    with unit_of_work() as s:
        roster = service.solve_roster(s, laixi.programme_id, "2026-12")

    assert roster.feasible and roster.solver_status == "OPTIMAL"
    assert roster.violations == []
    zhang_days = {e.day for e in roster.entries if str(e.practitioner_id) == laixi.zhang}
    for monday in (7, 14, 21):
        week = {dec(monday + i) for i in range(7)}
        assert len(zhang_days & week) >= 4
    assert dec(9) not in zhang_days
    li = {(e.day, e.facility_id) for e in roster.entries if str(e.practitioner_id) == laixi.li}
    assert {d for d, _ in li} >= {dec(5), dec(6)}
    # Stored, not only returned: read back in a fresh session.
    with unit_of_work() as s:
        again = service.find_roster(s, laixi.programme_id, date(2026, 12, 15))
    assert again.id == roster.id and len(again.entries) == len(roster.entries)


def test_it_keeps_locked_entries_and_explains_a_lock_that_costs_a_visit(laixi: Laixi) -> None:
    with unit_of_work() as s:
        roster = service.solve_roster(s, laixi.programme_id, "2026-12")
    friday = dec(18)  # 王五 is free on Fridays; the coordinator wants him at the TCM hospital that day
    with unit_of_work() as s:
        service.lock_entry(s, roster.id, laixi.wang, friday, "LXZY")
        service.lock_entry(s, roster.id, laixi.li, dec(6), None)  # 李四 kept home on the first Sunday
        again = service.solve_roster(s, laixi.programme_id, "2026-12")

    wang = [e for e in again.entries if str(e.practitioner_id) == laixi.wang and e.day == friday]
    assert len(wang) == 1 and wang[0].locked and wang[0].specialty == "orthopaedics"
    assert not [e for e in again.entries if str(e.practitioner_id) == laixi.li and e.day == dec(6) and e.facility_id]
    # The recurring visit yields to the coordinator's lock, and the roster says so.
    assert not again.feasible
    assert [(sf["rule"], sf["amount"]) for sf in again.shortfalls] == [("recurring_visit", 1)]
    assert "李四" in str(again.shortfalls[0]["message"]) and "2026-12-06" in str(again.shortfalls[0]["message"])
    assert [v.rule for v in again.violations] == ["recurring_visit"]


def test_it_refuses_postings_that_cannot_be_rostered(laixi: Laixi) -> None:
    with pytest.raises(Invalid) as bad_rule, unit_of_work() as s:
        service.add_posting(
            s,
            laixi.programme_id,
            PostingIn(
                practitioner_id=laixi.zhang, facility="LXZY", kind=PostingKind.RECURRING, recurrence="every full moon"
            ),
        )
    assert bad_rule.value.field == "recurrence"
    with pytest.raises(Invalid) as outside, unit_of_work() as s:
        service.add_posting(
            s, laixi.programme_id, PostingIn(practitioner_id=laixi.zhang, facility="QDSL", kind=PostingKind.RESIDENT)
        )
    assert outside.value.field == "facility"
    with pytest.raises(Conflict) as twice, unit_of_work() as s:
        service.add_posting(
            s, laixi.programme_id, PostingIn(practitioner_id=laixi.zhang, facility="LXZY", kind=PostingKind.RESIDENT)
        )
    assert twice.value.field == "practitioner_id"
    with pytest.raises(Invalid) as month, unit_of_work() as s:
        service.solve_roster(s, laixi.programme_id, "December")
    assert month.value.field == "month"
