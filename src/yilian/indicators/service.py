"""Use cases: which scopes a request means, compute a set for a period, trends, drill-down, assessments, exports."""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.errors import Forbidden, Invalid, NotFound
from yilian.indicators import definitions, rules, snapshot, sources
from yilian.indicators.engine import Engine, Result, Scope
from yilian.indicators.models import Assessment
from yilian.security import scope as access
from yilian.security.actor import Actor
from yilian.security.roles import JURISDICTION_ROLES, Role

FORMATS = ("json", "csv", "xlsx")


@dataclass
class Computed:
    set: definitions.IndicatorSet
    period: rules.Period
    snapshot: snapshot.Snapshot
    results: list[Result]


def _records(engine: Engine, table: str) -> list[dict[str, Any]]:
    with engine.lock:
        rows: list[dict[str, Any]] = engine.con.to_pyarrow(engine.base(table)).to_pylist()
    return rows


def _is_consortium(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def resolve_scopes(
    engine: Engine, iset: definitions.IndicatorSet, requested: str | None, by_city: bool = False
) -> list[Scope]:
    """The scopes a request means. County sets: every county under a division (the counties with a county medical
    community when nothing is asked; the cities of a province with `by_city`), one county, one consortium (by id) or
    one facility (by id: its own figures). Facility sets: the facilities of the set's level under a division, or one
    facility (by id or code)."""
    divisions = {str(d["code"]): d for d in _records(engine, "division")}
    facilities = _records(engine, "facility")
    if iset.scope_level == "facility":
        chosen = [f for f in facilities if f["level"] == iset.scope_facility_level]
        if requested:
            by_key = [f for f in facilities if requested in (f["id"], f["code"])]
            chosen = by_key or [f for f in chosen if str(f["division_code"]).startswith(requested)]
            if not chosen:
                raise NotFound(f"no facility or division {requested!r} in the snapshot", field="scope")
        return [Scope(str(f["id"]), str(f["name"]), "facility", {str(f["id"])}) for f in chosen]
    by_county: dict[str, set[str]] = {}
    for f in facilities:
        by_county.setdefault(str(f["county_code"]), set()).add(str(f["id"]))

    def county(code: str) -> Scope:
        d = divisions.get(code, {})
        pop = d.get("population")
        return Scope(
            code, str(d.get("name") or code), "division", by_county.get(code, set()), {code}, int(pop) if pop else None
        )

    def city(code: str) -> Scope:
        """A prefecture-level city as one scope: its counties' facilities and residents together."""
        d = divisions.get(code, {})
        counties = {c for c in by_county if c.startswith(code)}
        fids = {f for c in counties for f in by_county[c]}
        pop = d.get("population")
        if pop is None:  # a city's census is the sum of its counties' when only those are loaded
            pops = [divisions[c].get("population") for c in counties if c in divisions]
            pop = sum(int(p) for p in pops if p) if pops and all(pops) else None
        return Scope(code, str(d.get("name") or code), "division", fids, counties, int(pop) if pop else None)

    fac = next((f for f in facilities if requested and str(f["id"]) == requested), None)
    if fac is not None:
        # one facility: its own figures. Measures counted per county of residence do not apply to it (the engine
        # says so); everything counted where care happened does.
        return [Scope(str(fac["id"]), str(fac["name"]), "facility", {str(fac["id"])})]
    if requested and _is_consortium(requested):
        cons = {str(c["id"]): c for c in _records(engine, "consortium")}
        if requested not in cons:
            raise NotFound(f"no consortium or facility {requested!r} in the snapshot", field="scope")
        c = cons[requested]
        members = {
            str(m["facility_id"]) for m in _records(engine, "consortium_member") if m["consortium_id"] == requested
        }
        code = str(c.get("division_code") or "")[:6]
        pop = divisions.get(code, {}).get("population") if code else None
        return [
            Scope(
                requested, str(c["name"]), "consortium", members, {code} if code else set(), int(pop) if pop else None
            )
        ]
    if requested:
        if not requested.isdigit() or len(requested) not in (2, 4, 6):
            raise Invalid(
                f"scope {requested!r} is neither a division code (14, 1410, 141021) nor a consortium id", field="scope"
            )
        if requested not in divisions and not any(c.startswith(requested) for c in divisions):
            raise NotFound(f"no division {requested!r} in the snapshot", field="scope")
        if len(requested) == 6:
            return [county(requested)]
        if len(requested) == 2 and by_city:
            return [
                city(c) for c in sorted(c for c, d in divisions.items() if d["level"] == "city" and c[:2] == requested)
            ]
        codes = sorted(c for c, d in divisions.items() if d["level"] == "county" and c.startswith(requested))
        with_facilities = [c for c in codes if c in by_county]
        return [county(c) for c in (with_facilities or codes)]
    led = sorted(
        {
            str(c["division_code"])[:6]
            for c in _records(engine, "consortium")
            if c["form"] == "county_medical_community" and c.get("division_code")
        }
    )
    return [county(c) for c in (led or sorted(by_county))]


# The engine of the snapshot asked for last, kept between requests: a second request on the same snapshot pays only
# for its queries, not for opening the tables and looking up what they cover again. One at a time (a new snapshot
# replaces it), so the server keeps one snapshot's connection open, not one per snapshot ever asked for.
_engines: dict[tuple[str, str], Engine] = {}
_engines_lock = threading.Lock()


def open_engine(snapshot_id: str | None = None, root: Path | None = None) -> Engine:
    snap = snapshot.load(snapshot_id, root) if snapshot_id else snapshot.latest(root)
    if snap is None:
        raise NotFound(
            "no indicator snapshot yet: run `yilian indicators snapshot` (or compute with --refresh)", field="snapshot"
        )
    key = (str(snap.root.resolve()), snap.id)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            _engines.clear()
            engine = _engines[key] = Engine(snap)
    return engine


def compute(
    engine: Engine,
    set_id: str,
    period_text: str,
    scope: str | None = None,
    only: set[str] | None = None,
    by_city: bool = False,
) -> Computed:
    iset = definitions.get_set(set_id, field="set")
    period = rules.parse_period(period_text)
    scopes = resolve_scopes(engine, iset, scope, by_city)
    return Computed(iset, period, engine.snap, engine.compute(iset, period, scopes, only))


def trend(engine: Engine, indicator_id: str, period_text: str, scope: str | None = None) -> list[Result]:
    """One result per month of the period and scope; months without data are null, not 0."""
    ind = definitions.get_indicator(indicator_id)
    iset = definitions.get_set(ind.set_id)
    period = rules.parse_period(period_text)
    scopes = resolve_scopes(engine, iset, scope)
    only = {ind.id} | ({ind.growth_of} if ind.growth_of else set())
    out = []
    for month in period.months():
        out += [r for r in engine.compute(iset, month, scopes, only) if r.id == ind.id]
    return out


def drill(
    engine: Engine, indicator_id: str, period_text: str, scope: str, part: str = "numerator", limit: int = 200
) -> tuple[list[dict[str, Any]], int]:
    if part not in ("numerator", "denominator"):
        raise Invalid("part is numerator or denominator", field="part")
    ind = definitions.get_indicator(indicator_id)
    iset = definitions.get_set(ind.set_id)
    scopes = resolve_scopes(engine, iset, scope)
    if len(scopes) != 1:
        raise Invalid("drill-down needs one county, consortium or facility as scope", field="scope")
    return engine.rows(ind, scopes[0], rules.parse_period(period_text), part, limit)


def audit_drill(session: Session, actor: Actor, indicator_id: str, rows: list[dict[str, Any]]) -> None:
    from yilian.security import audit

    for patient in sorted({str(r["patient_id"]) for r in rows if r.get("patient_id")}):
        audit.record(
            session, actor, "indicators.drill", patient=f"Patient/{patient}"[:128], resource=f"indicator/{indicator_id}"
        )


def check_scope(actor: Actor, scope: str | None, engine: Engine | None = None) -> str | None:
    """The scope an actor may ask for: officials within their jurisdiction (a consortium too, when `engine` can say
    where it is), consortium administrators their consortia (or their county); the default scope of an official is
    their own division."""
    if actor.role == Role.SYSTEM_ADMIN:
        return scope
    if actor.role in JURISDICTION_ROLES:
        own = access.division_prefix(actor) or ""
        if scope is None:
            return own or None
        if scope.isdigit() and (access.in_jurisdiction(actor, scope) or scope.startswith(own)):
            return scope
        if engine is not None and _is_consortium(scope):
            where = next(
                (str(c["division_code"] or "") for c in _records(engine, "consortium") if str(c["id"]) == scope), ""
            )
            if where and access.in_jurisdiction(actor, where):
                return scope
        raise Forbidden(f"scope {scope} is outside your jurisdiction", field="scope")
    if actor.role == Role.CONSORTIUM_ADMIN:
        own_ids = {str(c) for c in actor.consortium_ids}
        county = (actor.facility_division_code or "")[:6]
        if scope is None:
            return county or None
        if scope in own_ids or (county and scope == county):
            return scope
        raise Forbidden(f"scope {scope} is not your consortium or county", field="scope")
    raise Forbidden("indicators are for health commissions, insurers and consortium administrators", field="scope")


def refresh(session: Session, root: Path | None = None, progress: Any = None) -> snapshot.Snapshot:
    return sources.take(session, root, progress)


# ---------------------------------------------------------------------------------------------- assessments


def record_assessment(
    session: Session, actor: Actor, indicator_id: str, scope: str, year: int, value: bool, evidence: str = ""
) -> Assessment:
    ind = definitions.get_indicator(indicator_id, field="indicator")
    if not ind.assessment:
        raise Invalid(f"{indicator_id} is computed from activity, not assessed", field="indicator")
    if not 2000 <= year <= 2100:
        raise Invalid("year must be between 2000 and 2100", field="year")
    if not (scope.isdigit() and len(scope) == 6) and not _is_consortium(scope):
        raise Invalid("scope is a county code (6 digits) or a consortium id", field="scope")
    if actor.role not in JURISDICTION_ROLES and actor.role != Role.SYSTEM_ADMIN:
        raise Forbidden("assessments are recorded by health commissions", field="scope")
    if scope.isdigit() and not access.in_jurisdiction(actor, scope):
        raise Forbidden(f"scope {scope} is outside your jurisdiction", field="scope")
    row = session.scalar(
        select(Assessment).where(
            Assessment.indicator_id == indicator_id, Assessment.scope == scope, Assessment.year == year
        )
    )
    if row is None:
        row = Assessment(indicator_id=indicator_id, scope=scope, year=year, value=value, recorded_by=actor.username)
        session.add(row)
    row.value, row.evidence, row.recorded_by = value, evidence, actor.username
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------- exports

COLUMNS = [
    "id",
    "name",
    "name_en",
    "aspect",
    "scope",
    "scope_name",
    "period",
    "value",
    "numerator",
    "denominator",
    "unit",
    "direction",
    "target",
    "meets_target",
    "status",
    "note",
    "snapshot",
    "source",
]


def to_json(results: list[Result]) -> str:
    return json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=1)


