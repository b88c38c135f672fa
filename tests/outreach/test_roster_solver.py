"""The CP-SAT roster, checked by the independent validator (rules.py) and by direct counts, never by the solver."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from support.roster_region import dec, laixi_region
from yilian.outreach import instances, rules
from yilian.outreach.rostering import SolverOptions, resolve, solve
from yilian.outreach.schemas import Lock, PostingKind, Problem, prorated

FAST = SolverOptions(time_limit_seconds=10, workers=2)


def test_it_rosters_a_small_region_that_the_independent_validator_accepts(laixi: Problem) -> None:
    result = solve(laixi, FAST)

    assert result.feasible and result.status == "OPTIMAL"
    assert result.shortfalls == []
    assert rules.validate(laixi, result.roster) == []
    assert result.roster.assignments, "an empty roster would pass every rule but serve nobody"
    # The solver's own figures agree with an independent recount.
    assert result.unmet_sessions == sum(u.missing for u in rules.unmet_demand(laixi, result.roster))
    assert result.fairness_spread == rules.fairness_spread(laixi, result.roster)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_it_rosters_generated_regions_without_breaking_a_rule(seed: int) -> None:
    problem = instances.generate(experts=40, hospitals=10, seed=seed)

    result = solve(problem, FAST)

    assert result.feasible
    assert rules.validate(problem, result.roster) == []
    assert {e.kind for e in problem.experts} == set(PostingKind)
    covered = sum(u.covered for u in rules.unmet_demand(problem, result.roster))
    assert covered > 0


def test_it_keeps_every_resident_on_site_at_least_four_days_in_every_full_week(laixi: Problem) -> None:
    result = solve(laixi, FAST)

    residents = [e for e in laixi.experts if e.kind == PostingKind.RESIDENT]
    for expert in residents:
        for week in laixi.weeks():
            on_site = {
                a.day
                for a in result.roster.assignments
                if a.expert_id == expert.id and a.hospital_id == expert.posted_to
            }
            present = len(on_site & set(week.days))
            assert present >= prorated(4, len(week.days)), (expert.name, week.label, present)
            if len(week.days) == 7:
                assert present >= 4
                assert present + len(expert.home_duty & set(week.days)) <= 6, "one rest day a week"


def test_it_sends_the_recurring_visitor_on_the_first_saturday_and_sunday(laixi: Problem) -> None:
    result = solve(laixi, FAST)

    li_si = [a for a in result.roster.assignments if a.expert_id == "E3"]
    assert {(a.day, a.hospital_id) for a in li_si} >= {(dec(5), "H3"), (dec(6), "H3")}
    assert all(a.day not in laixi.expert("E3").home_duty for a in li_si)


def test_it_keeps_a_coordinators_locks_when_it_re_solves(laixi: Problem) -> None:
    first = solve(laixi, FAST)
    taken = {(a.expert_id, a.day) for a in first.roster.assignments}
    # Move the weekly cardiologist to the county hospital on a Friday she was not rostered, and give the resident a
    # free day he was rostered on.
    friday = next(d for d in (dec(11), dec(18), dec(4)) if ("E6", d) not in taken)
    resident_day = next(a.day for a in first.roster.assignments if a.expert_id == "E1" and a.day.weekday() < 5)
    locks = [Lock("E6", friday, "H1", "cardiology"), Lock("E1", resident_day, None)]

    second = resolve(laixi, first.roster, locks, FAST)

    locked_problem = replace(laixi, locks=locks)
    assert second.feasible
    assert rules.validate(locked_problem, second.roster) == []
    assert any(
        a.expert_id == "E6" and a.day == friday and a.hospital_id == "H1" and a.locked
        for a in second.roster.assignments
    )
    assert not any(a.expert_id == "E1" and a.day == resident_day for a in second.roster.assignments)
    # The lock is not the only thing the coordinator sees change: the validator also rejects the old roster now.
    assert any(v.rule == "lock" for v in rules.validate(locked_problem, first.roster))


def test_it_explains_which_rule_cannot_hold_and_by_how_much() -> None:
    # Three home-duty days in the full week of Dec 7–13 leave 张三 only 3 days for the resident's 4 (one day is rest).
    problem = laixi_region()
    zhang = problem.expert("E1")
    problem.experts[0] = replace(zhang, home_duty=frozenset({dec(8), dec(9), dec(10)}))

    result = solve(problem, FAST)

    assert not result.feasible
    assert [(s.rule, s.expert_id, s.amount) for s in result.shortfalls] == [("resident_days", "E1", 1)]
    message = result.shortfalls[0].message
    assert "张三" in message and "only 3 of the 4 required days" in message and "week 2" in message
    assert "home duty on 12-08, 12-09, 12-10" in message
    # The roster it returns breaks exactly the rule it names, by exactly that much.
    violations = rules.validate(problem, result.roster)
    assert [(v.rule, v.expert_id, v.amount) for v in violations] == [("resident_days", "E1", 1)]


def test_it_explains_a_lock_on_a_home_duty_day(laixi: Problem) -> None:
    monday = dec(14)  # 李四 is on duty at home every Monday
    locked = replace(laixi, locks=[Lock("E3", monday, "H3")])

    result = solve(locked, FAST)

    assert not result.feasible
    assert [(s.rule, s.expert_id) for s in result.shortfalls] == [("lock", "E3")]
    assert "home duty on 12-14" in result.shortfalls[0].message


def test_it_spreads_outreach_days_fairly_among_visiting_experts() -> None:
    problem = instances.generate(experts=40, hospitals=10, seed=4)

    result = solve(problem, FAST)

    days = Counter(a.expert_id for a in result.roster.assignments)
    for group in rules.fairness_groups(problem).values():
        counts = [days[e.id] for e in group]
        assert max(counts) - min(counts) <= 2, counts
