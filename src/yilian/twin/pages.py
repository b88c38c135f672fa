"""The twin page: build a scenario from the map, run it in the background with progress, compare it with the baseline.

The draft scenario lives in the page (a hidden JSON field), so nothing is stored until the official runs it; a run is a
job (twin/jobs.py) whose scenario YAML can be downloaded and run again with the CLI.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from yilian.db import read_session
from yilian.errors import Forbidden, Invalid, YilianError
from yilian.security import scope as access
from yilian.security.actor import Actor
from yilian.security.roles import JURISDICTION_ROLES, Role
from yilian.twin import engine, jobs, measures, population
from yilian.web.auth import current_actor
from yilian.web.home import NavItem
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)
ROLES = frozenset({str(r) for r in JURISDICTION_ROLES | {Role.SYSTEM_ADMIN}})
NAV = [(60, NavItem("/twin", "Digital twin", ROLES))]
DEFAULT_AREA = "1410"  # the demo region (Linfen) for a system administrator who has no jurisdiction
TARGET_RESIDENTS = 40_000  # simulated residents of a page run: a few seconds per replication on one core

# What the official can change from the page, with the fields each change takes (in the order they are shown).
CHANGE_TYPES: dict[str, tuple[str, ...]] = {
    "add_resident_experts": ("county", "facility", "experts"),
    "add_beds": ("county", "facility", "township", "beds"),
    "upgrade_facility": ("county", "facility", "township", "capability", "green"),
    "close_township_centre": ("township",),
    "capitation": ("county", "capitation", "budget_per_insured_yuan"),
    "mobile_ct_route": ("county", "days_per_stop_per_month"),
    "monthly_expert_clinic": ("county", "facility", "experts"),
}
DEFAULTS = {
    "experts": {"add_resident_experts": 70, "monthly_expert_clinic": 12},
    "beds": 20,
    "capability": 0.05,
    "budget_per_insured_yuan": 850,
    "days_per_stop_per_month": 1,
}
# English msgids of the page's names for kinds of change, facilities and run states (Chinese in i18n/zh.po).
LABELS = {
    "change:add_resident_experts": "Post resident experts",
    "change:add_beds": "Add beds",
    "change:upgrade_facility": "Upgrade a facility",
    "change:close_township_centre": "Close a township centre",
    "change:capitation": "Capitation",
    "change:mobile_ct_route": "Mobile CT truck route",
    "change:monthly_expert_clinic": "Monthly expert clinic",
    "facility:county_hospital": "County people's hospital",
    "facility:county_other": "TCM and other county hospitals",
    "facility:township_centre": "Township health centre",
    "facility:city_hospital": "City tertiary hospital",
    "state:queued": "queued",
    "state:running": "running",
    "state:done": "done",
    "state:failed": "failed",
}
FACILITY_KINDS = ("county_hospital", "county_other", "township_centre", "city_hospital")
# Indicators shown as charts, baseline and scenario side by side (all of them are in the table).
CHARTS = (
    "in_county_admission_share",
    "primary_share_of_visits",
    "up_referrals",
    "county_hospital_up_referrals",
    "travel_minutes_per_visit",
    "wait_minutes_per_visit",
    "fund_spent_in_county_share",
    "cost_per_inpatient_case_yuan",
)


def _guard(actor: Actor) -> None:
    if str(actor.role) not in ROLES:
        raise Forbidden("the digital twin is for health commissions and insurers", field="role")


def _area(actor: Actor, requested: str | None) -> str:
    """The division the official simulates: their own by default, anything inside their jurisdiction on request."""
    own = access.division_prefix(actor) or ""
    area = (requested or own or DEFAULT_AREA).strip()
    if not area.isdigit() or len(area) not in (2, 4, 6):
        raise Invalid("area is a 2-digit province, 4-digit city or 6-digit county code", field="area")
    if not access.in_jurisdiction(actor, area) and not area.startswith(own or "\0"):
        raise Forbidden(f"area {area} is outside your jurisdiction", field="area")
    return area


def _area_name(area: str) -> str:
    """The division's name from the census rows (province, city or county)."""
    for r in population.census_rows():
        if r["code"].startswith(area):
            return r["province"] if len(area) == 2 else r["city"] if len(area) == 4 else r["county"]
    return area


