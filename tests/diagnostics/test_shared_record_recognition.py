"""Recognition reads the shared record: results that hospital systems sent through /fhir count like reports signed
here, when they are final, carry the catalogue's code and come from a facility that passed quality control."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from yilian.db import unit_of_work, utcnow
from yilian.diagnostics import service
from yilian.diagnostics.schemas import QualificationIn


def qualify(region, item_code: str = "LAB-HBA1C") -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        service.qualify(
            session,
            region.actor("official"),
            QualificationIn(
                facility="T-H02", item_code=item_code, passed_on=date(2026, 1, 1), valid_until=date(2027, 12, 31)
            ),
        )


def hba1c(region, days_ago: int, performer: dict[str, Any], status: str = "final") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    when = (utcnow() - timedelta(days=days_ago)).isoformat(timespec="seconds")
    return {
        "resourceType": "Observation",
        "status": status,
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "subject": {"reference": region.patients["wang"]},
        "effectiveDateTime": when,
        "issued": when,
        "performer": [performer],
        "valueQuantity": {"value": 7.9, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def order(region, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"patient": region.patients["wang"], "modality": "lab", "item_code": "LAB-HBA1C", **extra}


def post_fhir(as_user, resource: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    """A hospital system of the other county sends its result to the shared record."""
    api = as_user("outsider")
    r = api.http.post(
        f"/fhir/{resource['resourceType']}",
        json=resource,
        headers={**api.headers, "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 201, r.text
    return f"{resource['resourceType']}/{r.json()['id']}"


def test_it_blocks_an_order_when_a_result_imported_through_fhir_10_days_ago_is_valid(region, as_user) -> None:  # type: ignore[no-untyped-def]
    qualify(region)
    imported = post_fhir(as_user, hba1c(region, 10, {"reference": f"Organization/{region.other_county}"}))
    township = as_user("township")

    check = township.post(
        "/api/v1/recognition/check", json={"patient": region.patients["wang"], "item_code": "LAB-HBA1C"}
    )
    prior = check.json()["prior"]
    assert prior["ref"] == imported and prior["order_id"] is None and prior["conclusion"] == "7.9 %"
    assert prior["performed_by"].endswith("人民医院")

    r = township.post("/api/v1/diagnostics/orders", json=order(region))
    assert r.status_code == 409 and r.json()["field"] == "repeat_reason"
    assert township.get("/api/v1/diagnostics/orders").json() == []
    r = township.post(
        "/api/v1/diagnostics/orders",
        json=order(region, repeat_reason="disease_changed", repeat_note="血糖波动", patient_informed=True),
    )
    assert r.status_code == 201, r.text

    report = as_user("official").get("/api/v1/recognition/report").json()
    assert report["repeats"] == 1 and report["by_reason"] == {"disease_changed": 1}
    repeat = report["recent_repeats"][0]
    assert repeat["item_code"] == "LAB-HBA1C" and repeat["prior_ref"] == imported and repeat["patient_informed"]


def test_it_knows_the_facility_by_its_registry_code_and_reuses_the_imported_result(region, as_user) -> None:  # type: ignore[no-untyped-def]
    qualify(region)
    post_fhir(as_user, hba1c(region, 3, {"identifier": {"system": "urn:yilian:facility-code", "value": "T-H02"}}))
    r = as_user("village").post(
        "/api/v1/recognition/reuse", json={"patient": region.patients["wang"], "item_code": "LAB-HBA1C"}
    )
    assert r.status_code == 200 and r.json()["conclusion"] == "7.9 %"
    report = as_user("official").get("/api/v1/recognition/report").json()
    assert report["tests_avoided"] == 1 and report["money_saved_fen"] == 7000


def test_it_ignores_preliminary_unknown_unqualified_or_expired_results(region, as_user) -> None:  # type: ignore[no-untyped-def]
    qualify(region, "LAB-GLU")  # quality control passed for another item only
    post_fhir(as_user, hba1c(region, 2, {"reference": f"Organization/{region.other_county}"}))
    post_fhir(as_user, hba1c(region, 1, {"display": "某私立诊所"}))  # no facility we know: QC cannot be checked
    township = as_user("township")
    assert township.post("/api/v1/diagnostics/orders", json=order(region)).status_code == 201

    qualify(region)
    li = {"patient": region.patients["li"], "modality": "lab", "item_code": "LAB-HBA1C"}
    for days_ago, status in ((40, "final"), (1, "preliminary"), (1, "cancelled")):  # HbA1c is valid 30 days
        res = hba1c(region, days_ago, {"reference": f"Organization/{region.other_county}"}, status=status)
        res["subject"] = {"reference": region.patients["li"]}
        post_fhir(as_user, res)
    assert township.post("/api/v1/diagnostics/orders", json=li).status_code == 201
    res = hba1c(region, 1, {"reference": f"Organization/{region.other_county}"}, status="amended")
    res["subject"] = {"reference": region.patients["li"]}
    post_fhir(as_user, res)
    assert township.post("/api/v1/diagnostics/orders", json=li).status_code == 409
