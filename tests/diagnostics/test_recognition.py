"""Mutual recognition (互认): a valid recognised result from a qualified facility blocks a repeat without a reason."""

from __future__ import annotations

from datetime import date, timedelta

from yilian.db import unit_of_work, utcnow
from yilian.diagnostics import service
from yilian.diagnostics.schemas import OrderIn, QualificationIn, ReportIn

from .conftest import PDF


def result_elsewhere(region, days_ago: int, item_code: str = "LAB-LFT", *, qualified: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The other county's hospital did the test for Wang `days_ago` days ago (in the same city, outside the group)."""
    outsider, admin = region.actor("outsider"), region.actor("official")
    when = utcnow() - timedelta(days=days_ago)
    with unit_of_work() as session:
        if qualified:
            service.qualify(
                session,
                admin,
                QualificationIn(
                    facility="T-H02", item_code=item_code, passed_on=date(2026, 1, 1), valid_until=date(2027, 12, 31)
                ),
            )
        order = service.place_order(
            session,
            outsider,
            OrderIn(patient=region.patients["wang"], modality="lab", item_code=item_code),  # type: ignore[arg-type]
            at=when,
        )
        service.receive_upload(session, outsider, order.id, filename="lft.pdf", data=PDF, at=when)
        report = service.sign_report(session, outsider, order.id, ReportIn(conclusion="肝功能正常"), at=when)
        assert report.recognised is qualified
        return str(order.id)


def lft(region, **extra):  # type: ignore[no-untyped-def]
    return {"patient": region.patients["wang"], "modality": "lab", "item_code": "LAB-LFT", **extra}


def test_it_lists_the_recognised_items_with_scope_validity_and_qualified_facilities(region, as_user) -> None:  # type: ignore[no-untyped-def]
    result_elsewhere(region, 3)
    items = {i["code"]: i for i in as_user("village").get("/api/v1/recognition/catalogue").json()}
    assert len(items) >= 12
    assert items["LAB-HBA1C"]["loinc"] == "4548-4" and items["ECG-12"]["scope"] == "consortium"
    assert items["LAB-LFT"]["validity_days"] == 14 and items["LAB-LFT"]["price_fen"] > 0
    assert items["LAB-CBC"]["validity_days"] == 3  # Shanxi's own window (data/limits.yaml), not the catalogue's 7
    assert [f["name"] for f in items["LAB-LFT"]["qualified_facilities"]] != []
    assert items["CT-HEAD"]["qualified_facilities"] == []


def test_it_shows_the_result_from_10_days_ago_and_blocks_the_order_until_a_reason_is_given(region, as_user) -> None:  # type: ignore[no-untyped-def]
    prior_order = result_elsewhere(region, 10)
    township = as_user("township")
    check = township.post(
        "/api/v1/recognition/check", json={"patient": region.patients["wang"], "item_code": "LAB-LFT"}
    )
    assert check.status_code == 200
    prior = check.json()["prior"]
    assert prior["order_id"] == prior_order and prior["conclusion"] == "肝功能正常"
    assert len(check.json()["reasons"]) == 6

    r = township.post("/api/v1/diagnostics/orders", json=lft(region))
    assert r.status_code == 409 and r.json()["field"] == "repeat_reason"
    assert "肝功能" in r.json()["message"] and "valid until" in r.json()["message"]
    r = township.post("/api/v1/diagnostics/orders", json=lft(region, repeat_reason="because"))
    assert r.status_code == 422 and r.json()["field"] == "repeat_reason"
    r = township.post("/api/v1/diagnostics/orders", json=lft(region, repeat_reason="major_intervention"))
    assert r.status_code == 422 and r.json()["field"] == "patient_informed"
    assert township.get("/api/v1/diagnostics/orders").json() == []  # nothing half-written

    r = township.post(
        "/api/v1/diagnostics/orders",
        json=lft(region, repeat_reason="major_intervention", repeat_note="术前", patient_informed=True),
    )
    assert r.status_code == 201 and r.json()["repeat_reason"] == "major_intervention"

    report = as_user("official").get("/api/v1/recognition/report").json()
    assert report["repeats"] == 1 and report["by_reason"] == {"major_intervention": 1}
    assert report["tests_avoided"] == 0 and report["repeat_rate"] == 1.0
    assert [f["repeated"] for f in report["by_facility"]] == [1]


def test_it_counts_a_reused_result_as_a_test_avoided_and_money_saved(region, as_user) -> None:  # type: ignore[no-untyped-def]
    result_elsewhere(region, 2)
    r = as_user("village").post(
        "/api/v1/recognition/reuse", json={"patient": region.patients["wang"], "item_code": "LAB-LFT"}
    )
    assert r.status_code == 200 and r.json()["performed_by"].endswith("人民医院")
    report = as_user("official").get("/api/v1/recognition/report").json()
    assert report["tests_avoided"] == 1 and report["money_saved_fen"] == 6000 and report["repeat_rate"] == 0.0
    r = as_user("village").post(
        "/api/v1/recognition/reuse", json={"patient": region.patients["li"], "item_code": "LAB-LFT"}
    )
    assert r.status_code == 404 and r.json()["field"] == "item_code"


def test_it_lets_the_order_through_when_the_result_expired_or_its_facility_was_not_qualified(region, as_user) -> None:  # type: ignore[no-untyped-def]
    result_elsewhere(region, 20)  # LFT is valid 14 days
    result_elsewhere(region, 1, "LAB-RFT", qualified=False)
    township = as_user("township")
    assert township.post("/api/v1/diagnostics/orders", json=lft(region)).status_code == 201
    r = township.post("/api/v1/diagnostics/orders", json=lft(region, item_code="LAB-RFT"))
    assert r.status_code == 201
    # ECG results are recognised inside the consortium only: the other county's ECG does not count here.
    outsider = region.actor("outsider")
    with unit_of_work() as session:
        service.qualify(
            session,
            region.actor("official"),
            QualificationIn(
                facility="T-H02", item_code="*ecg", passed_on=date(2026, 1, 1), valid_until=date(2027, 1, 1)
            ),
        )
        o = service.place_order(
            session, outsider, OrderIn(patient=region.patients["wang"], modality="ecg", item_code="ECG-12")
        )  # type: ignore[arg-type]
        service.receive_upload(session, outsider, o.id, filename="e.pdf", data=PDF)
        service.sign_report(session, outsider, o.id, ReportIn(conclusion="正常"))
    r = township.post(
        "/api/v1/diagnostics/orders",
        json={"patient": region.patients["wang"], "modality": "ecg", "item_code": "ECG-12"},
    )
    assert r.status_code == 201


def test_it_refuses_quality_control_passes_from_people_who_may_not_record_them(region, as_user) -> None:  # type: ignore[no-untyped-def]
    body = {"facility": "T-H01", "item_code": "*ecg", "passed_on": "2026-01-01", "valid_until": "2026-12-31"}
    assert as_user("reader").post("/api/v1/recognition/qualifications", json=body).status_code == 403
    assert as_user("official").post("/api/v1/recognition/qualifications", json=body).status_code == 201
    bad = {**body, "item_code": "*xray"}
    r = as_user("official").post("/api/v1/recognition/qualifications", json=bad)
    assert r.status_code == 422 and r.json()["field"] == "item_code"
    r = as_user("official").post("/api/v1/recognition/qualifications", json={**body, "valid_until": "2025-01-01"})
    assert r.status_code == 422 and r.json()["field"] == "valid_until"


def resident_id(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


def test_it_finds_the_earlier_result_under_the_same_persons_record_at_another_hospital(region, as_user) -> None:  # type: ignore[no-untyped-def]
    from yilian.fhir import store
    from yilian.patients import service as patients
    from yilian.security.actor import SYSTEM

    from .conftest import new_patient

    card = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
        "system": "urn:yilian:sid:cn-resident-id",
        "value": resident_id("14102419580302123"),
    }
    with unit_of_work() as session:
        refs = []
        for _ in range(2):  # registered once at the other county's hospital, once at the township
            resource = store.create(session, {**new_patient("赵德明"), "identifier": [card]})
            patients.match_one(session, resource, actor=SYSTEM)
            refs.append(f"Patient/{resource['id']}")
    with unit_of_work() as session:
        assert service.person_refs(session, refs[1]) == sorted(refs)
    region.patients["wang"] = refs[0]
    result_elsewhere(region, 5)
    r = as_user("township").post("/api/v1/diagnostics/orders", json={**lft(region), "patient": refs[1]})
    assert r.status_code == 409 and r.json()["field"] == "repeat_reason"
