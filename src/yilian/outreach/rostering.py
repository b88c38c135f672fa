"""A month's expert-outreach roster with OR-Tools CP-SAT, infeasibility explained, coordinator locks honoured.

Model: one boolean x[expert, day, hospital, specialty] for each eligible combination only (sparse). Hard rules:
one place a day; nothing on leave or home-duty days; day trips only within the travel limit; no hop between two
hospitals farther apart than the limit on consecutive days; residents' weekly days on site; rest days; recurring
visits on their rule's dates; monthly minimums; caps; locks. Objective: weighted unmet demand, then fairness
(max - min outreach days within each group of visiting experts), then day-trip travel.

When the hard rules cannot all hold, a relaxed model gives each family of hard rules a slack variable priced above
anything the soft objective can reach; the non-zero slacks say which rule fails, for whom, and by how much.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from ortools.sat.python import cp_model

from yilian.outreach import rules
from yilian.outreach.schemas import (
    Assignment,
    Expert,
    Lock,
    Problem,
    Roster,
    Shortfall,
    SolveResult,
    prorated,
)

Key = tuple[str, date, str, str]  # expert, day, hospital, specialty

# Which hard rule yields first when they cannot all hold: a posting's terms (days on site, visits) before an
# expert's rest or a coordinator's explicit lock. Ties would make the explanation arbitrary.
SLACK_PRIORITY = {"resident_days": 1, "monthly_days": 1, "recurring_visit": 1, "rest_days": 3, "lock": 3}


@dataclass
class SolverOptions:
    time_limit_seconds: float = 20.0
    workers: int = 2
    explain: bool = True  # when the strict model is infeasible, solve the relaxed one to say why
    seed: int = 0
    relative_gap: float = 0.0  # stop when within this fraction of the bound (0: prove optimality or time out)
    log: bool = False


@dataclass
class _Model:
    model: cp_model.CpModel
    x: dict[Key, cp_model.IntVar]
    slacks: list[tuple[cp_model.IntVar, Shortfall]] = field(default_factory=list)
    unmet: list[tuple[cp_model.IntVar, int, int]] = field(default_factory=list)
    spreads: list[cp_model.LinearExpr] = field(default_factory=list)
    travel_terms: list[tuple[cp_model.IntVar, int]] = field(default_factory=list)


def eligible(problem: Problem) -> dict[tuple[str, date], list[tuple[str, str]]]:
    """(expert, day) → the (hospital, specialty) pairs the expert may be rostered under that day."""
    limit = problem.rules.travel_limit_minutes
    demanded: dict[str, set[str]] = defaultdict(set)
    for d in problem.demand:
        if d.sessions > 0:
            demanded[d.hospital_id].add(d.specialty)
    hospital_ids = [h.id for h in problem.hospitals]
    out: dict[tuple[str, date], list[tuple[str, str]]] = {}
    for e in problem.experts:
        trips = (
            [
                h
                for h in hospital_ids
                if demanded[h] & set(e.specialties) and problem.travel_minutes(e.home_hospital_id, h) <= limit
            ]
            if e.day_trips
            else []
        )
        for day in problem.dates():
            if day in e.unavailable or day in e.home_duty:
                continue
            pairs: list[tuple[str, str]] = []
            posted_today = e.posted_to if e.posted_to and e.in_posting(day) else None
            if posted_today:
                specs = [s for s in e.specialties if s in demanded[posted_today]] or [e.specialties[0]]
                pairs += [(posted_today, s) for s in specs]
            for h in trips:
                if h != posted_today:
                    pairs += [(h, s) for s in e.specialties if s in demanded[h]]
            if pairs:
                out[(e.id, day)] = pairs
    return out


def solve(problem: Problem, options: SolverOptions | None = None, previous: Roster | None = None) -> SolveResult:
    """Roster the month. `previous` (e.g. before a coordinator's locks) is used as a starting hint."""
    options = options or SolverOptions()
    started = time.perf_counter()
    strict = _build(problem, relaxed=False)
    status, solver = _run(strict, options, previous)
    phases = {"strict": solver.status_name(status)}
    used = strict
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) and options.explain:
        relaxed = _build(problem, relaxed=True)
        status, solver = _run(relaxed, options, previous)
        phases["relaxed"] = solver.status_name(status)
        used = relaxed
    return _result(problem, used, solver, status, started, phases)


