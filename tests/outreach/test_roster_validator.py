"""The independent validator catches hand-made bad rosters, each with a message a coordinator can act on."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from support.roster_region import dec
from yilian.outreach import rules
from yilian.outreach.schemas import Assignment, Lock, Problem, Recurrence, Roster


def a(expert: str, day: date, hospital: str, specialty: str) -> Assignment:
    return Assignment(expert, day, hospital, specialty)


def resident_month(expert: str = "E1", hospital: str = "H1", specialty: str = "cardiology") -> list[Assignment]:
    """张三 on site Monday to Friday (Tuesday to Friday in week 1), except his home-duty Wednesday Dec 9."""
    days = [dec(d) for d in range(1, 32) if dec(d).weekday() < 5 and d != 9]
    return [a(expert, d, hospital, specialty) for d in days]


def rules_broken(problem: Problem, assignments: list[Assignment], expert: str = "E1") -> list[str]:
    return [v.rule for v in rules.validate(problem, Roster(assignments)) if v.expert_id == expert]


def test_it_accepts_a_resident_on_site_five_weekdays_a_week(laixi: Problem) -> None:
    assert rules_broken(laixi, resident_month()) == []


def test_it_catches_an_expert_in_two_places_on_one_day(laixi: Problem) -> None:
    roster = [*resident_month(), a("E1", dec(3), "H2", "cardiology")]

    violations = [v for v in rules.validate(laixi, Roster(roster)) if v.rule == "two_places"]

    assert len(violations) == 1
    assert violations[0].day == dec(3)
    assert "张三 is in 2 places on 2026-12-03" in violations[0].message
    assert "莱西市人民医院" in violations[0].message and "莱西市中医医院" in violations[0].message


def test_it_catches_a_resident_with_too_few_days_on_site(laixi: Problem) -> None:
    # Week 2 (Dec 7–13): only Monday and Tuesday on site; Wednesday is home duty.
    roster = [x for x in resident_month() if not dec(10) <= x.day <= dec(13)]

    violations = [v for v in rules.validate(laixi, Roster(roster)) if v.rule == "resident_days" and v.expert_id == "E1"]

    assert [(v.expert_id, v.amount) for v in violations] == [("E1", 2)]
    assert "only 2 of the 4 required days in week 2 (12-07–12-13)" in violations[0].message
    assert "home duty on 12-09" in violations[0].message


def test_it_asks_a_resident_for_fewer_days_in_a_partial_week(laixi: Problem) -> None:
    # Dec 28–31 is a four-day stub: ⌊4·4/7⌋ = 2 days are required, so two are enough and one is not.
    base = [x for x in resident_month() if x.day < dec(28)]
    two = [*base, a("E1", dec(28), "H1", "cardiology"), a("E1", dec(29), "H1", "cardiology")]

    assert rules_broken(laixi, two) == []
    assert rules_broken(laixi, two[:-1]) == ["resident_days"]


def test_it_catches_work_on_a_home_duty_day(laixi: Problem) -> None:
    roster = [*resident_month(), a("E1", dec(9), "H1", "cardiology")]

    violations = [v for v in rules.validate(laixi, Roster(roster)) if v.expert_id == "E1"]

    assert [v.rule for v in violations] == ["home_duty"]
    assert "home-hospital duty on 2026-12-09" in violations[0].message


def test_it_catches_a_week_without_a_rest_day(laixi: Problem) -> None:
    roster = [*resident_month(), a("E1", dec(12), "H1", "cardiology"), a("E1", dec(13), "H1", "cardiology")]

    violations = [v for v in rules.validate(laixi, Roster(roster)) if v.expert_id == "E1"]

    assert [(v.rule, v.amount) for v in violations] == [("rest_days", 1)]
    assert "0 rest days in week 2" in violations[0].message


def test_it_catches_a_day_trip_beyond_the_travel_limit(laixi: Problem) -> None:
    # 王五 is posted to H2 and may make day trips, but H3 is 240 minutes from home.
    violations = rules.validate(laixi, Roster([a("E4", dec(4), "H3", "orthopaedics")]))

    far = [v for v in violations if v.rule == "not_eligible"]
    assert len(far) == 1 and "240 min, beyond the 150-minute limit" in far[0].message


def test_it_catches_a_hop_between_far_hospitals_on_consecutive_days(laixi: Problem) -> None:
    # 李四 is at the far county hospital on Saturday Dec 5 and cannot be at H1 (200 minutes away) on Sunday.
    roster = [a("E3", dec(5), "H3", "neurology"), a("E3", dec(6), "H1", "neurology")]

    broken = rules_broken(laixi, roster, "E3")

    assert "travel_hop" in broken
    assert "recurring_visit" in broken  # and Sunday's visit to H3 is missed


def test_it_catches_a_missed_recurring_visit(laixi: Problem) -> None:
    violations = [v for v in rules.validate(laixi, Roster([a("E3", dec(5), "H3", "neurology")])) if v.expert_id == "E3"]

    assert [(v.rule, v.day) for v in violations] == [("recurring_visit", dec(6))]
    assert "FREQ=MONTHLY;BYDAY=1SA,1SU" in violations[0].message


def test_it_catches_a_short_term_expert_outside_the_posting(laixi: Problem) -> None:
    broken = rules_broken(laixi, [a("E5", dec(21), "H2", "paediatrics")], "E5")

    assert broken == ["outside_posting"]


def test_it_catches_a_specialty_the_expert_does_not_practise(laixi: Problem) -> None:
    assert "specialty" in rules_broken(laixi, [*resident_month(), a("E1", dec(5), "H1", "obstetrics")])


def test_it_catches_a_broken_lock_and_too_many_outreach_days(laixi: Problem) -> None:
    locked = replace(laixi, locks=[Lock("E4", dec(3), "H2")])
    thursdays_off = [dec(d) for d in (2, 4, 5, 6, 9, 11, 12)]  # seven days, cap is five, none is Dec 3
    roster = [a("E4", d, "H2", "orthopaedics") for d in thursdays_off]

    broken = rules_broken(locked, roster, "E4")

    assert "lock" in broken and "max_outreach" in broken


def test_it_counts_unmet_demand_per_week(laixi: Problem) -> None:
    unmet = {(u.hospital_id, u.specialty, u.period): u for u in rules.unmet_demand(laixi, Roster(resident_month()))}

    full_week = unmet[("H1", "cardiology", "week 2 (12-07–12-13)")]
    assert (full_week.required, full_week.covered, full_week.missing) == (5, 4, 1)
    stub = unmet[("H1", "cardiology", "week 5 (12-28–12-31)")]
    assert stub.required == 3  # 5 a week, 4 of 7 days, rounded to nearest


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("FREQ=MONTHLY;BYDAY=1SA,1SU", [date(2026, 11, 1), date(2026, 11, 7)]),
        ("FREQ=MONTHLY;BYDAY=-1FR", [date(2026, 11, 27)]),
        ("FREQ=WEEKLY;BYDAY=TU,TH", [date(2026, 11, d) for d in (3, 5, 10, 12, 17, 19, 24, 26)]),
    ],
)
def test_it_reads_recurrence_rules_like_a_calendar(rule: str, expected: list[date]) -> None:
    # November 2026 starts on a Sunday: its first Sunday comes before its first Saturday.
    assert Recurrence.parse(rule).dates(date(2026, 11, 1), date(2026, 11, 30)) == expected
    assert str(Recurrence.parse(rule)) == rule


@pytest.mark.parametrize("rule", ["FREQ=DAILY", "FREQ=MONTHLY", "FREQ=MONTHLY;BYDAY=1XX", "FREQ=WEEKLY;BYDAY=2MO"])
def test_it_refuses_a_recurrence_rule_it_does_not_understand(rule: str) -> None:
    with pytest.raises(ValueError, match="unsupported recurrence"):
        Recurrence.parse(rule)
