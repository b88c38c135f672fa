"""A small, hand-made outreach region shared by the tests: a city hospital sending experts to two near county
hospitals and a far one."""

from __future__ import annotations

from datetime import date, timedelta

from yilian.outreach.schemas import Demand, Expert, Hospital, PostingKind, Problem, Recurrence

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
