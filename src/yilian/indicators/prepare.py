"""The registry joined into the activity tables: the columns the engine derives (`schema.DERIVED`).

An encounter carries its facility's level, kind and county and its patient's county; a referral the levels and
counties of both ends; and so on. These are written with the snapshot (`snapshot.write`), once per version of a table
and of the tables it reads, so that an engine on a new snapshot opens ready-joined tables instead of joining 750,000
patients into 5 million encounters again: what did not change since the last snapshot is not joined again either.
The same function derives them on the fly for a snapshot written before prepared tables existed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import ibis.expr.types as ir

# bump when what `enrich` derives changes: prepared tables of the older version are then written again
VERSION = "1"

# the tables `enrich` changes (the others are read as they are)
PREPARED = (
    "encounter",
    "claim",
    "procedure",
    "staff_income",
    "outreach_activity",
    "outreach_checkin",
    "recognition_decision",
    "recognition_qualification",
    "diagnostic_report",
    "outreach_clinic_day",
    "diagnostic_order",
    "teleconsultation",
    "posting",
    "referral",
    "chronic_managed",
    "death",
    "facility",
)

Base = Callable[[str], ir.Table]


def _with_facility(base: Base, t: ir.Table, col: str, prefix: str, keep: Iterable[str]) -> ir.Table:
    f = base("facility")
    f = f.select(
        **{
            f"{prefix}_fid": f.id,
            f"{prefix}_level": f.level,
            f"{prefix}_kind": f.kind,
            f"{prefix}_county": f.county_code,
        }
    )
    j = t.left_join(f, t[col] == f[f"{prefix}_fid"])
    drop = [c for c in (f"{prefix}_fid", f"{prefix}_level", f"{prefix}_kind", f"{prefix}_county") if c not in keep]
    return j.drop(*drop)


def _with_patient_county(base: Base, t: ir.Table) -> ir.Table:
    p = base("patient")
    p = p.select(p_pid=p.id, patient_county=p.division_code.substr(0, 6))
    return t.left_join(p, t.patient_id == p.p_pid).drop("p_pid")


def enrich(name: str, t: ir.Table, base: Base) -> ir.Table:
    """`t` (the snapshot's table `name`) with the registry joined in and the derived columns; `base` gives the other
    tables of the same snapshot (facility, patient)."""
    if name == "encounter":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_kind", "facility_county"))
        t = _with_patient_county(base, t)
        seconds = (t.period_end.epoch_seconds() - t.period_start.epoch_seconds()).cast("float64")
        return t.mutate(
            in_county=(t.facility_county == t.patient_county).fill_null(False),
            is_tcm=((t.facility_kind == "tcm") | (t.service_type == "tcm")).fill_null(False),
            stay_days=seconds / 86400.0,
        )
    if name == "claim":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
        t = _with_patient_county(base, t)
        return t.mutate(in_county=(t.facility_county == t.patient_county).fill_null(False))
    if name in (
        "procedure",
        "staff_income",
        "outreach_activity",
        "outreach_checkin",
        "recognition_decision",
        "recognition_qualification",
    ):
        return _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
    if name == "diagnostic_report":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
        t = _with_facility(base, t, "performer_facility_id", "performer", ("performer_level",))
        secs = (t.issued.epoch_seconds() - t.effective.epoch_seconds()).cast("float64")
        return t.mutate(turnaround_hours=secs / 3600.0)
    if name == "outreach_clinic_day":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
        # numbers whose day is over: the patient came or did not (still-booked numbers are not yet either)
        return t.mutate(settled=t.arrived.fill_null(0) + t.noshow.fill_null(0))
    if name == "diagnostic_order":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
        t = _with_facility(base, t, "centre_facility_id", "centre", ("centre_level", "centre_county"))
        secs = (t.reported_at.epoch_seconds() - t.ordered_at.epoch_seconds()).cast("float64")
        return t.mutate(turnaround_hours=secs / 3600.0)
    if name == "teleconsultation":
        t = _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
        t = _with_facility(base, t, "centre_facility_id", "centre", ("centre_level",))
        secs = (t.answered_at.epoch_seconds() - t.requested_at.epoch_seconds()).cast("float64")
        return t.mutate(response_hours=secs / 3600.0)
    if name == "posting":
        t = _with_facility(base, t, "home_facility_id", "home", ("home_level",))
        return _with_facility(base, t, "facility_id", "facility", ("facility_level", "facility_county"))
    if name == "referral":
        t = _with_facility(base, t, "from_facility_id", "from", ("from_level", "from_county"))
        t = _with_facility(base, t, "to_facility_id", "to", ("to_level", "to_county"))
        secs = (t.down_referred_at.epoch_seconds() - t.submitted_at.epoch_seconds()).cast("float64")
        return t.mutate(
            out_of_county=(t.from_county != t.to_county).fill_null(False),
            out_of_province=(t.from_county.substr(0, 2) != t.to_county.substr(0, 2)).fill_null(False),
            accepted_within_sla=(t.accepted_at.notnull() & (t.accepted_at <= t.accept_due)).fill_null(False),
            days_to_down=secs / 86400.0,
        )
    if name == "chronic_managed":
        return _with_patient_county(base, t)
    if name == "death":
        return t.mutate(county=t.division_code.substr(0, 6))
    if name == "facility":
        return t.mutate(facility_id=t.id)
    return t


def reads(name: str, base: Base) -> list[str]:
    """The other tables `enrich(name, …)` reads (their versions are part of the prepared table's version)."""
    asked: list[str] = []

    def recording(other: str) -> ir.Table:
        if other not in asked:
            asked.append(other)
        return base(other)

    enrich(name, base(name), recording)
    return [n for n in asked if n != name]
