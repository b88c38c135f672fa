"""The roster problem as plain values: experts, receiving hospitals, demand, travel, rules, locks and the answer.

Pure data (no database, no solver) so that the CP-SAT model (rostering.py) and the independent validator (rules.py)
read the same specification without sharing any checking code. The calendar definitions that both need — which days
form a week, how a weekly rule shrinks in a partial week, which dates a recurrence rule names — live here, once.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PostingKind(StrEnum):
    """How an expert is posted to a receiving hospital (专家下沉的形式)."""

    RESIDENT = "resident"  # 常驻专家: lives on site, ≥ N days a week (Laixi: 4)
    SHORT_TERM = "short_term"  # 短期派驻: on site for a few weeks
    RECURRING = "recurring"  # 定期坐诊: on the dates of a recurrence rule (Zhuzhou→Yanling: first weekend monthly)
    HONORARY_CHIEF = "honorary_chief"  # 名誉科主任: at least a few days a month at the department they lead


WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Recurrence:
    """A small subset of the iCalendar RRULE (RFC 5545): FREQ=WEEKLY or MONTHLY with BYDAY.

    `FREQ=MONTHLY;BYDAY=1SA,1SU` is "the first Saturday and the first Sunday of each month" (RFC semantics: each
    weekday's own n-th occurrence; -1 means the last). `FREQ=WEEKLY;BYDAY=TU,TH` is every Tuesday and Thursday.
    """

    freq: Literal["WEEKLY", "MONTHLY"]
    by_day: tuple[tuple[int, int], ...]  # (nth or 0 for every, weekday 0=Monday)

    @classmethod
    def parse(cls, rule: str) -> Recurrence:
        parts = dict(p.split("=", 1) for p in rule.strip().upper().split(";") if p)
        freq = parts.get("FREQ")
        if freq not in ("WEEKLY", "MONTHLY"):
            raise ValueError(f"unsupported recurrence {rule!r}: FREQ must be WEEKLY or MONTHLY")
        by_day: list[tuple[int, int]] = []
        for token in parts.get("BYDAY", "").split(","):
            token = token.strip()
            if not token:
                continue
            code, nth_text = token[-2:], token[:-2]
            if code not in WEEKDAY_CODES:
                raise ValueError(f"unsupported recurrence {rule!r}: unknown weekday {code!r}")
            nth = int(nth_text) if nth_text else 0
            if freq == "WEEKLY" and nth:
                raise ValueError(f"unsupported recurrence {rule!r}: WEEKLY takes plain weekdays")
            if not -5 <= nth <= 5:
                raise ValueError(f"unsupported recurrence {rule!r}: position {nth} out of range")
            by_day.append((nth, WEEKDAY_CODES.index(code)))
        if not by_day:
            raise ValueError(f"unsupported recurrence {rule!r}: BYDAY is required")
        return cls(freq=freq, by_day=tuple(by_day))  # type: ignore[arg-type]

    def __str__(self) -> str:
        days = ",".join(f"{n or ''}{WEEKDAY_CODES[w]}" for n, w in self.by_day)
        return f"FREQ={self.freq};BYDAY={days}"

    def dates(self, first: date, last: date) -> list[date]:
        """Every date from first to last (inclusive) that the rule names, in order."""
        found: set[date] = set()
        if self.freq == "WEEKLY":
            weekdays = {w for _, w in self.by_day}
            found = {d for d in _days(first, last) if d.weekday() in weekdays}
        else:
            year, month = first.year, first.month
            while date(year, month, 1) <= last:
                month_days = [date(year, month, i) for i in range(1, calendar.monthrange(year, month)[1] + 1)]
                for nth, weekday in self.by_day:
                    matching = [d for d in month_days if d.weekday() == weekday]
                    if nth == 0:
                        found.update(matching)
                    elif nth > 0 and nth <= len(matching):
                        found.add(matching[nth - 1])
                    elif nth < 0 and -nth <= len(matching):
                        found.add(matching[nth])
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return sorted(d for d in found if first <= d <= last)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class Hospital:
    id: str
    name: str
    level: str = "county"  # network level, for display: regional | tertiary | county | township


@dataclass(frozen=True)
class Demand:
    """Expert days a receiving hospital asks for in one specialty: `sessions` per week or per day.

    One expert on site for one day counts as one session (a clinic day with ward round and teaching).
    Weekly demand shrinks in a partial week at the edge of the horizon (rounded to nearest).
    """

    hospital_id: str
    specialty: str
    sessions: int
    per: Literal["week", "day"] = "week"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # per-day demand only on these weekdays
    weight: int = 1  # how much an unmet session here counts against the roster


@dataclass(frozen=True)
class Expert:
    """An expert and their posting. Empty `posted_to` means a pure visiting expert (day trips only)."""

    id: str
    name: str
    home_hospital_id: str
    specialties: tuple[str, ...]
    kind: PostingKind
    posted_to: str | None = None
    recurrence: Recurrence | None = None  # RECURRING: on site at posted_to on these dates
    posting_start: date | None = None  # the posting's window inside the horizon (default: the whole horizon)
    posting_end: date | None = None
    min_days_per_week: int = 0  # at posted_to (RESIDENT: 4)
    min_days_per_month: int = 0  # at posted_to (HONORARY_CHIEF: e.g. 2)
    max_outreach_days: int | None = None  # cap on outreach days in the horizon (visiting experts keep home work)
    unavailable: frozenset[date] = frozenset()  # leave, conferences: no work anywhere
    home_duty: frozenset[date] = frozenset()  # on duty at the home hospital: blocks outreach, counts as work
    day_trips: bool = True  # may also make day trips to other hospitals within the travel limit

    @classmethod
    def resident(
        cls, id: str, name: str, home: str, specialties: Iterable[str], posted_to: str, **kw: object
    ) -> Expert:
        kw.setdefault("min_days_per_week", 4)
        kw.setdefault("day_trips", False)
        return cls(id, name, home, tuple(specialties), PostingKind.RESIDENT, posted_to=posted_to, **kw)  # type: ignore[arg-type]

    def in_posting(self, day: date) -> bool:
        return (self.posting_start is None or day >= self.posting_start) and (
            self.posting_end is None or day <= self.posting_end
        )


@dataclass(frozen=True)
class RosterRules:
    rest_days_per_week: int = 1  # days with neither outreach nor home duty, per full week
    travel_limit_minutes: int = 150  # beyond this: no day trip from home, no hop between hospitals on consecutive days


@dataclass(frozen=True)
class Weights:
    """Objective: weighted unmet demand first, then fairness, then travel."""

    unmet_session: int = 1000
    fairness_day: int = 40  # per day of spread (max - min outreach days) within each group of non-resident experts
    travel_per_10_minutes: int = 1  # day-trip travel, counted both ways


@dataclass(frozen=True)
class Lock:
    """A coordinator's fixed entry: the expert is at `hospital_id` that day (None: kept free of outreach that day)."""

    expert_id: str
    day: date
    hospital_id: str | None
    specialty: str | None = None


@dataclass(frozen=True)
class Week:
    index: int  # 1-based, in horizon order
    days: tuple[date, ...]

    @property
    def label(self) -> str:
        return f"week {self.index} ({self.days[0]:%m-%d}–{self.days[-1]:%m-%d})"


def prorated(per_full_week: int, days_in_week: int) -> int:
    """A weekly minimum in a partial week: floor, so a 3-day stub of a week asks ⌊4·3/7⌋ = 1 resident day."""
    return (per_full_week * days_in_week) // 7


@dataclass
class Problem:
    start: date
    days: int
    hospitals: list[Hospital]
    experts: list[Expert]
    demand: list[Demand]
    travel: dict[tuple[str, str], int]  # minutes, both directions present (travel_minutes() falls back to the reverse)
    rules: RosterRules = field(default_factory=RosterRules)
    weights: Weights = field(default_factory=Weights)
    locks: list[Lock] = field(default_factory=list)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def weeks(self) -> list[Week]:
        """Monday-to-Sunday weeks cut to the horizon (the first and last may be partial)."""
        weeks: list[list[date]] = []
        for day in self.dates():
            if not weeks or day.weekday() == 0:
                weeks.append([])
            weeks[-1].append(day)
        return [Week(i + 1, tuple(ds)) for i, ds in enumerate(weeks)]

    def travel_minutes(self, a: str, b: str) -> int:
        if a == b:
            return 0
        if (a, b) in self.travel:
            return self.travel[(a, b)]
        if (b, a) in self.travel:
            return self.travel[(b, a)]
        raise KeyError(f"no travel time between {a} and {b}")

    def expert(self, expert_id: str) -> Expert:
        return self._experts_by_id()[expert_id]

    def hospital_name(self, hospital_id: str) -> str:
        for h in self.hospitals:
            if h.id == hospital_id:
                return h.name
        return hospital_id

    def _experts_by_id(self) -> dict[str, Expert]:
        return {e.id: e for e in self.experts}

    def recurring_dates(self, expert: Expert) -> list[date]:
        if expert.recurrence is None:
            return []
        return [d for d in expert.recurrence.dates(self.start, self.end) if expert.in_posting(d)]

    def demand_periods(self, demand: Demand) -> list[tuple[str, tuple[date, ...], int]]:
        """(label, dates, sessions required) for each period the demand applies to."""
        if demand.per == "day":
            return [(f"{d:%m-%d}", (d,), demand.sessions) for d in self.dates() if d.weekday() in set(demand.weekdays)]
        return [(w.label, w.days, (demand.sessions * len(w.days) + 3) // 7) for w in self.weeks()]


@dataclass(frozen=True)
class Assignment:
    expert_id: str
    day: date
    hospital_id: str
    specialty: str
    locked: bool = False


@dataclass
class Roster:
    assignments: list[Assignment]

    def by_expert(self) -> dict[str, list[Assignment]]:
        out: dict[str, list[Assignment]] = {}
        for a in sorted(self.assignments, key=lambda a: (a.expert_id, a.day)):
            out.setdefault(a.expert_id, []).append(a)
        return out


@dataclass(frozen=True)
class Violation:
    """A rule the roster breaks, with the amount and a sentence a coordinator can act on."""

    rule: str  # two_places | unavailable | home_duty | not_eligible | specialty | outside_posting | resident_days
    # | rest_days | recurring_visit | monthly_days | max_outreach | travel_hop | lock | unknown
    expert_id: str
    message: str
    day: date | None = None
    amount: int = 1


@dataclass(frozen=True)
class Shortfall:
    """A hard rule that cannot hold in this instance, and by how much (from the solver's relaxed model)."""

    rule: str  # resident_days | rest_days | recurring_visit | monthly_days | lock
    expert_id: str
    amount: int
    message: str
    period: str = ""


@dataclass
class SolveResult:
    status: str  # OPTIMAL | FEASIBLE | INFEASIBLE | UNKNOWN | MODEL_INVALID
    feasible: bool  # every hard rule holds in the returned roster
    roster: Roster
    shortfalls: list[Shortfall]
    objective: float
    unmet_sessions: int
    demand_sessions: int
    fairness_spread: int
    travel_minutes: int
    seconds: float
    variables: int
    stats: dict[str, object] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------------
# In and out of the service (pydantic): programmes, postings, demand, locks, stored rosters


class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=128)
    sending_facility: str = Field(description="Facility id or code of the sending (regional or tertiary) hospital")
    receiving_facilities: list[str] = Field(min_length=1, max_length=500, description="Facility ids or codes")
    rest_days_per_week: int = Field(default=1, ge=0, le=7)
    travel_limit_minutes: int = Field(default=150, ge=10, le=24 * 60)
    start: date | None = None
    end: date | None = None


class PostingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str
    facility: str = Field(description="Receiving facility id or code (one of the programme's)")
    kind: PostingKind
    specialties: list[str] = Field(default_factory=list, max_length=5, description="Default: the practitioner's")
    recurrence: str | None = Field(default=None, max_length=128, description="e.g. FREQ=MONTHLY;BYDAY=1SA,1SU")
    start: date | None = None
    end: date | None = None
    min_days_per_week: int | None = Field(default=None, ge=0, le=7, description="Default: 4 for residents")
    min_days_per_month: int | None = Field(default=None, ge=0, le=31, description="Default: 2 for honorary chiefs")
    max_outreach_days: int | None = Field(default=None, ge=0, le=31)
    day_trips: bool | None = Field(default=None, description="Default: yes for recurring visitors and honorary chiefs")


class DemandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    facility: str
    specialty: str = Field(min_length=1, max_length=64)
    sessions: int = Field(ge=0, le=100)
    per: Literal["week", "day"] = "week"
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])
    weight: int = Field(default=1, ge=1, le=100)


class RosterEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practitioner_id: uuid.UUID
    day: date
    facility_id: uuid.UUID | None
    specialty: str | None
    locked: bool


class ViolationOut(BaseModel):
    rule: str
    expert_id: str
    message: str
    day: date | None = None
    amount: int = 1


class RosterOut(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    month: date
    status: str
    solver_status: str | None
    feasible: bool
    unmet_sessions: int
    demand_sessions: int
    shortfalls: list[dict[str, object]]
    entries: list[RosterEntryOut]
    violations: list[ViolationOut] = Field(default_factory=list, description="From the independent validator")


# ----------------------------------------------------------------------------------------------------------------------
# Clinics, booking, compliance, activities, training, impact

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
PHONE = r"^1\d{10}$"
RESIDENT_ID = r"^\d{17}[\dXx]$"


class ClinicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str = Field(description="The expert (Practitioner id)")
    facility: str = Field(description="Facility id or code where the clinic is held")
    programme_id: str | None = Field(default=None, description="The outreach programme, if any")
    specialty: str | None = Field(default=None, max_length=64, description="Default: the expert's")
    name: str | None = Field(default=None, max_length=128)
    daily_quota: int = Field(default=30, ge=1, le=300, description="Numbers released per day (Laixi: 30)")
    horizon_days: int = Field(default=7, ge=0, le=90, description="Days ahead a clinic day opens for booking")
    release_time: str = Field(default="08:00", pattern=HHMM, description="Local time the numbers are released")
    start_time: str = Field(default="08:00", pattern=HHMM)
    end_time: str = Field(default="12:00", pattern=HHMM)
    days: list[date] = Field(default_factory=list, max_length=366, description="Clinic days to open now")
    recurrence: str | None = Field(
        default=None, max_length=128, description="Or open the dates of a rule, e.g. FREQ=MONTHLY;BYDAY=1SA,1SU"
    )
    until: date | None = Field(default=None, description="Last date for the recurrence (default: 3 months ahead)")


class ClinicDaysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[date] = Field(min_length=1, max_length=366)
    waitlist_of: date | None = Field(
        default=None,
        description="An extra session for this full day: the one new day's numbers go to the patients waiting for it",
    )


class ExtraIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date
    count: int = Field(ge=1, le=100, description="Extra numbers (加号) to add to the day")


class PatientIn(BaseModel):
    """Who is booked: a patient record in the store, or a name with a resident ID card and/or a mobile phone."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    id_card: str | None = Field(default=None, pattern=RESIDENT_ID, description="18-character resident ID card")
    phone: str | None = Field(default=None, pattern=PHONE, description="Mainland mobile number, 11 digits")
    patient_ref: str | None = Field(default=None, max_length=64, description="Patient id in the FHIR store")


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date
    patient: PatientIn
    waitlist: bool = Field(default=True, description="Put the patient on the waitlist when the day is full")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    clinic_id: uuid.UUID
    day: date
    number: int
    start: str  # local time, HH:MM
    status: str
    channel: str
    patient_name: str
    patient_ref: str | None = None


class WaitlistOut(BaseModel):
    id: uuid.UUID
    clinic_id: uuid.UUID
    day: date
    position: int
    status: str
    patient_name: str


class BookingOut(BaseModel):
    """Either a booked appointment or a place on the waitlist."""

    status: Literal["booked", "waitlisted"]
    appointment: AppointmentOut | None = None
    waitlist: WaitlistOut | None = None


class ClinicDayOut(BaseModel):
    day: date
    quota: int
    extra: int
    booked: int
    free: int
    waiting: int
    opens_at: str  # local, "YYYY-MM-DD HH:MM"
    open_for_booking: bool
    status: str


class ClinicOut(BaseModel):
    id: uuid.UUID
    name: str
    programme_id: uuid.UUID | None
    practitioner_id: uuid.UUID
    practitioner_name: str
    facility_id: uuid.UUID
    facility_name: str
    specialty: str
    daily_quota: int
    horizon_days: int
    release_time: str
    start_time: str
    end_time: str
    days: list[ClinicDayOut] = Field(default_factory=list)


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str
    day: date


class WeekComplianceOut(BaseModel):
    week_start: date
    days: int
    required: int
    on_site: int
    short_by: int


class PostingComplianceOut(BaseModel):
    posting_id: uuid.UUID
    practitioner_id: uuid.UUID
    practitioner_name: str
    facility_name: str
    kind: str
    min_days_per_week: int
    weeks: list[WeekComplianceOut]
    alerts: list[WeekComplianceOut]


class ActivityKind(StrEnum):
    WARD_ROUND = "ward_round"
    SURGERY = "surgery"
    LECTURE = "lecture"
    TEACHING_ROUND = "teaching_round"
    MENTORED_SURGERY = "mentored_surgery"

    @property
    def is_teaching(self) -> bool:
        return self in (ActivityKind.LECTURE, ActivityKind.TEACHING_ROUND, ActivityKind.MENTORED_SURGERY)

    @property
    def is_operation(self) -> bool:
        return self in (ActivityKind.SURGERY, ActivityKind.MENTORED_SURGERY)


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str = Field(description="The visiting expert")
    facility: str
    day: date
    kind: ActivityKind
    title: str = Field(min_length=1, max_length=200, description="e.g. 腹腔镜胆囊切除术, or the lecture's subject")
    local_team: list[str] = Field(default_factory=list, max_length=20, description="Local practitioner ids")
    attendees: list[str] = Field(default_factory=list, max_length=300, description="Local practitioner ids")
    patient_ref: str | None = Field(default=None, max_length=64, description="Patient id (needed for surgery)")
    operation_level: int | None = Field(default=None, ge=1, le=4, description="Surgical level 1–4 (四级手术 = 4)")


class ComplianceAlertOut(BaseModel):
    """A resident expert's short week, raised once (the programme's alert inbox)."""

    id: uuid.UUID
    posting_id: uuid.UUID
    practitioner_id: uuid.UUID
    practitioner_name: str
    facility_id: uuid.UUID
    week_start: date
    required: int
    on_site: int
    raised_at: datetime


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    programme_id: uuid.UUID
    practitioner_id: uuid.UUID
    facility_id: uuid.UUID
    day: date
    kind: str
    title: str
    local_team: list[str]
    attendees: list[str]
    operation_level: int | None
    procedure_ref: str | None


class SkillLevel(StrEnum):
    OBSERVED = "observed"
    ASSISTED = "assisted"
    SUPERVISED = "supervised"
    INDEPENDENT = "independent"


class SkillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str = Field(description="The local doctor")
    procedure: str = Field(min_length=1, max_length=128)
    day: date
    level: SkillLevel
    supervisor_id: str | None = None
    activity_id: str | None = None


class SkillProgressOut(BaseModel):
    procedure: str
    counts: dict[str, int]
    first_independent: date | None
    level: str  # the highest level reached


class ImpactFigure(BaseModel):
    name: str
    before: int
    after: int

    @property
    def change(self) -> float | None:
        return round((self.after - self.before) / self.before, 3) if self.before else None


class ImpactOut(BaseModel):
    programme_id: uuid.UUID
    start: date
    window_days: int
    figures: list[dict[str, object]]
    referrals_avoided: int
    slots_offered: int
    slots_booked: int
    fill_rate: float
    unmet_demand: int
    surgeries_by_experts: int
    teaching_sessions: int
    doctors_trained: int