def resolve(
    problem: Problem, previous: Roster, locks: Iterable[Lock], options: SolverOptions | None = None
) -> SolveResult:
    """A coordinator fixed some entries: add the locks and re-solve around them, starting from the previous roster."""
    locked = replace(problem, locks=[*problem.locks, *locks])
    return solve(locked, options, previous)


def _run(
    m: _Model, options: SolverOptions, previous: Roster | None
) -> tuple[cp_model.CpSolverStatus, cp_model.CpSolver]:
    if previous is not None:
        chosen = {(a.expert_id, a.day, a.hospital_id, a.specialty) for a in previous.assignments}
        for key, var in m.x.items():
            m.model.add_hint(var, key in chosen)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = options.time_limit_seconds
    solver.parameters.num_workers = max(1, options.workers)
    solver.parameters.random_seed = options.seed
    solver.parameters.relative_gap_limit = options.relative_gap
    solver.parameters.log_search_progress = options.log
    # Interchangeable experts make the default search wander: on the 200 × 40 benchmark the default 2-worker
    # portfolio stays ~10 % from its bound after 30 s, while the full LP with symmetry ("max_lp_sym") reaches the
    # optimal bound in ~7 s and a restarting search finds the matching roster (measured, docs/benchmarks.md).
    solver.parameters.linearization_level = 2
    if options.workers == 2:
        solver.parameters.subsolvers.extend(["max_lp_sym", "quick_restart"])
    status = solver.solve(m.model)
    return status, solver


