"""A village clinic sends an ECG to the county centre; the centre reads it; the report comes back and prints locally."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from yilian.db import read_session, unit_of_work, utcnow
from yilian.diagnostics import service
from yilian.diagnostics.models import DiagnosticOrder, DiagnosticStudy
from yilian.diagnostics.schemas import OrderIn, ReportIn
from yilian.fhir import store

from .conftest import PDF, PNG


def order_ecg(api, patient: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    body = {"patient": patient, "modality": "ecg", "item_code": "ECG-12", "clinical_question": "胸闷三天", **extra}
    r = api.post("/api/v1/diagnostics/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def upload(api, order_id: str, data: bytes = PDF, name: str = "ecg.pdf", **measurements: float):  # type: ignore[no-untyped-def]
    files = {"file": (name, data, "application/pdf")}
    form = {"measurements": json.dumps(measurements)} if measurements else {}
    return api.post(f"/api/v1/diagnostics/orders/{order_id}/upload", files=files, data=form)


def test_it_sends_a_village_ecg_to_the_county_centre_and_brings_the_report_back_to_print(region, as_user, http) -> None:  # type: ignore[no-untyped-def]
    village, reader = as_user("village"), as_user("reader")
    order = order_ecg(village, region.patients["wang"])
    assert order["centre_facility_id"] == str(region.county_hospital)
    assert order["state"] == "ordered"

    r = upload(village, order["id"], heart_rate=72, qtc=430)
    assert r.status_code == 201, r.text

    worklist = reader.get("/api/v1/diagnostics/worklist").json()
    assert [o["id"] for o in worklist] == [order["id"]]
    assert worklist[0]["state"] == "received" and worklist[0]["patient_name"] == "王建国"
    assert worklist[0]["actions"] == ["receive", "sign", "claim", "cancel"]

    r = reader.post(
        f"/api/v1/diagnostics/orders/{order['id']}/report",
        json={"findings": "窦性心律，心率72次/分", "conclusion": "正常心电图"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "reported" and r.json()["report"]["signed_by"] == "reader"
    assert reader.get("/api/v1/diagnostics/worklist").json() == []

    notes = village.get("/api/v1/diagnostics/notifications?unread=true").json()
    assert [n["kind"] for n in notes] == ["report_ready"] and "正常心电图" in notes[0]["message"]

    # The village doctor prints the report at the clinic: the page carries the patient, centre and conclusion.
    http.cookies.set("yilian_session", village.headers["Authorization"].split()[1])
    page = http.get(f"/diagnostics/orders/{order['id']}/print")
    assert page.status_code == 200
    for text in ("王建国", "正常心电图", "人民医院", "72"):
        assert text in page.text
    assert village.get("/api/v1/diagnostics/notifications?unread=true").json() == []

    # The FHIR face is in the shared record: order, task, the measured values and the final report.
    with read_session() as session:
        report = store.search(session, "DiagnosticReport", [("based-on", f"ServiceRequest/{order['id']}")]).resources
        assert [d["status"] for d in report] == ["final"] and report[0]["conclusion"] == "正常心电图"
        assert len(report[0]["result"]) == 2
        task = store.search(session, "Task", [("focus", f"ServiceRequest/{order['id']}")]).resources
        assert task[0]["status"] == "completed"
        assert store.read(session, "ServiceRequest", order["id"])["status"] == "completed"


def test_it_puts_arrived_stat_studies_first_on_the_worklist(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, reader = as_user("village"), as_user("reader")
    routine = order_ecg(village, region.patients["wang"])
    stat = order_ecg(village, region.patients["li"], priority="stat")
    waiting = order_ecg(village, region.patients["li"], priority="stat", item_code=None, item_name="动态心电图")
    upload(village, routine["id"])
    upload(village, stat["id"])
    ids = [o["id"] for o in reader.get("/api/v1/diagnostics/worklist").json()]
    assert ids == [stat["id"], routine["id"], waiting["id"]]


def test_it_refuses_a_centre_that_does_not_serve_the_ordering_site(region, as_user) -> None:  # type: ignore[no-untyped-def]
    r = as_user("village").post(
        "/api/v1/diagnostics/orders",
        json={"patient": region.patients["wang"], "modality": "ecg", "item_code": "ECG-12", "centre": "T-H02"},
    )
    assert r.status_code == 422 and r.json()["field"] == "centre"
    r = as_user("village").post(
        "/api/v1/diagnostics/orders",
        json={"patient": region.patients["wang"], "modality": "ecg", "item_code": "CT-HEAD"},
    )
    assert r.status_code == 422 and r.json()["field"] == "item_code"


def test_it_refuses_bad_uploads_with_clear_errors_and_leaves_nothing_behind(region, as_user, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    village = as_user("village")
    order = order_ecg(village, region.patients["wang"])
    r = upload(village, order["id"], data=b"MZ\x90\x00 this is a program", name="ecg.exe")
    assert r.status_code == 422 and r.json()["field"] == "file" and "PDF" in r.json()["message"]
    r = upload(village, order["id"], data=b"", name="ecg.pdf")
    assert r.status_code == 422 and r.json()["field"] == "file"
    monkeypatch.setenv("YILIAN_DIAGNOSTICS_MAX_UPLOAD_MB", "1")
    r = upload(village, order["id"], data=PDF + b"0" * 1_100_000)
    assert r.status_code == 422 and r.json()["field"] == "file" and "1 MB" in r.json()["message"]
    r = upload(village, order["id"], qtc="long")
    assert r.status_code == 422 and r.json()["field"] == "measurements.qtc"
    r = upload(village, "6b0f6c53-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["field"] == "order_id"
    r = village.post(
        "/api/v1/diagnostics/orders", json={"patient": "Patient/nobody", "modality": "ecg", "item_code": "ECG-12"}
    )
    assert r.status_code == 404 and r.json()["field"] == "patient"
    # An imaging order does not take a PNG-looking ECG PDF, and an ECG accepts a PNG print-out.
    assert upload(village, order["id"], data=PNG, name="ecg.png").status_code == 201
    with read_session() as session:
        assert session.scalar(select(func.count()).select_from(DiagnosticStudy)) == 1
        assert session.scalar(select(func.count()).select_from(DiagnosticOrder)) == 1


def test_it_raises_a_critical_value_alert_that_the_site_must_acknowledge(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, township, reader = as_user("village"), as_user("township"), as_user("reader")
    order = order_ecg(village, region.patients["wang"], priority="urgent")
    upload(village, order["id"], heart_rate=38, qtc=530)
    r = reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "长QT，窦性心动过缓"})
    assert r.status_code == 201 and r.json()["report"]["critical"] is True
    alerts = village.get("/api/v1/diagnostics/alerts").json()
    assert len(alerts) == 1 and "QTc interval 530 ms > 500" in alerts[0]["message"]
    assert township.get("/api/v1/diagnostics/alerts").json() == []  # another site does not see it
    r = township.post(f"/api/v1/diagnostics/alerts/{alerts[0]['id']}/acknowledge")
    assert r.status_code == 403
    r = village.post(f"/api/v1/diagnostics/alerts/{alerts[0]['id']}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "village"
    assert village.get("/api/v1/diagnostics/alerts").json() == []
    r = village.post(f"/api/v1/diagnostics/alerts/{alerts[0]['id']}/acknowledge")
    assert r.status_code == 409


def test_it_lets_only_the_reading_centre_sign_and_only_once(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, reader, outsider = as_user("village"), as_user("reader"), as_user("outsider")
    order = order_ecg(village, region.patients["wang"])
    r = reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常"})
    assert r.status_code == 409 and r.json()["field"] == "state"  # nothing to read yet
    upload(village, order["id"])
    for who in (village, outsider):
        assert (
            who.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常"}).status_code == 403
        )
    assert reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": ""}).status_code == 422
    assert (
        reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常"}).status_code == 201
    )
    assert (
        reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常"}).status_code == 409
    )


def test_it_shows_overdue_studies_turnaround_per_centre_and_workload_per_reader(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, reader2 = region.actor("village"), region.actor("reader2")
    reader = region.actor("reader")
    now = utcnow()
    with unit_of_work() as session:
        for minutes_ago, priority in ((300, "routine"), (50, "urgent"), (20, "stat")):
            t0 = now - timedelta(minutes=minutes_ago)
            o = service.place_order(
                session,
                village,
                OrderIn(
                    patient=region.patients["wang"],
                    modality="ecg",  # type: ignore[arg-type]
                    item_name="心电图",
                    priority=priority,
                ),
                at=t0,
            )  # type: ignore[arg-type]
            service.receive_upload(session, village, o.id, filename="e.pdf", data=PDF, at=t0 + timedelta(minutes=5))
        done = service.place_order(
            session,
            village,
            OrderIn(
                patient=region.patients["li"],
                modality="ecg",  # type: ignore[arg-type]
                item_name="心电图",
            ),
            at=now - timedelta(hours=3),
        )
        service.receive_upload(session, village, done.id, filename="e.pdf", data=PDF, at=now - timedelta(hours=2))
        service.sign_report(session, reader2, done.id, ReportIn(conclusion="正常"), at=now - timedelta(hours=1))
    late = as_user("reader").get("/api/v1/diagnostics/overdue").json()
    assert [o["priority"] for o in late] == ["routine", "urgent", "stat"]  # 2 h, 30 min, 10 min targets all passed
    assert all(o["overdue"] for o in late)
    rows = as_user("official").get("/api/v1/diagnostics/turnaround?days=7").json()
    assert len(rows) == 1 and rows[0]["modality"] == "ecg"
    assert rows[0]["reports"] == 1 and rows[0]["open"] == 3 and rows[0]["overdue"] == 3
    assert rows[0]["to_read"]["median_minutes"] == 60.0 and rows[0]["total"]["median_minutes"] == 120.0
    load = as_user("reader").get("/api/v1/diagnostics/workload").json()
    assert [(r["reader"], r["reports"], r["median_read_minutes"]) for r in load] == [("reader2", 1, 60.0)]
    assert reader.username == "reader"


def test_it_takes_lab_results_as_values_and_alerts_on_a_critical_potassium(region, as_user) -> None:  # type: ignore[no-untyped-def]
    township, reader = as_user("township"), as_user("reader")
    r = township.post(
        "/api/v1/diagnostics/orders",
        json={"patient": region.patients["li"], "modality": "lab", "item_code": "LAB-ELEC", "priority": "stat"},
    )
    order_id = r.json()["id"]
    r = township.post(f"/api/v1/diagnostics/orders/{order_id}/study", json={})
    assert r.status_code == 422 and r.json()["field"] == "study_uid"
    r = reader.post(
        f"/api/v1/diagnostics/orders/{order_id}/study", json={"measurements": {"potassium": 6.8, "sodium": 138}}
    )
    assert r.status_code == 201 and r.json()["source"] == "values"
    r = reader.post(f"/api/v1/diagnostics/orders/{order_id}/report", json={"conclusion": "高钾血症"})
    assert r.json()["report"]["critical"] is True
    # The centre is in Linfen, whose limit (data/limits.yaml) is 6.0 rather than the default 6.2.
    assert "Potassium 6.8 mmol/L > 6" in township.get("/api/v1/diagnostics/alerts").json()[0]["message"]
    with read_session() as session:
        obs = store.search(session, "Observation", [("based-on", f"ServiceRequest/{order_id}")]).resources
    assert sorted(o["code"]["coding"][0]["code"] for o in obs) == ["2823-3", "2951-2"]


def test_it_takes_an_order_sent_as_a_fhir_service_request(region, as_user) -> None:  # type: ignore[no-untyped-def]
    sr = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}],
        "priority": "urgent",
        "code": {"coding": [{"system": "urn:yilian:recognition-item", "code": "CT-HEAD"}]},
        "subject": {"reference": region.patients["wang"]},
        "performer": [{"reference": f"Organization/{region.county_hospital}"}],
        "reasonCode": [{"text": "头痛伴呕吐"}],
    }
    township = as_user("township")
    r = township.post("/api/v1/diagnostics/orders/$from-service-request", json=sr)
    assert r.status_code == 201, r.text
    assert (r.json()["modality"], r.json()["item_name"], r.json()["priority"]) == ("imaging", "头颅CT平扫", "urgent")
    r = township.post("/api/v1/diagnostics/orders/$from-service-request", json={**sr, "category": []})
    assert r.status_code == 422 and r.json()["field"] == "ServiceRequest.category"
    r = township.post("/api/v1/diagnostics/orders/$from-service-request", json={**sr, "priority": "asap"})
    assert r.status_code == 422 and r.json()["field"] == "ServiceRequest.priority"
    r = township.post(
        "/api/v1/diagnostics/orders/$from-service-request", json={**sr, "subject": {"reference": "Patient/ghost"}}
    )
    assert r.status_code == 404 and r.json()["field"] == "ServiceRequest.subject"


def test_it_cancels_an_order_with_a_reason_and_then_takes_no_more_files(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, outsider = as_user("village"), as_user("outsider")
    order = order_ecg(village, region.patients["wang"])
    assert outsider.post(f"/api/v1/diagnostics/orders/{order['id']}/cancel", json={"reason": "x"}).status_code == 403
    r = village.post(f"/api/v1/diagnostics/orders/{order['id']}/cancel", json={"reason": ""})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = village.post(f"/api/v1/diagnostics/orders/{order['id']}/cancel", json={"reason": "患者已转上级医院"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled" and r.json()["actions"] == []
    assert upload(village, order["id"]).status_code == 409
    with read_session() as session:
        assert store.read(session, "ServiceRequest", order["id"])["status"] == "revoked"
