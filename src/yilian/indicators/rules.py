"""Pure decisions about indicators: periods, values from counts, targets, and when a number must say "no data".

No database, no files, no clock: callers pass in what they know (the snapshot's coverage, the counts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from yilian.errors import Invalid

UNITS: dict[str, tuple[float, str, str]] = {
    # unit -> (multiplier applied to numerator/denominator, zh label, en label)
    "percent": (100.0, "%", "%"),
    "per_10000": (10000.0, "每万人", "per 10,000 residents"),
    "per_1000": (1000.0, "‰", "per 1,000"),
    "per_100000": (100000.0, "每10万人", "per 100,000 residents"),
    "ratio": (1.0, "比值", "ratio"),
    "count": (1.0, "人次/件", "count"),
    "days": (1.0, "天", "days"),
    "hours": (1.0, "小时", "hours"),
    "yuan": (1.0, "元", "yuan"),
    "yes_no": (1.0, "是/否", "yes/no"),
}

_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """A half-open range of local (Asia/Shanghai) dates [start, end), written as the user wrote it."""

    label: str
    start: date
    end: date

    def previous(self) -> Period:
        """The same span one year earlier (growth indicators compare with it)."""
        return Period(f"{self.label}-1y", _minus_year(self.start), _minus_year(self.end))

    def months(self) -> list[Period]:
        out = []
        y, m = self.start.year, self.start.month
        while date(y, m, 1) < self.end:
            nxt = date(y + (m == 12), m % 12 + 1, 1)
            out.append(Period(f"{y:04d}-{m:02d}", date(y, m, 1), nxt))
            y, m = nxt.year, nxt.month
        return out


def _minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def _month_start(text: str, field: str) -> date:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise Invalid(f"{text!r} is not a month: write 2026-10", field=field)
    return date(int(m.group(1)), int(m.group(2)), 1)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def parse_period(text: str, field: str = "period") -> Period:
    """`2026` (a year), `2026-10` (a month) or `2026-01..2026-06` (months, both ends included)."""
    text = (text or "").strip()
    if m := _YEAR.match(text):
        y = int(m.group(1))
        return Period(text, date(y, 1, 1), date(y + 1, 1, 1))
    if ".." in text:
        a, b = (p.strip() for p in text.split("..", 1))
        if _YEAR.match(a) and _YEAR.match(b):
            start, end = date(int(a), 1, 1), date(int(b) + 1, 1, 1)
        else:
            start, end = _month_start(a, field), _next_month(_month_start(b, field))
        if end <= start:
            raise Invalid(f"period {text!r} ends before it starts", field=field)
        return Period(text, start, end)
    if _MONTH.match(text):
        start = _month_start(text, field)
        return Period(text, start, _next_month(start))
    raise Invalid(
        f"{text!r} is not a period: write a year (2026), a month (2026-10) or a range (2026-01..2026-06)", field=field
    )


@dataclass(frozen=True)
class Coverage:
    """What a snapshot table holds: its rows and the first and last dates recorded in it (None when undated)."""

    rows: int
    first: date | None = None
    last: date | None = None


@dataclass(frozen=True)
class Missing:
    status: str  # "no_data" | "partial"
    note: str


def missing_data(table: str, coverage: Coverage | None, period: Period, as_of: date) -> Missing | None:
    """Whether `table` can answer for `period`. A table that is not recorded at all, or that holds nothing in or after
    the period, cannot: the indicator is null, never 0. A table whose records stop before the period ends (and before
    the snapshot was taken) answers only in part, and says since when it has no data."""
    if coverage is None or coverage.rows == 0:
        return Missing("no_data", f"no data: {table} is not recorded yet")
    if coverage.last is None:
        return None
    if coverage.last < period.start or (coverage.first is not None and coverage.first >= period.end):
        since = coverage.last.isoformat()
        return Missing("no_data", f"no data for {table} in {period.label} (recorded {coverage.first} to {since})")
    last_day = date.fromordinal(period.end.toordinal() - 1)
    if coverage.last < last_day and coverage.last < as_of:
        return Missing("partial", f"no data for {table} since {coverage.last.isoformat()}")
    return None


@dataclass(frozen=True)
class Value:
    value: float | None
    status: str  # ok | no_data | zero_denominator | partial
    note: str | None = None


def ratio_value(numerator: float | None, denominator: float | None, unit: str) -> Value:
    """numerator / denominator × the unit's multiplier; null (never 0) when the denominator is 0 or unknown."""
    if numerator is None or denominator is None:
        return Value(None, "no_data", "no data")
    if denominator == 0:
        return Value(None, "zero_denominator", "denominator is 0: nothing to measure in this scope and period")
    return Value(round(numerator / denominator * UNITS[unit][0], 4), "ok")


def growth_value(current: float | None, previous: float | None) -> Value:
    """Growth in percent against the same period a year before; null when either side is unknown or the base is 0."""
    if current is None or previous is None:
        return Value(None, "no_data", "no data for this period or the one a year before")
    if previous == 0:
        return Value(None, "zero_denominator", "the year before is 0: growth is undefined")
    return Value(round((current / previous - 1) * 100, 4), "ok")


@dataclass(frozen=True)
class Target:
    value: float
    period: str = "*"  # a year, or * for every year
    scope: str = "*"  # a division code prefix, or * for every scope
    comparison: str = "ge"  # ge | le | eq (yes/no items: eq 1)


def target_for(targets: list[Target], year: int, scope: str) -> Target | None:
    """The most specific target: the longest matching division prefix, a named year before `*`."""
    best: tuple[int, int, Target] | None = None
    for t in targets:
        if t.period not in ("*", str(year)):
            continue
        if t.scope != "*" and not scope.startswith(t.scope):
            continue
        rank = (len(t.scope) if t.scope != "*" else 0, 1 if t.period != "*" else 0)
        if best is None or rank > best[:2]:
            best = (*rank, t)
    return best[2] if best else None


def meets(value: float | None, target: Target | None) -> bool | None:
    if value is None or target is None:
        return None
    if target.comparison == "le":
        return value <= target.value
    if target.comparison == "lt":
        return value < target.value
    if target.comparison == "gt":
        return value > target.value
    if target.comparison == "eq":
        return value == target.value
    return value >= target.value
