"""The independent roster validator: checks a roster against every rule, in plain Python.

It shares nothing with the solver but the problem's definition (schemas.py), so the tests can use it to check what
CP-SAT produced instead of trusting the solver to check itself. No solver, no database, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from yilian.outreach.schemas import Assignment, Expert, PostingKind, Problem, Roster, Violation, prorated


@dataclass(frozen=True)
class UnmetDemand:
    hospital_id: str
    specialty: str
    period: str
    required: int
    covered: int

    @property
    def missing(self) -> int:
        return max(0, self.required - self.covered)


def validate(problem: Problem, roster: Roster) -> list[Violation]:
    """Every hard rule the roster breaks (empty when it keeps them all)."""
    experts = {e.id: e for e in problem.experts}
    hospitals = {h.id for h in problem.hospitals}
    first, last = problem.start, problem.end
    limit = problem.rules.travel_limit_minutes
    out: list[Violation] = []
    per_expert_day: dict[tuple[str, date], list[Assignment]] = defaultdict(list)

    for a in roster.assignments:
        expert = experts.get(a.expert_id)
        if expert is None or a.hospital_id not in hospitals or not first <= a.day <= last:
            out.append(
                Violation(
                    "unknown", a.expert_id, f"{a}: unknown expert or hospital, or a day outside the roster", a.day
                )
            )
            continue
        per_expert_day[(a.expert_id, a.day)].append(a)
        where = problem.hospital_name(a.hospital_id)
        if a.day in expert.unavailable:
            out.append(
                Violation(
                    "unavailable", expert.id, f"{expert.name} is unavailable on {a.day} but rostered at {where}", a.day
                )
            )
        if a.day in expert.home_duty:
            out.append(
                Violation(
                    "home_duty",
                    expert.id,
                    f"{expert.name} is on home-hospital duty on {a.day} but rostered at {where}",
                    a.day,
                )
            )
        if a.specialty not in expert.specialties:
            out.append(
                Violation(
                    "specialty",
                    expert.id,
                    f"{expert.name} does not practise {a.specialty} (rostered at {where} on {a.day})",
                    a.day,
                )
            )
        reason = _ineligible(problem, expert, a, limit)
        if reason:
            out.append(Violation(reason[0], expert.id, reason[1], a.day))

    for (expert_id, day), same_day in sorted(per_expert_day.items()):
        if len(same_day) > 1:
            places = ", ".join(problem.hospital_name(a.hospital_id) for a in same_day)
            out.append(
                Violation(
                    "two_places",
                    expert_id,
                    f"{experts[expert_id].name} is in {len(same_day)} places on {day}: {places}",
                    day,
                    len(same_day) - 1,
                )
            )

    by_expert: dict[str, dict[date, list[Assignment]]] = defaultdict(dict)
    for (expert_id, day), same_day in per_expert_day.items():
        by_expert[expert_id][day] = same_day
    for expert in problem.experts:
        out.extend(_expert_rules(problem, expert, by_expert.get(expert.id, {})))

    out.extend(_lock_rules(problem, per_expert_day))
    return out


def _ineligible(problem: Problem, expert: Expert, a: Assignment, limit: int) -> tuple[str, str] | None:
    where = problem.hospital_name(a.hospital_id)
    if a.hospital_id == expert.posted_to and expert.in_posting(a.day):
        return None
    if not expert.day_trips:
        if a.hospital_id == expert.posted_to:
            return ("outside_posting", f"{expert.name} is rostered at {where} on {a.day}, outside the posting's dates")
        return ("not_eligible", f"{expert.name} is posted to {_posted(problem, expert)} only, not to {where} ({a.day})")
    minutes = problem.travel_minutes(expert.home_hospital_id, a.hospital_id)
    if minutes > limit:
        return (
            "not_eligible",
            f"{expert.name}'s day trip to {where} on {a.day} takes {minutes} min, beyond the {limit}-minute limit",
        )
    return None


def _posted(problem: Problem, expert: Expert) -> str:
    return problem.hospital_name(expert.posted_to) if expert.posted_to else "no hospital"


def _expert_rules(problem: Problem, expert: Expert, days: dict[date, list[Assignment]]) -> list[Violation]:
    out: list[Violation] = []
    posted = expert.posted_to
    on_site = {d for d, items in days.items() if any(a.hospital_id == posted for a in items) and expert.in_posting(d)}
    for week in problem.weeks():
        posting_days = [d for d in week.days if expert.in_posting(d)]
        if expert.min_days_per_week and posted and posting_days:
            required = prorated(expert.min_days_per_week, len(posting_days))
            present = sum(1 for d in posting_days if d in on_site)
            if present < required:
                blockers = _blockers(expert, posting_days, on_site)
                out.append(
                    Violation(
                        "resident_days",
                        expert.id,
                        f"{expert.name} is on site at {_posted(problem, expert)} only {present} of the {required} "
                        f"required days in {week.label}{blockers}",
                        week.days[0],
                        required - present,
                    )
                )
        worked = {d for d in week.days if d in days or d in expert.home_duty}
        rest_required = prorated(problem.rules.rest_days_per_week, len(week.days))
        rest = len(week.days) - len(worked)
        if rest < rest_required:
            out.append(
                Violation(
                    "rest_days",
                    expert.id,
                    f"{expert.name} has {rest} rest days in {week.label}, fewer than the {rest_required} required "
                    f"({len(worked) - len(expert.home_duty & set(week.days))} outreach + "
                    f"{len(expert.home_duty & set(week.days))} home-duty days)",
                    week.days[0],
                    rest_required - rest,
                )
            )
    for day in problem.recurring_dates(expert):
        if day not in on_site:
            why = " (home duty that day)" if day in expert.home_duty else ""
            why = " (unavailable that day)" if day in expert.unavailable else why
            out.append(
                Violation(
                    "recurring_visit",
                    expert.id,
                    f"{expert.name} misses the {expert.recurrence} visit to {_posted(problem, expert)} on {day}{why}",
                    day,
                )
            )
    if expert.min_days_per_month and posted and len(on_site) < expert.min_days_per_month:
        out.append(
            Violation(
                "monthly_days",
                expert.id,
                f"{expert.name} is at {_posted(problem, expert)} {len(on_site)} days this month, fewer than the "
                f"{expert.min_days_per_month} the posting requires",
                None,
                expert.min_days_per_month - len(on_site),
            )
        )
    if expert.max_outreach_days is not None and len(days) > expert.max_outreach_days:
        out.append(
            Violation(
                "max_outreach",
                expert.id,
                f"{expert.name} has {len(days)} outreach days, more than the cap of {expert.max_outreach_days}",
                None,
                len(days) - expert.max_outreach_days,
            )
        )
    limit = problem.rules.travel_limit_minutes
    for day in sorted(days):
        following = days.get(day + timedelta(days=1))
        if not following:
            continue
        for a in days[day]:
            for b in following:
                if a.hospital_id != b.hospital_id and problem.travel_minutes(a.hospital_id, b.hospital_id) > limit:
                    out.append(
                        Violation(
                            "travel_hop",
                            expert.id,
                            f"{expert.name} moves from {problem.hospital_name(a.hospital_id)} on {day} to "
                            f"{problem.hospital_name(b.hospital_id)} on {b.day}: "
                            f"{problem.travel_minutes(a.hospital_id, b.hospital_id)} min, beyond the {limit}-minute limit",
                            b.day,
                        )
                    )
    return out


def _blockers(expert: Expert, week_days: list[date], on_site: set[date]) -> str:
    duty = [d for d in week_days if d in expert.home_duty]
    away = [d for d in week_days if d in expert.unavailable]
    parts = []
    if duty:
        parts.append("home duty on " + ", ".join(f"{d:%m-%d}" for d in duty))
    if away:
        parts.append("unavailable on " + ", ".join(f"{d:%m-%d}" for d in away))
    return (" because of " + "; ".join(parts)) if parts else ""


def _lock_rules(problem: Problem, per_expert_day: dict[tuple[str, date], list[Assignment]]) -> list[Violation]:
    out = []
    for lock in problem.locks:
        items = per_expert_day.get((lock.expert_id, lock.day), [])
        name = (
            problem.expert(lock.expert_id).name if lock.expert_id in {e.id for e in problem.experts} else lock.expert_id
        )
        if lock.hospital_id is None:
            if items:
                out.append(
                    Violation(
                        "lock",
                        lock.expert_id,
                        f"{name} was kept free on {lock.day} by the coordinator but is rostered",
                        lock.day,
                    )
                )
        elif not any(
            a.hospital_id == lock.hospital_id and (lock.specialty is None or a.specialty == lock.specialty)
            for a in items
        ):
            out.append(
                Violation(
                    "lock",
                    lock.expert_id,
                    f"{name} was locked at {problem.hospital_name(lock.hospital_id)} on {lock.day} but is not rostered there",
                    lock.day,
                )
            )
    return out


def unmet_demand(problem: Problem, roster: Roster) -> list[UnmetDemand]:
    """Coverage of every demand period; each expert day counts once, for the specialty it is rostered under."""
    covered: dict[tuple[str, str, date], int] = defaultdict(int)
    seen: set[tuple[str, date]] = set()
    for a in roster.assignments:
        if (a.expert_id, a.day) in seen:
            continue  # someone in two places covers only one of them
        seen.add((a.expert_id, a.day))
        covered[(a.hospital_id, a.specialty, a.day)] += 1
    out = []
    for demand in problem.demand:
        for label, days, required in problem.demand_periods(demand):
            have = sum(covered[(demand.hospital_id, demand.specialty, d)] for d in days)
            out.append(UnmetDemand(demand.hospital_id, demand.specialty, label, required, have))
    return out


def fairness_spread(problem: Problem, roster: Roster) -> int:
    """Sum over groups of non-resident visiting experts (one group per posting kind) of max - min outreach days."""
    days: dict[str, set[date]] = defaultdict(set)
    for a in roster.assignments:
        days[a.expert_id].add(a.day)
    total = 0
    for group in fairness_groups(problem).values():
        counts = [len(days[e.id]) for e in group]
        total += max(counts) - min(counts)
    return total


def fairness_groups(problem: Problem) -> dict[PostingKind, list[Expert]]:
    """Who is compared with whom: visiting experts (day trips allowed, not resident), by posting kind, if ≥ 2."""
    groups: dict[PostingKind, list[Expert]] = defaultdict(list)
    for e in problem.experts:
        if e.kind != PostingKind.RESIDENT and e.day_trips:
            groups[e.kind].append(e)
    return {k: v for k, v in groups.items() if len(v) >= 2}


def day_trip_minutes(problem: Problem, roster: Roster) -> int:
    """Travel of day trips (there and back); residents and posted visitors stay over, so their travel is not daily."""
    experts = {e.id: e for e in problem.experts}
    total = 0
    for a in roster.assignments:
        e = experts.get(a.expert_id)
        if e and not (a.hospital_id == e.posted_to and e.in_posting(a.day)):
            total += 2 * problem.travel_minutes(e.home_hospital_id, a.hospital_id)
    return total


# ----------------------------------------------------------------------------------------------------------------------
# Compliance: days on site (check-ins) against a posting's days-per-week rule. Pure: the service passes the days.


@dataclass(frozen=True)
class WeekCompliance:
    week_start: date  # the Monday
    days: int  # days of this week inside the posting and the period looked at
    required: int
    on_site: int

    @property
    def short_by(self) -> int:
        return max(0, self.required - self.on_site)


def weekly_compliance(checkins: set[date], first: date, last: date, min_days_per_week: int) -> list[WeekCompliance]:
    """Week by week (Monday to Sunday, cut to [first, last]): days on site against the rule, prorated like the
    roster (⌊min·n/7⌋ for a partial week), so the first week of a posting that starts on a Thursday asks for 2."""
    out: list[WeekCompliance] = []
    day = first
    while day <= last:
        monday = day - timedelta(days=day.weekday())
        sunday = monday + timedelta(days=6)
        week_last = min(sunday, last)
        n = (week_last - day).days + 1
        on_site = sum(1 for d in checkins if day <= d <= week_last)
        out.append(WeekCompliance(monday, n, prorated(min_days_per_week, n), on_site))
        day = sunday + timedelta(days=1)
    return out


def compliance_alerts(weeks: list[WeekCompliance], today: date) -> list[WeekCompliance]:
    """Weeks that are over (ended before today) and fell short of the rule: an alert each."""
    return [w for w in weeks if w.short_by > 0 and w.week_start + timedelta(days=6) < today]


# ----------------------------------------------------------------------------------------------------------------------
# Clinics: booking horizon, slot times


def release_moment(day: date, horizon_days: int, release_time: str) -> tuple[date, int, int]:
    """When a clinic day opens for booking, in local (Asia/Shanghai) time: `horizon_days` before, at `release_time`.
    Returned as (date, hour, minute) so that this module needs no time-zone database."""
    hour, minute = parse_hhmm(release_time)
    return day - timedelta(days=horizon_days), hour, minute


def parse_hhmm(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(p) for p in text.split(":"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time like 08:00") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{text!r} is not a time like 08:00")
    return hour, minute


def slot_times(start_time: str, end_time: str, count: int) -> list[tuple[int, int, int]]:
    """(hour, minute, length in minutes) of `count` numbered slots spread over the session; never shorter than 3
    minutes (beyond that the numbers share times, as a busy clinic's do)."""
    sh, sm = parse_hhmm(start_time)
    eh, em = parse_hhmm(end_time)
    span = (eh * 60 + em) - (sh * 60 + sm)
    if span <= 0:
        raise ValueError("the clinic ends before it starts")
    length = max(3, span // max(count, 1))
    out = []
    for i in range(count):
        offset = min(i * length, span - length)
        t = sh * 60 + sm + offset
        out.append((t // 60, t % 60, length))
    return out


def fill_rate(booked: int, offered: int) -> float:
    return round(booked / offered, 3) if offered else 0.0


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_resident_id(number: str) -> bool:
    """An 18-character resident ID card number with a matching check digit (GB 11643-1999, ISO 7064 MOD 11-2)."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()