def to_csv(results: list[Result]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in results:
        w.writerow({k: ("" if v is None else v) for k, v in r.as_dict().items()})
    return buf.getvalue()


def to_xlsx(computed: Computed, lang: str = "zh") -> bytes:
    """A workbook an official can forward as is: title, period, snapshot, formatted headers, units, sources."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    zh = lang != "en"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "指标" if zh else "Indicators"
    ws.append([computed.set.name.pick(lang)])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(
        [
            ("统计期：" if zh else "Period: ") + computed.period.label,
            ("数据快照：" if zh else "Snapshot: ") + computed.snapshot.id,
        ]
    )
    ws.append([("来源：" if zh else "Source: ") + computed.set.source_text])
    ws.append([])
    headers = (
        [
            "指标编号",
            "指标名称",
            "维度",
            "范围",
            "数值",
            "分子",
            "分母",
            "单位",
            "方向",
            "目标值",
            "是否达标",
            "状态",
            "说明",
        ]
        if zh
        else [
            "ID",
            "Indicator",
            "Aspect",
            "Scope",
            "Value",
            "Numerator",
            "Denominator",
            "Unit",
            "Direction",
            "Target",
            "Meets target",
            "Status",
            "Note",
        ]
    )
    ws.append(headers)
    head_row = ws.max_row
    fill = PatternFill("solid", fgColor="1F4E79")
    for cell in ws[head_row]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    yes, no = ("是", "否") if zh else ("yes", "no")
    for r in computed.results:
        ind = definitions.get_indicator(r.id)
        unit = rules.UNITS[r.unit][1 if zh else 2]
        ws.append(
            [
                r.id,
                ind.name.pick(lang),
                definitions.ASPECTS[r.aspect].pick(lang),
                r.scope_name,
                r.value if r.value is not None else ("无数据" if zh else "no data"),
                r.numerator,
                r.denominator,
                unit,
                ("越高越好" if r.direction == "higher" else "越低越好") if zh else r.direction,
                r.target,
                None if r.meets_target is None else (yes if r.meets_target else no),
                r.status,
                r.note or "",
            ]
        )
    for i, width in enumerate([30, 44, 18, 16, 12, 12, 12, 14, 10, 10, 10, 16, 48], start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = ws.cell(row=head_row + 1, column=1)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def today() -> date:
    return date.today()


def consortia_in(engine: Engine, scope: str | None) -> list[str]:
    """Ids of the county medical communities under a division (every one when scope is None)."""
    out = []
    for c in _records(engine, "consortium"):
        if c["form"] != "county_medical_community":
            continue
        if scope and not str(c.get("division_code") or "").startswith(scope) and str(c["id"]) != scope:
            continue
        out.append(str(c["id"]))
    return sorted(out)


# ---------------------------------------------------------------------------------------------- function guide

FUNCTION_SET = "function-guide"


@dataclass
class FunctionCell:
    state: str  # used | not_used | no_data
    count: float | None
    note: str | None


def function_coverage(engine: Engine, period_text: str, scope: str | None = None) -> dict[str, Any]:
    """Which of the 36 functions of the 2025 guide each county uses, from what its facilities recorded in the period:
    used (activity > 0), not used (the activity is recorded elsewhere but not here: a real 0), or no data (nothing in
    Yilian records that activity, so nobody can say)."""
    computed = compute(engine, FUNCTION_SET, period_text, scope)
    scopes: dict[str, dict[str, Any]] = {}
    cells: dict[str, dict[str, FunctionCell]] = {}
    for r in computed.results:
        if r.status == "no_data" or r.value is None:
            state = "no_data"
        else:
            state = "used" if r.value > 0 else "not_used"
        cells.setdefault(r.id, {})[r.scope] = FunctionCell(state, r.value, r.note)
        s = scopes.setdefault(r.scope, {"scope": r.scope, "name": r.scope_name, "used": 0, "not_used": 0, "no_data": 0})
        s[state] += 1
    functions = [
        {
            "id": ind.id,
            "class": ind.aspect,
            "class_name": definitions.ASPECTS[ind.aspect].model_dump(),
            "name": ind.name.zh,
            "name_en": ind.name.en,
            "evidence": _evidence(ind),
            "cells": {k: vars(c) for k, c in cells.get(ind.id, {}).items()},
        }
        for ind in computed.set.indicators
    ]
    return {
        "set": FUNCTION_SET,
        "period": computed.period.label,
        "snapshot": computed.snapshot.id,
        "total": len(functions),
        "scopes": [s | {"total": len(functions)} for s in scopes.values()],
        "functions": functions,
    }


def _evidence(ind: definitions.Indicator) -> str | None:
    """What activity counts as using the function, in words a reader can check (None: not recorded anywhere)."""
    m = ind.numerator
    if m is None:
        return None
    if not m.where:
        return m.table
    return f"{m.table}: " + " · ".join(_condition(k, v) for k, v in m.where.items())


_OPERATORS = {"ne": "≠", "ge": "≥", "gt": ">", "le": "≤", "lt": "<", "eq": "="}


def _condition(column: str, value: object) -> str:
    """One filter of a definition as a reader writes it: `status ≠ cancelled`, `kind ∈ {surgery, ward_round}`."""
    if isinstance(value, list):
        return f"{column} ∈ {{{', '.join(map(str, value))}}}"
    if isinstance(value, dict):
        parts = []
        for op, arg in value.items():
            if op == "not_null":
                parts.append(f"{column} {'≠' if arg else '='} ∅")
            elif op == "in":
                parts.append(_condition(column, list(arg)))
            else:
                parts.append(f"{column} {_OPERATORS.get(op, op)} {arg}")
        return " · ".join(parts)
    return f"{column} = {str(value).lower() if isinstance(value, bool) else value}"


# ---------------------------------------------------------------------------------------------- dashboards


def facilities_of(engine: Engine, county: str) -> list[Scope]:
    """Every facility of a county (the last step of the drill-down), or every member of a consortium (its members
    compared), each as its own scope."""
    if _is_consortium(county):
        members = {
            str(m["facility_id"]) for m in _records(engine, "consortium_member") if str(m["consortium_id"]) == county
        }
        if not members:
            raise NotFound(f"no consortium {county!r} with members in the snapshot", field="scope")
        rows = [f for f in _records(engine, "facility") if str(f["id"]) in members]
        return [
            Scope(str(f["id"]), str(f["name"]), "facility", {str(f["id"])})
            for f in sorted(rows, key=lambda f: f["name"])
        ]
    if not (county.isdigit() and len(county) == 6):
        raise Invalid(
            "the facilities of one county or consortium: give a county code (141021) or a consortium id", field="scope"
        )
    rows = [f for f in _records(engine, "facility") if str(f["county_code"]) == county]
    return [
        Scope(str(f["id"]), str(f["name"]), "facility", {str(f["id"])}) for f in sorted(rows, key=lambda f: f["name"])
    ]


def compute_facilities(engine: Engine, set_id: str, period_text: str, county: str) -> Computed:
    iset = definitions.get_set(set_id, field="set")
    period = rules.parse_period(period_text)
    return Computed(iset, period, engine.snap, engine.compute(iset, period, facilities_of(engine, county)))


def places(engine: Engine) -> dict[str, dict[str, Any]]:
    """Name, level, coordinates and parent of every division (by code) and facility (by id), for maps and the
    drill-down trail. Coordinates are the registry's (division seats, facility positions); no map tiles."""
    out: dict[str, dict[str, Any]] = {}
    for d in _records(engine, "division"):
        out[str(d["code"])] = {
            "name": d["name"],
            "kind": str(d["level"]),
            "lon": d.get("lon"),
            "lat": d.get("lat"),
            "parent": d.get("parent_code"),
        }
    for f in _records(engine, "facility"):
        out[str(f["id"])] = {
            "name": f["name"],
            "kind": "facility",
            "lon": f.get("lon"),
            "lat": f.get("lat"),
            "parent": str(f["county_code"]),
            "level": f["level"],
        }
    return out


def trail(places_by_key: dict[str, dict[str, Any]], scope: str | None) -> list[tuple[str, str]]:
    """The drill-down trail from the province to `scope`: [(key, name), …]."""
    out: list[tuple[str, str]] = []
    key = scope
    while key and key in places_by_key and len(out) < 6:
        out.append((key, str(places_by_key[key]["name"])))
        key = places_by_key[key].get("parent")
        if key and key not in places_by_key and len(key) > 2:
            key = key[: len(key) - 2]  # a city-less county (直辖县) or a division whose parent is not loaded
    return list(reversed(out))


def check_facility(actor: Actor, engine: Engine, facility_id: str) -> None:
    """Who may see one facility's own figures: its own staff, officials over its county, administrators of a
    consortium it belongs to (or of its county)."""
    fac = next((f for f in _records(engine, "facility") if str(f["id"]) == facility_id), None)
    if fac is None:
        raise NotFound(f"no facility {facility_id!r} in the snapshot", field="facility")
    if actor.role == Role.SYSTEM_ADMIN or str(actor.facility_id or "") == facility_id:
        return
    county = str(fac["county_code"])
    if actor.role in JURISDICTION_ROLES and access.in_jurisdiction(actor, county):
        return
    if actor.role == Role.CONSORTIUM_ADMIN:
        own = {str(c) for c in actor.consortium_ids}
        members = {
            str(m["consortium_id"])
            for m in _records(engine, "consortium_member")
            if str(m["facility_id"]) == facility_id
        }
        if own & members or (actor.facility_division_code or "")[:6] == county:
            return
    raise Forbidden(
        "this facility's figures are for its own staff, its consortium and its commission", field="facility"
    )