def _build(problem: Problem, *, relaxed: bool) -> _Model:
    model = cp_model.CpModel()
    pairs = eligible(problem)
    x: dict[Key, cp_model.IntVar] = {}
    for (eid, day), options in pairs.items():
        for h, s in options:
            x[(eid, day, h, s)] = model.new_bool_var(f"x|{eid}|{day}|{h}|{s}")
    m = _Model(model, x)

    # Indexes: what an expert does on a day, and where.
    daily: dict[tuple[str, date], list[cp_model.IntVar]] = defaultdict(list)
    at: dict[tuple[str, date, str], list[cp_model.IntVar]] = defaultdict(list)
    places: dict[tuple[str, date], set[str]] = defaultdict(set)
    for (eid, day, h, _s), var in x.items():
        daily[(eid, day)].append(var)
        at[(eid, day, h)].append(var)
        places[(eid, day)].add(h)

    def slack(upper: int, shortfall: Shortfall) -> cp_model.IntVar | int:
        if not relaxed or upper <= 0:
            return 0
        var = model.new_int_var(0, upper, f"slack|{shortfall.rule}|{shortfall.expert_id}|{shortfall.period}")
        m.slacks.append((var, shortfall))
        return var

    weeks = problem.weeks()
    limit = problem.rules.travel_limit_minutes

    for vars_ in daily.values():
        model.add(sum(vars_) <= 1)  # no two places at once

    for e in problem.experts:
        posted = e.posted_to
        for week in weeks:
            posting_days = [d for d in week.days if e.in_posting(d)]
            if e.min_days_per_week and posted and posting_days:
                required = prorated(e.min_days_per_week, len(posting_days))
                if required:
                    on_site = [v for d in posting_days for v in at.get((e.id, d, posted), [])]
                    short = slack(required, _sf("resident_days", e, required, week.label))
                    model.add(sum(on_site) + short >= required)
            rest_required = prorated(problem.rules.rest_days_per_week, len(week.days))
            duty = len(e.home_duty & set(week.days))
            work_cap = len(week.days) - rest_required - duty
            worked = [v for d in week.days for v in daily.get((e.id, d), [])]
            if worked or work_cap < 0:
                short = slack(len(week.days), _sf("rest_days", e, rest_required, week.label))
                model.add(sum(worked) <= work_cap + short)
        for day in problem.recurring_dates(e):
            vars_ = at.get((e.id, day, posted), []) if posted else []
            short = slack(1, _sf("recurring_visit", e, 1, f"{day}"))
            model.add(sum(vars_) + short >= 1)
        if e.min_days_per_month and posted:
            on_site = [v for d in problem.dates() for v in at.get((e.id, d, posted), [])]
            short = slack(e.min_days_per_month, _sf("monthly_days", e, e.min_days_per_month, "month"))
            model.add(sum(on_site) + short >= e.min_days_per_month)
        if e.max_outreach_days is not None:
            all_days = [v for d in problem.dates() for v in daily.get((e.id, d), [])]
            if len(all_days) > e.max_outreach_days:
                model.add(sum(all_days) <= e.max_outreach_days)
        # No hop between far-apart hospitals on consecutive days.
        for day in problem.dates():
            nxt = day + timedelta(days=1)
            there = places.get((e.id, nxt), set())
            for a in places.get((e.id, day), set()):
                far = [v for b in there if b != a and problem.travel_minutes(a, b) > limit for v in at[(e.id, nxt, b)]]
                if far:
                    model.add(sum(at[(e.id, day, a)]) + sum(far) <= 1)

    for lock in problem.locks:
        e = problem.expert(lock.expert_id)
        if lock.hospital_id is None:
            vars_ = daily.get((lock.expert_id, lock.day), [])
            short = slack(1, _sf("lock", e, 1, f"{lock.day}"))
            model.add(sum(vars_) <= short)
        else:
            vars_ = [
                var
                for (eid, d, h, sp), var in x.items()
                if eid == lock.expert_id
                and d == lock.day
                and h == lock.hospital_id
                and (lock.specialty is None or sp == lock.specialty)
            ]
            short = slack(1, _sf("lock", e, 1, f"{lock.day}"))
            model.add(sum(vars_) + short >= 1)

    # Demand: unmet sessions per period, weighted.
    covering: dict[tuple[str, str, date], list[cp_model.IntVar]] = defaultdict(list)
    for (_eid, day, h, s), var in x.items():
        covering[(h, s, day)].append(var)
    for demand in problem.demand:
        for label, days, required in problem.demand_periods(demand):
            if required <= 0:
                continue
            u = model.new_int_var(0, required, f"unmet|{demand.hospital_id}|{demand.specialty}|{label}")
            cover = [v for d in days for v in covering.get((demand.hospital_id, demand.specialty, d), [])]
            model.add(sum(cover) + u >= required)
            m.unmet.append((u, demand.weight, required))

    # Fairness: spread of outreach days within each group of visiting experts.
    for group in rules.fairness_groups(problem).values():
        hi = model.new_int_var(0, problem.days, "fair_max")
        lo = model.new_int_var(0, problem.days, "fair_min")
        for e in group:
            count = sum(v for d in problem.dates() for v in daily.get((e.id, d), []))
            model.add(hi >= count)
            model.add(lo <= count)
        m.spreads.append(hi - lo)

    # Day-trip travel (there and back), in tens of minutes.
    experts = {e.id: e for e in problem.experts}
    for (eid, day, h, _s), var in x.items():
        e = experts[eid]
        if not (h == e.posted_to and e.in_posting(day)):
            cost = (2 * problem.travel_minutes(e.home_hospital_id, h)) // 10
            if cost:
                m.travel_terms.append((var, cost))

    w = problem.weights
    soft = (
        sum(w.unmet_session * weight * u for u, weight, _ in m.unmet)
        + sum(w.fairness_day * spread for spread in m.spreads)
        + sum(w.travel_per_10_minutes * cost * var for var, cost in m.travel_terms)
    )
    if m.slacks:
        # Any unit of slack must cost more than the whole soft objective can: the solver first keeps the hard rules.
        bound = (
            sum(w.unmet_session * weight * required for _, weight, required in m.unmet)
            + w.fairness_day * problem.days * len(m.spreads)
            + sum(w.travel_per_10_minutes * cost for _, cost in m.travel_terms)
            + 1
        )
        model.minimize(soft + bound * sum(SLACK_PRIORITY[sf.rule] * v for v, sf in m.slacks))
    else:
        model.minimize(soft)
    return m


def _sf(rule: str, e: Expert, required: int, period: str) -> Shortfall:
    # The amount and the message are filled in from the solution; this records which rule the slack belongs to.
    return Shortfall(rule, e.id, required, "", period)


