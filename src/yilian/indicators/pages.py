"""Dashboards: ranking of counties by an indicator, monthly trend, consortia compared, and the definitions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from yilian.errors import NotFound, YilianError
from yilian.indicators import definitions, rules, service
from yilian.indicators.engine import Result
from yilian.security.actor import Actor
from yilian.security.roles import JURISDICTION_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)
ROLES = frozenset({str(r) for r in JURISDICTION_ROLES | {Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN}})
NAV = [(50, NavItem("/indicators", "Indicators", ROLES))]
VIEWS = ("ranking", "trend", "consortia", "definitions")


def _fmt(v: float | None) -> str:
    return "—" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}".rstrip("0").rstrip("."))


def _ctx(**values: Any) -> dict[str, Any]:
    return {
        "fmt": _fmt,
        "units": rules.UNITS,
        "aspects": definitions.ASPECTS,
        "sets": list(definitions.load_all().values()),
        "views": VIEWS,
        **values,
    }


def home_panel(session: Session, actor: Actor) -> Panel | None:
    if str(actor.role) not in ROLES:
        return None
    return Panel("indicators/panel.html", _ctx(current_year=service.today().year))


@router.get("/indicators")
def dashboard(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    set: Annotated[str, Query(max_length=40)] = "county-community",
    period: Annotated[str | None, Query(max_length=24)] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
    indicator: Annotated[str | None, Query(max_length=64)] = None,
    view: Annotated[str, Query(pattern="^(ranking|trend|consortia|definitions)$")] = "ranking",
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    iset = definitions.get_set(set, field="set")
    period = period or str(service.today().year)
    rules.parse_period(period)
    scope = service.check_scope(actor, scope)
    chosen = definitions.get_indicator(indicator) if indicator else next(i for i in iset.indicators if not i.assessment)
    if chosen.set_id != iset.id:
        raise NotFound(f"{chosen.id} is not in the set {iset.id}", field="indicator")
    results: list[Result] = []
    series: list[Result] = []
    snapshot_id = None
    message = None
    if view != "definitions":
        try:
            engine = service.open_engine(snapshot)
            snapshot_id = engine.snap.id
            if view == "consortia":
                for c in service.consortia_in(engine, scope):
                    results += service.compute(engine, iset.id, period, c, {chosen.id}).results
            else:
                results = service.compute(engine, iset.id, period, scope).results
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
