"""Dashboards: ranking of counties by an indicator, monthly trend, consortia compared, and the definitions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from yilian.errors import NotFound, YilianError
from yilian.indicators import definitions, rules, service
from yilian.indicators.engine import Result
from yilian.indicators.report import note_text, render_pdf
from yilian.security.actor import Actor
from yilian.security.roles import JURISDICTION_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)
ROLES = frozenset({str(r) for r in JURISDICTION_ROLES | {Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN}})
NAV = [(50, NavItem("/indicators", "Indicators", ROLES))]
VIEWS = ("ranking", "trend", "consortia", "facilities", "definitions")


def _fmt(v: float | None) -> str:
    return "—" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}".rstrip("0").rstrip("."))


def _ctx(**values: Any) -> dict[str, Any]:
    return {
        "fmt": _fmt,
        "units": rules.UNITS,
        "aspects": definitions.ASPECTS,
        "sets": list(definitions.load_all().values()),
        "views": VIEWS,
        "next_level": next_level,
        "note_text": note_text,
        **values,
    }


def home_panel(session: Session, actor: Actor) -> Panel | None:
    """The sets for those who run the network; for a facility's own staff, the way to their facility's figures
    (they have no indicators menu, and the facility page is theirs to open)."""
    if str(actor.role) not in ROLES and actor.facility_id is None:
        return None
    return Panel(
        "indicators/panel.html",
        _ctx(current_year=service.today().year, full=str(actor.role) in ROLES, facility_id=actor.facility_id),
    )


@router.get("/indicators")
def dashboard(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    set: Annotated[str, Query(max_length=40)] = "county-community",
    period: Annotated[str | None, Query(max_length=24)] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
    indicator: Annotated[str | None, Query(max_length=64)] = None,
    view: Annotated[str, Query(pattern="^(ranking|trend|consortia|facilities|definitions)$")] = "ranking",
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    iset = definitions.get_set(set, field="set")
    period = period or str(service.today().year)
    rules.parse_period(period)
    try:  # an official may open a consortium of their jurisdiction: the snapshot says where it is
        scope_engine = service.open_engine(snapshot) if scope and not scope.isdigit() else None
    except NotFound:
        scope_engine = None
    scope = service.check_scope(actor, scope, scope_engine)
    chosen = definitions.get_indicator(indicator) if indicator else next(i for i in iset.indicators if not i.assessment)
    if chosen.set_id != iset.id:
        raise NotFound(f"{chosen.id} is not in the set {iset.id}", field="indicator")
    results: list[Result] = []
    series: list[Result] = []
    snapshot_id = None
    message = None
    places: dict[str, dict[str, Any]] = {}
    if view != "definitions":
        try:
            engine = service.open_engine(snapshot)
            snapshot_id = engine.snap.id
            places = service.places(engine)
            if (
                scope and not scope.isdigit()
            ):  # a consortium's members: the trail ends at the consortium, under its county
                for c in engine.con.to_pyarrow(engine.base("consortium")).to_pylist():
                    if str(c["id"]) == scope:
                        places[scope] = {"name": c["name"], "kind": "consortium", "parent": c["division_code"]}
            if view == "consortia":
                for c in service.consortia_in(engine, scope):
                    results += service.compute(engine, iset.id, period, c, {chosen.id}).results
            elif view == "facilities":
                results = service.compute_facilities(engine, iset.id, period, scope or "").results
            else:
                # a province is shown city by city; a city county by county (drill-down province → facility)
                by_city = bool(scope) and len(scope or "") == 2
                results = service.compute(engine, iset.id, period, scope, by_city=by_city).results
            if view == "trend":
                series = service.trend(engine, chosen.id, period, scope)
        except NotFound as exc:
            message = exc.message
        except YilianError as exc:
            message = exc.message
    ranking = sorted(
        (r for r in results if r.id == chosen.id),
        key=lambda r: (r.value is None, -(r.value or 0) if chosen.direction == "higher" else (r.value or 0)),
    )
    return render(
        request,
        "indicators/dashboard.html",
        _ctx(
            iset=iset,
            period=period,
            scope=scope or "",
            chosen=chosen,
            view=view,
            results=results,
            ranking=ranking,
            series=series,
            snapshot_id=snapshot_id,
            message=message,
            trail=service.trail(places, scope),
            points=_points(ranking, places),
            point_links={r.scope: next_level(r, iset.id, period, chosen.id) for r in ranking},
            report_month=report_month(period),
            by_city=bool(scope) and len(scope or "") == 2,
        ),
    )


def report_month(period: str) -> str:
    """The month the "monthly report" link opens: the last month of the period that has begun (a year's report is its
    latest month, not January)."""
    p = rules.parse_period(period)
    last = min(date.fromordinal(p.end.toordinal() - 1), service.today())
    last = max(last, p.start)
    return f"{last.year:04d}-{last.month:02d}"


def _points(ranking: list[Result], places: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The map scatter: each ranked scope at its registry coordinates, coloured by its value (null: no data)."""
    out = []
    for r in ranking:
        p = places.get(r.scope) or {}
        if p.get("lon") is None or p.get("lat") is None:
            continue
        out.append({"name": r.scope_name, "key": r.scope, "value": [p["lon"], p["lat"], r.value]})
    return out