def _result(
    problem: Problem,
    m: _Model,
    solver: cp_model.CpSolver,
    status: cp_model.CpSolverStatus,
    started: float,
    phases: dict[str, str],
) -> SolveResult:
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    locked = {(lk.expert_id, lk.day, lk.hospital_id) for lk in problem.locks}
    assignments = []
    if found:
        for (eid, day, h, s), var in m.x.items():
            if solver.boolean_value(var):
                assignments.append(Assignment(eid, day, h, s, locked=(eid, day, h) in locked))
    assignments.sort(key=lambda a: (a.expert_id, a.day))
    roster = Roster(assignments)
    shortfalls = []
    if found:
        for var, sf in m.slacks:
            amount = solver.value(var)
            if amount:
                shortfalls.append(_explain(problem, sf, amount))
    feasible = found and not shortfalls
    unmet = sum(solver.value(u) for u, _, _ in m.unmet) if found else 0
    demand_total = sum(required for _, _, required in m.unmet)
    return SolveResult(
        status=solver.status_name(status),
        feasible=feasible,
        roster=roster,
        shortfalls=shortfalls,
        objective=solver.objective_value if found else float("nan"),
        unmet_sessions=unmet,
        demand_sessions=demand_total,
        fairness_spread=sum(solver.value(s) for s in m.spreads) if found else 0,
        travel_minutes=rules.day_trip_minutes(problem, roster),
        seconds=time.perf_counter() - started,
        variables=len(m.x),
        stats={
            "phases": phases,
            "best_bound": solver.best_objective_bound if found else None,
            "wall_seconds_solver": solver.wall_time,
            "branches": solver.num_branches,
            "conflicts": solver.num_conflicts,
        },
    )


def _explain(problem: Problem, sf: Shortfall, amount: int) -> Shortfall:
    e = problem.expert(sf.expert_id)
    where = problem.hospital_name(e.posted_to) if e.posted_to else "their posting"
    week = next((w for w in problem.weeks() if w.label == sf.period), None)
    if sf.rule == "resident_days" and week:
        days = [d for d in week.days if e.in_posting(d)]
        message = (
            f"{e.name} can be on site at {where} only {sf.amount - amount} of the {sf.amount} required days in "
            f"{week.label}{_because(e, days, problem)}"
        )
    elif sf.rule == "rest_days" and week:
        duty = sorted(e.home_duty & set(week.days))
        message = (
            f"{e.name} cannot have the {sf.amount} rest day(s) required in {week.label}: {amount} day(s) short"
            + (f"; home duty on {_fmt(duty)}" if duty else "")
            + (f"; resident minimum of {e.min_days_per_week} days on site" if e.min_days_per_week else "")
        )
    elif sf.rule == "recurring_visit":
        day = date.fromisoformat(sf.period)
        message = f"{e.name} cannot make the {e.recurrence} visit to {where} on {day}{_because(e, [day], problem)}"
    elif sf.rule == "monthly_days":
        message = (
            f"{e.name} can be at {where} only {sf.amount - amount} of the {sf.amount} days a month the posting "
            f"requires{_because(e, problem.dates(), problem)}"
        )
    else:  # lock
        day = date.fromisoformat(sf.period)
        lock = next(lk for lk in problem.locks if lk.expert_id == e.id and lk.day == day)
        target = problem.hospital_name(lock.hospital_id) if lock.hospital_id else "no outreach"
        message = (
            f"the coordinator's lock of {e.name} at {target} on {day} cannot hold{_because(e, [day], problem, lock)}"
        )
    return replace(sf, amount=amount, message=message)


def _because(e: Expert, days: list[date], problem: Problem, lock: Lock | None = None) -> str:
    duty = [d for d in days if d in e.home_duty]
    away = [d for d in days if d in e.unavailable]
    outside = [d for d in days if not e.in_posting(d)]
    parts = []
    if duty:
        parts.append(f"home duty on {_fmt(duty)}")
    if away:
        parts.append(f"unavailable on {_fmt(away)}")
    if outside and e.posted_to:
        parts.append(f"outside the posting on {_fmt(outside)}")
    if lock and lock.hospital_id and not parts:
        minutes = problem.travel_minutes(e.home_hospital_id, lock.hospital_id)
        if lock.hospital_id != e.posted_to and minutes > problem.rules.travel_limit_minutes:
            parts.append(f"a {minutes}-minute trip, beyond the {problem.rules.travel_limit_minutes}-minute limit")
    if not parts:
        parts.append("other hard rules (rest days, locks, recurring visits, travel) that take those days")
    return " because of " + "; ".join(parts)


def _fmt(days: list[date]) -> str:
    return ", ".join(f"{d:%m-%d}" for d in days)
