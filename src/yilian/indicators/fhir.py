"""Indicators as FHIR: a Measure per definition, a summary MeasureReport per result (R4)."""

from __future__ import annotations

import json
from typing import Any

from yilian.indicators import definitions, rules
from yilian.indicators.engine import Result

BASE = "urn:yilian:indicator"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"


def _fhir_id(indicator_id: str) -> str:
    return indicator_id.replace("_", "-").replace(".", "-")


def measure(ind: definitions.Indicator) -> dict[str, Any]:
    scoring = (
        "ratio"
        if ind.kind in ("ratio", "growth")
        else ("cohort" if ind.kind == "assessment" else "continuous-variable")
    )
    groups: list[dict[str, Any]] = []
    pops = []
    for code, m in (("numerator", ind.numerator), ("denominator", ind.denominator)):
        if m is not None:
            what = "census population" if m.population else f"{m.table} where {m.where or 'all'}"
            criteria = {
                "language": "application/x-yilian-indicator+json",
                "expression": json.dumps(
                    m.model_dump(by_alias=True, exclude_defaults=True), ensure_ascii=False, default=str
                ),
            }
            pops.append(
                {"code": {"coding": [{"system": POPULATION, "code": code}]}, "description": what, "criteria": criteria}
            )
    if pops:
        groups.append({"population": pops})
    return {
        "resourceType": "Measure",
        "id": _fhir_id(ind.id),
        "url": f"{BASE}/{ind.id}",
        "identifier": [{"system": BASE, "value": ind.id}],
        "name": ind.id.replace(".", "_"),
        "title": ind.name.zh,
        "subtitle": ind.name.en,
        "status": "active",
        "description": (ind.description.zh + " / " + ind.description.en) if ind.description else ind.name.en,
        "publisher": ind.source,
        "scoring": {"coding": [{"system": SCORING, "code": scoring}]},
        "improvementNotation": {
            "coding": [{"system": IMPROVEMENT, "code": "increase" if ind.direction == "higher" else "decrease"}]
        },
        "group": groups,
    }


def measure_report(r: Result) -> dict[str, Any]:
    ind = definitions.get_indicator(r.id)
    period = rules.parse_period(r.period)
    pops = []
    if r.numerator is not None:
        pops.append({"code": {"coding": [{"system": POPULATION, "code": "numerator"}]}, "count": int(r.numerator)})
    if r.denominator is not None:
        pops.append({"code": {"coding": [{"system": POPULATION, "code": "denominator"}]}, "count": int(r.denominator)})
    group: dict[str, Any] = {"population": pops}
    if r.value is not None:
        group["measureScore"] = {"value": r.value, "unit": rules.UNITS[r.unit][2]}
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": f"{_fhir_id(r.id)}-{r.scope}-{r.period}".replace("..", "-to-")[:64],
        "status": "complete",
        "type": "summary",
        "measure": f"{BASE}/{ind.id}",
        "date": None,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "group": [group],
        "extension": [
            {"url": f"{BASE}/scope", "valueString": r.scope},
            {"url": f"{BASE}/snapshot", "valueString": r.snapshot},
            {"url": f"{BASE}/status", "valueCode": r.status},
        ],
    }
    if r.scope_kind == "facility":
        report["reporter"] = {"reference": f"Organization/{r.scope}"}
    del report["date"]
    return report


def measure_report_bundle(computed: Any) -> dict[str, Any]:
    entries = [{"resource": measure(i)} for i in computed.set.indicators]
    entries += [{"resource": measure_report(r)} for r in computed.results]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
