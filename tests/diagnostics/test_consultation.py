"""Teleconsultation: request, assign experts and a time, the opinion lands in the patient's shared record."""

from __future__ import annotations

from yilian.db import read_session
from yilian.fhir import store


def request(api, region, **extra):  # type: ignore[no-untyped-def]
    body = {
        "patient": region.patients["li"],
        "specialty": "心内科",
        "question": "血压控制不佳，请会诊调整用药",
        **extra,
    }
    return api.post("/api/v1/diagnostics/consultations", json=body)


def test_it_runs_a_consultation_from_request_to_an_opinion_in_the_shared_record(region, as_user, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YILIAN_MEETING_URL_TEMPLATE", "https://meet.example.org/yilian-{id}")
    township, coordinator, expert = as_user("township"), as_user("coordinator"), as_user("expert")
    r = request(township, region, urgency="urgent")
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["state"] == "requested" and c["centre_facility_id"] == str(region.county_hospital)

    assert (
        expert.post(f"/api/v1/diagnostics/consultations/{c['id']}/opinion", json={"diagnosis": "x"}).status_code == 409
    )
    r = coordinator.post(
        f"/api/v1/diagnostics/consultations/{c['id']}/schedule",
        json={"experts": ["expert"], "scheduled_at": "2026-11-25T14:00:00+08:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["meeting_url"] == f"https://meet.example.org/yilian-{c['id']}"
    assert [n["kind"] for n in township.get("/api/v1/diagnostics/notifications").json()] == ["consultation_scheduled"]

    assert [x["id"] for x in expert.get("/api/v1/diagnostics/consultations").json()] == [c["id"]]
    r = expert.post(
        f"/api/v1/diagnostics/consultations/{c['id']}/opinion",
        json={"diagnosis": "原发性高血压3级", "advice": "加用氨氯地平5mg qd", "follow_up": "两周后复诊"},
    )
    assert r.status_code == 200 and r.json()["state"] == "answered"
    seen = township.get(f"/api/v1/diagnostics/consultations/{c['id']}").json()
    assert seen["opinion"]["advice"] == "加用氨氯地平5mg qd" and seen["answered_by"] == "expert"

    with read_session() as session:
        record = store.everything(session, region.patients["li"].removeprefix("Patient/")).resources
    kinds = {(r["resourceType"], r.get("status")) for r in record}
    assert {("ServiceRequest", "completed"), ("Task", "completed"), ("DiagnosticReport", "final")} <= kinds
    request_res = next(r for r in record if r["resourceType"] == "ServiceRequest")
    assert request_res["category"][0]["coding"][0]["code"] == "11429006"


def test_it_needs_two_experts_for_an_mdt_and_real_clinicians_as_experts(region, as_user) -> None:  # type: ignore[no-untyped-def]
    township, coordinator = as_user("township"), as_user("coordinator")
    c = request(township, region, kind="mdt").json()
    path = f"/api/v1/diagnostics/consultations/{c['id']}/schedule"
    when = "2026-11-25T14:00:00+08:00"
    r = coordinator.post(path, json={"experts": ["expert"], "scheduled_at": when})
    assert r.status_code == 422 and r.json()["field"] == "experts"
    r = coordinator.post(path, json={"experts": ["expert", "nobody"], "scheduled_at": when})
    assert r.status_code == 404 and r.json()["field"] == "experts.1"
    r = coordinator.post(path, json={"experts": ["expert", "official"], "scheduled_at": when})
    assert r.status_code == 422 and r.json()["field"] == "experts.1"
    r = coordinator.post(path, json={"experts": ["expert", "expert2"], "scheduled_at": "2026-11-25 14:00"})
    assert r.status_code == 422 and r.json()["field"] == "scheduled_at"
    assert township.post(path, json={"experts": ["expert", "expert2"], "scheduled_at": when}).status_code == 403
    r = coordinator.post(path, json={"experts": ["expert", "expert2"], "scheduled_at": when})
    assert r.status_code == 200 and r.json()["experts"] == ["expert", "expert2"]
    r = as_user("expert2").post(f"/api/v1/diagnostics/consultations/{c['id']}/opinion", json={"diagnosis": "建议上转"})
    assert r.status_code == 200


def test_it_refuses_unknown_patients_and_record_items(region, as_user) -> None:  # type: ignore[no-untyped-def]
    township = as_user("township")
    r = township.post(
        "/api/v1/diagnostics/consultations", json={"patient": "Patient/ghost", "specialty": "x", "question": "y"}
    )
    assert r.status_code == 404 and r.json()["field"] == "patient"
    r = request(township, region, record_items=["Observation/missing"])
    assert r.status_code == 404 and r.json()["field"] == "record_items.0"
    r = request(township, region, kind="tea_party")
    assert r.status_code == 422 and r.json()["field"] == "kind"
    assert township.get("/api/v1/diagnostics/consultations").json() == []