def next_level(r: Result, iset_id: str, period: str, indicator: str) -> str | None:
    """Where clicking a ranked scope leads: city → its counties, county or consortium → its facilities, facility → its
    page."""
    base = f"/indicators?set={iset_id}&period={period}&indicator={indicator}"
    if r.scope_kind == "facility":
        return f"/indicators/facility/{r.scope}?set={iset_id}&period={period}"
    if r.scope_kind == "division" and len(r.scope) in (2, 4):
        return f"{base}&scope={r.scope}"
    if (r.scope_kind == "division" and len(r.scope) == 6) or r.scope_kind == "consortium":
        return f"{base}&scope={r.scope}&view=facilities"  # a county's facilities, a consortium's members compared
    return None


@router.get("/indicators/facility/{facility_id}")
def facility_page(
    request: Request,
    facility_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    set: Annotated[str, Query(max_length=40)] = "county-community",
    period: Annotated[str | None, Query(max_length=24)] = None,
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """One facility's own figures against their targets, every indicator with its definition and rows."""
    iset = definitions.get_set(set, field="set")
    period = period or str(service.today().year)
    rules.parse_period(period)
    engine = service.open_engine(snapshot)
    service.check_facility(actor, engine, facility_id)
    places = service.places(engine)
    results = service.compute(engine, iset.id, period, facility_id).results
    reached = [
        {"name": r.name, "name_en": r.name_en, "pct": round(r.value / r.target * 100, 1)}
        for r in results
        if r.value is not None and r.target
    ]
    return render(
        request,
        "indicators/facility.html",
        _ctx(
            iset=iset,
            period=period,
            facility=places[facility_id],
            facility_id=facility_id,
            results=results,
            reached=reached,
            snapshot_id=engine.snap.id,
            trail=service.trail(places, facility_id),
            by_id={i.id: i for i in iset.indicators},
        ),
    )


@router.get("/indicators/functions")
def functions_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    period: Annotated[str | None, Query(max_length=24)] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Which of the 36 functions of the 2025 guide each county uses, from its activity (not from a checkbox)."""
    period = period or str(service.today().year)
    rules.parse_period(period)
    scope = service.check_scope(actor, scope)
    matrix: dict[str, Any] | None = None
    message = None
    try:
        matrix = service.function_coverage(service.open_engine(snapshot), period, scope)
    except YilianError as exc:
        message = exc.message
    return render(
        request,
        "indicators/functions.html",
        _ctx(period=period, scope=scope or "", matrix=matrix, message=message),
    )


@router.get("/indicators/report")
def monthly_report(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    set: Annotated[str, Query(max_length=40)] = "county-community",
    period: Annotated[str | None, Query(max_length=24)] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
    format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html",
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The monthly report of a set: a print view (A4 landscape, one county per page) or the same as a PDF."""
    iset = definitions.get_set(set, field="set")
    today = service.today()
    period = period or f"{today.year:04d}-{today.month:02d}"
    rules.parse_period(period)
    scope = service.check_scope(actor, scope)
    computed = service.compute(service.open_engine(snapshot), iset.id, period, scope)
    if format == "pdf":
        return Response(
            render_pdf(computed, actor.lang),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{iset.id}-{period}.pdf"'},
        )
    by_scope: dict[str, list[Result]] = {}
    for r in computed.results:
        by_scope.setdefault(r.scope_name, []).append(r)
    return render(
        request,
        "indicators/report.html",
        _ctx(iset=iset, period=period, scope=scope or "", by_scope=by_scope, snapshot_id=computed.snapshot.id),
    )