def _counties(area: str) -> list[tuple[str, str]]:
    names = {r["code"]: r["county"] for r in population.census_rows()}
    return [(c, names.get(c, c)) for c in population.counties_of(area)]


def _map_points(session: Session, area: str) -> dict[str, list[list[Any]]]:
    """Hospitals and township centres of the area from the registry, as [lon, lat, name, county, township, kind]."""
    from yilian.network import service as network

    points: dict[str, list[list[Any]]] = {}
    for level in ("tertiary", "county_hospital", "township_centre"):
        offset = 0
        while True:
            page = network.list_facilities(session, division_prefix=area, level=level, offset=offset, limit=500)
            for f in page.items:
                if f.lon is None or f.lat is None:
                    continue
                code = str(f.division_code)
                if level == "tertiary":
                    kind = "city_hospital"
                elif level == "county_hospital":
                    kind = "county_hospital" if f.kind == "general" else "county_other"
                else:
                    kind = "township_centre"
                points.setdefault(kind, []).append([f.lon, f.lat, f.name, code[:6], code[:9], kind])
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
    return points


def _fields_ctx(kind: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "fields": CHANGE_TYPES[kind],
        "values": values or {},
        "defaults": DEFAULTS,
        "facility_kinds": FACILITY_KINDS,
        "labels_of": LABELS,
    }


def _change_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """One change in the scenario YAML's words, from the builder's fields; an unusable value names its field."""
    kind = str(form.get("type") or "")
    if kind not in CHANGE_TYPES:
        raise Invalid(f"type must be one of {', '.join(CHANGE_TYPES)}", field="type")
    out: dict[str, Any] = {"type": kind}

    def number(name: str, *, integer: bool = False) -> float | int:
        raw = str(form.get(name) or "").strip()
        try:
            value = float(raw)
        except ValueError:
            raise Invalid(f"{name} must be a number", field=name) from None
        if value < 0:
            raise Invalid(f"{name} must not be negative", field=name)
        return int(value) if integer else value

    def text(name: str) -> str:
        raw = str(form.get(name) or "").strip()
        if not raw:
            raise Invalid(f"{name} is required for {kind}", field=name)
        return raw

    fields = CHANGE_TYPES[kind]
    facility = str(form.get("facility") or "county_hospital")
    if "facility" in fields:
        if facility not in FACILITY_KINDS:
            raise Invalid(f"facility must be one of {', '.join(FACILITY_KINDS)}", field="facility")
        if kind in ("add_resident_experts", "monthly_expert_clinic") and facility not in (
            "county_hospital",
            "county_other",
        ):
            raise Invalid("experts are posted to a county-level hospital", field="facility")
        out["facility"] = facility
    if "county" in fields and (facility != "township_centre" or "township" not in fields):
        out["county"] = text("county")
    if "township" in fields and (kind == "close_township_centre" or facility == "township_centre"):
        out["township"] = text("township")
    if "experts" in fields:
        out["experts"] = number("experts", integer=True)
    if "beds" in fields:
        out["beds"] = number("beds", integer=True)
    if "capability" in fields:
        cap = number("capability")
        if cap > 1:
            raise Invalid("capability is a gain between 0 and 1", field="capability")
        out["capability"] = cap
        if form.get("green"):
            out["green"] = ["pci"]
    if kind == "capitation":
        on = str(form.get("capitation") or "on") == "on"
        out["counties"] = [text("county")] if on else []
        del out["county"]
        if on:
            out["budget_per_insured_yuan"] = number("budget_per_insured_yuan")
    if kind == "mobile_ct_route":
        out["townships"] = "all"
        out["days_per_stop_per_month"] = number("days_per_stop_per_month", integer=True)
    return out


def _changes(raw: str | None) -> list[dict[str, Any]]:
    try:
        doc = json.loads(raw or "[]")
    except ValueError:
        raise Invalid("the draft scenario is not readable: start again", field="changes") from None
    if not isinstance(doc, list) or not all(isinstance(c, dict) for c in doc):
        raise Invalid("the draft scenario is not readable: start again", field="changes")
    return doc


