"""JSON API: /api/v1/indicators — definitions, computed results, monthly trends, drill-down, assessments, FHIR."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from yilian.db import unit_of_work
from yilian.errors import Forbidden, NotFound
from yilian.indicators import definitions, fhir, service
from yilian.indicators.engine import Engine
from yilian.indicators.report import note_text, status_text
from yilian.security.actor import Actor
from yilian.web.auth import current_actor

router = APIRouter(prefix="/api/v1/indicators", tags=["indicators"])


def _allowed_scope(actor: Actor, scope: str | None, engine: Engine) -> str | None:
    """The scopes the dashboards show, and no more: a division or consortium by the actor's jurisdiction, and one
    facility to those its page is for (its staff, its commission, its consortium) — the facility page links its
    figures here, and the consortium page compares its members facility by facility."""
    try:
        return service.check_scope(actor, scope, engine if scope and not scope.isdigit() else None)
    except Forbidden:
        if not scope or scope.isdigit():
            raise
        try:
            service.check_facility(actor, engine, scope)
        except NotFound:
            raise Forbidden(f"scope {scope} is outside what you may see", field="scope") from None
        return scope


@router.get("/sets")
def list_sets(actor: Annotated[Actor, Depends(current_actor)]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "name": s.name.model_dump(),
            "source": s.source.model_dump(),
            "indicators": [i.model_dump(by_alias=True, exclude={"set_id"}) | {"kind": i.kind} for i in s.indicators],
        }
        for s in definitions.load_all().values()
    ]


@router.get("/measures/{indicator_id}")
def get_measure(indicator_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> dict[str, Any]:
    return fhir.measure(definitions.get_indicator(indicator_id))


@router.get("/compute")
def compute(
    actor: Annotated[Actor, Depends(current_actor)],
    set: Annotated[str, Query(max_length=40)],
    period: Annotated[str, Query(max_length=24)],
    scope: Annotated[str | None, Query(max_length=40)] = None,
    format: Annotated[str, Query(pattern="^(json|csv|xlsx|measure-report)$")] = "json",
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
    by: Annotated[str, Query(pattern="^(county|city)$")] = "county",
) -> Response:
    """`by=city`: a province city by city, as its dashboard shows it (by default every county under the scope)."""
    engine = service.open_engine(snapshot)
    scope = _allowed_scope(actor, scope, engine)
    computed = service.compute(engine, set, period, scope, by_city=by == "city")
    if format == "csv":
        return Response(service.to_csv(computed.results), media_type="text/csv; charset=utf-8")
    if format == "xlsx":
        # the workbook is forwarded as it is: its status and notes in the reader's language, like the pages
        notes = [
            replace(r, note=note_text(r.note, actor.lang) or None, status=status_text(r.status, actor.lang))
            for r in computed.results
        ]
        return Response(
            service.to_xlsx(replace(computed, results=notes), actor.lang),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{set}-{period}.xlsx"'},
        )
    if format == "measure-report":
        return JSONResponse(fhir.measure_report_bundle(computed))
    return JSONResponse([r.as_dict() for r in computed.results])


@router.get("/functions")
def functions(
    actor: Annotated[Actor, Depends(current_actor)],
    period: Annotated[str, Query(max_length=24)],
    scope: Annotated[str | None, Query(max_length=40)] = None,
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """The function-guide coverage matrix: per county, which of the 36 functions its facilities' activity shows."""
    scope = service.check_scope(actor, scope)
    return service.function_coverage(service.open_engine(snapshot), period, scope)


@router.get("/trend/{indicator_id}")
def trend(
    indicator_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    period: Annotated[str, Query(max_length=24)],
    scope: Annotated[str | None, Query(max_length=40)] = None,
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    engine = service.open_engine(snapshot)
    scope = _allowed_scope(actor, scope, engine)
    return [r.as_dict() for r in service.trend(engine, indicator_id, period, scope)]


@router.get("/drill/{indicator_id}")
def drill(
    indicator_id: str,
    actor: Annotated[Actor, Depends(current_actor)],
    period: Annotated[str, Query(max_length=24)],
    scope: Annotated[str, Query(max_length=40)],
    part: Annotated[str, Query(pattern="^(numerator|denominator)$")] = "numerator",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    snapshot: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    engine = service.open_engine(snapshot)
    checked = _allowed_scope(actor, scope, engine)
    assert checked is not None
    rows, total = service.drill(engine, indicator_id, period, checked, part, limit)
    with unit_of_work() as session:  # rows name patients: every patient shown leaves an audit row
        service.audit_drill(session, actor, indicator_id, rows)
    return {
        "indicator": indicator_id,
        "scope": checked,
        "period": period,
        "part": part,
        "total": total,
        "rows": rows,
        "snapshot": engine.snap.id,
    }


class AssessmentIn(BaseModel):
    indicator: str = Field(max_length=64)
    scope: str = Field(max_length=64)
    year: int
    value: bool
    evidence: str = Field("", max_length=2000)


@router.post("/assessments", status_code=201)
def post_assessment(body: AssessmentIn, actor: Annotated[Actor, Depends(current_actor)]) -> dict[str, Any]:
    with unit_of_work() as session:
        row = service.record_assessment(
            session, actor, body.indicator, body.scope, body.year, body.value, body.evidence
        )
        return {
            "id": str(row.id),
            "indicator": row.indicator_id,
            "scope": row.scope,
            "year": row.year,
            "value": row.value,
        }