def _form_field(field: str | None) -> str | None:
    """changes[2].township → township: the builder has one set of fields, the error marks the one that is wrong."""
    if not field:
        return None
    return field.rsplit(".", 1)[-1] if field.startswith("changes[") else field


def _describe(ch: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    where = ch.get("township") or names.get(str(ch.get("county")), ch.get("county")) or ""
    if ch["type"] == "capitation":
        where = ", ".join(names.get(c, c) for c in ch.get("counties", [])) or "—"
    details = {k: v for k, v in ch.items() if k not in ("type", "county", "township", "counties", "facility")}
    return {"type": ch["type"], "where": where, "facility": ch.get("facility"), "details": details}


def _region_for(area: str, changes: list[dict[str, Any]], focus: bool) -> list[str]:
    """The counties to simulate: the area, or only the counties the changes touch (sharper results, faster)."""
    counties = population.counties_of(area)
    if not focus:
        return counties
    touched: list[str] = []
    for ch in changes:
        for code in [ch.get("county"), *(ch.get("counties") or []), str(ch.get("township") or "")[:6]]:
            if code and str(code) in counties and str(code) not in touched:
                touched.append(str(code))
    return touched or counties


def _auto_scale(region: list[str]) -> float:
    census = {r["code"]: float(r["population"]) for r in population.census_rows()}
    residents = sum(census.get(c, 0.0) for c in region) or 1.0
    return round(min(0.2, max(0.001, TARGET_RESIDENTS / residents)), 4)


def _draft_ctx(area: str, changes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    names = dict(_counties(area))
    return {
        "area": area,
        "changes": changes,
        "changes_json": json.dumps(changes, ensure_ascii=False),
        "described": [_describe(c, names) for c in changes],
        "labels_of": LABELS,
        **extra,
    }


@router.get("/twin")
def twin_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    area: Annotated[str | None, Query(max_length=6)] = None,
) -> Response:
    _guard(actor)
    area = _area(actor, area)
    with read_session() as session:
        points = _map_points(session, area)
    counties = _counties(area)
    return render(
        request,
        "twin/page.html",
        {
            **_draft_ctx(area, []),
            "area_name": _area_name(area),
            **_fields_ctx("add_resident_experts"),
            "counties": counties,
            "points": points,
            "change_types": list(CHANGE_TYPES),
            "runs": [r for r in jobs.recent() if access.in_jurisdiction(actor, r["request"].get("area", ""))],
            "scale": _auto_scale([c for c, _ in counties]),
        },
    )


@router.get("/twin/fields")
def change_fields(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    type: Annotated[str, Query(max_length=40)] = "add_resident_experts",
    area: Annotated[str | None, Query(max_length=6)] = None,
) -> Response:
    _guard(actor)
    area = _area(actor, area)
    if type not in CHANGE_TYPES:
        raise Invalid(f"type must be one of {', '.join(CHANGE_TYPES)}", field="type")
    return render(request, "twin/_fields.html", {**_fields_ctx(type), "counties": _counties(area)})


@router.post("/twin/draft")
async def add_change(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    """Add the builder's change to the draft; the whole draft is checked as the CLI would check it."""
    _guard(actor)
    form = dict(await request.form())
    area = _area(actor, str(form.get("area") or "") or None)
    changes = _changes(str(form.get("changes") or "[]"))
    remove = str(form.get("remove") or "")
    try:
        if remove.isdigit():
            changes = [c for i, c in enumerate(changes) if i != int(remove)]
        else:
            change = _change_from_form(form)
            candidate = [*changes, change]
            region = _region_for(area, candidate, focus=True)
            # Applying the changes to a small world takes a fraction of a second: off the event loop.
            await run_in_threadpool(
                jobs.validate,
                jobs.RunRequest(
                    name="draft",
                    region=region,
                    area=area,
                    changes=candidate,
                    replications=1,
                    years=1,
                    scale=_auto_scale(region),
                ),
            )
            changes = candidate
    except YilianError as exc:
        return render(
            request,
            "twin/_draft.html",
            _draft_ctx(area, changes, error=exc.message, error_field=_form_field(exc.field)),
            status=exc.status,
        )
    return render(request, "twin/_draft.html", _draft_ctx(area, changes))


@router.post("/twin/runs")
async def start_run(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    _guard(actor)
    form = dict(await request.form())
    area = _area(actor, str(form.get("area") or "") or None)
    changes = _changes(str(form.get("changes") or "[]"))
    try:
        if not changes:
            raise Invalid("add at least one change to the scenario before running it", field="changes")
        name = str(form.get("name") or "").strip()
        if not name:
            raise Invalid("give the scenario a name", field="name")
        if len(name) > 120:
            raise Invalid("name is at most 120 characters", field="name")
        region = _region_for(area, changes, focus=bool(form.get("focus")))
        scale_raw = str(form.get("scale") or "").strip() or str(_auto_scale(region))
        replications, years, scale = jobs.check_numbers(form.get("replications"), form.get("years"), scale_raw)
        req = jobs.RunRequest(
            name=name,
            region=region,
            area=area,
            changes=changes,
            replications=replications,
            years=years,
            scale=scale,
        )
        job_id = await run_in_threadpool(jobs.start, req, owner=actor.username)
    except YilianError as exc:
        return render(
            request,
            "twin/_run_error.html",
            {"error": exc.message, "error_field": _form_field(exc.field)},
            status=exc.status,
        )
    return render(request, "twin/_job.html", _job_ctx(jobs.get(job_id), area, request.state.lang))


def _job_ctx(job: dict[str, Any], area: str, lang: str) -> dict[str, Any]:
    labels = {**engine.INDICATORS, **measures.names(lang)}  # definitions carry their own Chinese and English names
    ctx: dict[str, Any] = {"job": job, "area": area, "labels": labels, "charts": CHARTS, "fmtv": _fmt}
    result = job.get("result")
    if result:
        req = job["request"]
        names = {c: v.get("name", c) for c, v in result["difference"]["counties"].items()}
        # One county simulated alone: the region is that county, named as such.
        first = names[req["region"][0]] if len(req["region"]) == 1 else "Simulated region"
        areas = [("region", first)] + [(c, names[c]) for c in req["region"] if len(req["region"]) > 1]
        town_names = {r["code"]: r["name"] for r in population.township_rows()}
        areas += [(t, town_names.get(t, t)) for t in result["difference"]["townships"]]
        ctx["areas"] = areas
        ctx["tables"] = {key: _rows(result, key) for key, _ in areas}
    return ctx


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    sign = "+" if signed and v > 0 else ""
    if abs(v) >= 1000:
        return f"{sign}{v:,.0f}"
    if abs(v) >= 10:
        return f"{sign}{v:,.1f}"
    return f"{sign}{v:.3f}"


def _pick_area(doc: dict[str, Any], key: str) -> dict[str, Any]:
    if key == "region":
        return doc["region"]
    return doc["counties"].get(key) or doc["townships"].get(key) or {}


def _rows(result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    base, new, diff = (
        _pick_area(result["base_results"], key),
        _pick_area(result["new_results"], key),
        _pick_area(result["difference"], key),
    )
    rows = []
    for name, b in base.items():
        if not isinstance(b, dict) or name not in new:
            continue
        d = diff.get(name) or {}
        low, high = d.get("low"), d.get("high")
        significant = low is not None and high is not None and (low > 0 or high < 0)
        rows.append({"id": name, "base": b, "new": new[name], "diff": d, "significant": significant})
    return rows


@router.get("/twin/runs/{job_id}")
def run_status(
    request: Request,
    job_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    _guard(actor)
    job = jobs.get(job_id)
    area = _area(actor, job["request"].get("area"))
    if request.headers.get("hx-request"):
        return render(request, "twin/_job.html", _job_ctx(job, area, request.state.lang))
    return render(request, "twin/run.html", _job_ctx(job, area, request.state.lang))


@router.get("/twin/runs/{job_id}/scenario.yaml")
def download_scenario(job_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    _guard(actor)
    job = jobs.get(job_id)
    _area(actor, job["request"].get("area"))
    return PlainTextResponse(
        jobs.scenario_file(job_id),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="scenario-{job_id[:8]}.yaml"'},
    )
