"""The referral loop through the real HTTP API on a real database: up, treated, back down, followed up, closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from yilian.db import read_session, unit_of_work
from yilian.events.models import OutboxEvent
from yilian.fhir import store
from yilian.referrals import service
from yilian.security.models import AuditEvent

from .conftest import Net, make_patient


def send_hypertensive(net: Net, user: str = "village", **extra: object) -> dict:  # type: ignore[type-arg]
    patient = make_patient()
    body = {
        "patient": patient,
        "diagnosis_codes": ["I10"],
        "systolic": 186,
        "diastolic": 114,
        "reason": "首诊血压 186/114 mmHg",
        "consent": True,
        **extra,
    }
    with net.client(user) as c:
        res = c.post("/api/v1/referrals", json=body)
    assert res.status_code == 201, res.text
    return res.json()


def step(net: Net, user: str, rid: str, action: str, body: dict | None = None, status: int = 200) -> dict:  # type: ignore[type-arg]
    with net.client(user) as c:
        res = c.post(f"/api/v1/referrals/{rid}/{action}", json=body or {})
    assert res.status_code == status, res.text
    return res.json()


def test_it_walks_a_hypertensive_patient_up_to_the_county_and_back_down_to_the_township(net: Net) -> None:
    r = send_hypertensive(net)
    rid = r["id"]
    assert r["state"] == "submitted"
    assert r["urgency"] == "urgent"  # 186/114 meets "first reading ≥ 180/110": urgent
    assert any(c["id"] == "htn-up-severe" and "8480-6 = 186" in " ".join(c["evidence"]) for c in r["criteria"])
    best = r["routing"][0]
    assert best["name"] == "襄汾县人民医院"
    assert best["factors"]["consortium"] > 0 and "next level up that offers the service" in best["reasons"]

    step(net, "coordinator", rid, "triage")
    offered = step(net, "coordinator", rid, "offer", {})
    assert offered["receiver_facility_id"] == str(net.facilities["county"])
    assert offered["insurance"]["after"]["out_of_pocket"] < offered["insurance"]["before"]["out_of_pocket"]

    with net.client("county") as c:
        assert rid in [x["id"] for x in c.get("/api/v1/referrals", params={"queue": "offered"}).json()["items"]]
    step(net, "county", rid, "accept")
    with net.client("county") as c:
        slots = c.post(
            "/api/v1/referrals/slots",
            json={"department": "心血管内科", "start": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "count": 4},
        ).json()
    booked = step(net, "county", rid, "book", {"slot_id": slots[0]["id"]})
    assert booked["appointment"]["slot_id"] == slots[0]["id"]
    step(net, "county", rid, "arrive")
    step(net, "county", rid, "start_treatment")
    discharged = step(
        net,
        "county",
        rid,
        "discharge",
        {"flags": ["regimen_set", "controlled_2_weeks"], "systolic": 128, "diastolic": 82, "summary": "BP controlled"},
    )
    assert discharged["stable"] is True

    with net.client("coordinator") as c:
        due = c.get("/api/v1/referrals", params={"queue": "down_referral_due"}).json()["items"]
    assert rid in [x["id"] for x in due]

    down = step(net, "county", rid, "down-refer", {"plan": "氨氯地平 5mg qd；每两周测血压", "follow_up_days": 14})
    assert down["down_facility_id"] == str(net.facilities["township"])  # the village's township family-doctor team
    with net.client("township") as c:
        queue = c.get("/api/v1/referrals", params={"queue": "follow_up"}).json()["items"]
    assert rid in [x["id"] for x in queue]
    step(net, "township", rid, "follow_up", {"note": "BP 132/84, taking medication"})
    closed = step(net, "township", rid, "close")
    assert closed["state"] == "closed"
    assert [e["action"] for e in closed["history"]] == [
        "create", "submit", "triage", "offer", "accept", "book", "arrive", "start_treatment", "discharge",
        "down_refer", "follow_up", "close",
    ]  # fmt: skip

    with read_session() as session:
        task = store.read(session, "Task", rid)
        request = store.read(session, "ServiceRequest", rid)
        found = store.search(session, "Appointment", [("based-on", f"ServiceRequest/{rid}")]).resources
        plans = store.search(session, "CarePlan", [("subject", r["patient"])]).resources
        stays = store.search(session, "Encounter", [("subject", r["patient"])]).resources
        topics = list(session.scalars(select(OutboxEvent.topic).where(OutboxEvent.subject == f"Referral/{rid}")))
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "closed"
    assert request["status"] == "completed"
    assert found and found[0]["status"] == "fulfilled"
    assert plans and plans[0]["status"] == "completed"
    assert [e["status"] for e in stays] == ["finished"] and task["encounter"][
        "reference"
    ] == f"Encounter/{stays[0]['id']}"
    assert stays[0]["period"]["start"] < stays[0]["period"]["end"]
    assert "referral.down_referred" in topics and "referral.closed" in topics


def test_it_refuses_an_illegal_step_with_409_naming_the_allowed_next_steps(net: Net) -> None:
    rid = send_hypertensive(net)["id"]
    with net.client("village") as c:
        res = c.post(f"/api/v1/referrals/{rid}/close", json={})
    assert res.status_code == 409
    assert res.json()["field"] == "action" and "allowed next steps: cancel" in res.json()["message"]
    with net.client("coordinator") as c:
        res = c.post(f"/api/v1/referrals/{rid}/accept", json={})
    assert res.status_code == 409
    assert "submitted" in res.json()["message"] and "triage" in res.json()["message"]


def test_it_names_the_field_when_the_input_is_wrong_and_writes_nothing(net: Net) -> None:
    patient = make_patient()
    with net.client("village") as c:
        no_consent = c.post("/api/v1/referrals", json={"patient": patient, "reason": "x"})
        bad_urgency = c.post(
            "/api/v1/referrals", json={"patient": patient, "reason": "x", "consent": True, "urgency": "soon"}
        )
        unknown = c.post("/api/v1/referrals", json={"patient": "Patient/nope", "reason": "x", "consent": True})
        bad_code = c.post(
            "/api/v1/referrals", json={"patient": patient, "reason": "x", "consent": True, "diagnosis_codes": ["123"]}
        )
    assert (no_consent.status_code, no_consent.json()["field"]) == (422, "consent")
    assert (bad_urgency.status_code, bad_urgency.json()["field"]) == (422, "urgency")
    assert (unknown.status_code, unknown.json()["field"]) == (404, "patient")
    assert (bad_code.status_code, bad_code.json()["field"]) == (422, "diagnosis_codes")
    with net.client("village") as c:
        mine = c.get("/api/v1/referrals", params={"queue": "sent"}).json()["items"]
    assert patient not in [x["patient"] for x in mine]


def test_it_keeps_a_referral_from_people_outside_its_facilities_and_referral_centre_and_audits_reads(net: Net) -> None:
    rid = send_hypertensive(net)["id"]
    for outsider in ("citycoord", "expert", "official"):
        with net.client(outsider) as c:
            assert c.get(f"/api/v1/referrals/{rid}").status_code == 403
    with net.client("coordinator") as c:
        assert c.get(f"/api/v1/referrals/{rid}").status_code == 200
    with net.client("citydoc") as c:
        res = c.post(f"/api/v1/referrals/{rid}/triage", json={})
    assert res.status_code in (403, 409)
    with read_session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.resource_ref == f"Referral/{rid}")))
    assert {"village", "coordinator"} <= {a.username for a in rows if a.action == "referral.read" or a.username}


def test_it_escalates_an_unanswered_urgent_referral_to_the_referral_centre_and_then_expires_it(net: Net) -> None:
    rid = send_hypertensive(net)["id"]
    with unit_of_work() as session:
        r = service.by_task(session, rid)
        assert r is not None and r.sla_due_at is not None
        due = r.sla_due_at
        escalated = service.escalate_overdue(session, now=due + timedelta(minutes=1))
    assert rid in [str(x.id) for x in escalated]
    with unit_of_work() as session:
        overdue, _ = service.list_referrals(
            session, service_actor(session, "coordinator"), queue="overdue", now=due + timedelta(minutes=2)
        )
        assert rid in [str(x.id) for x in overdue]
        again = service.escalate_overdue(session, now=due + timedelta(minutes=5))
    assert rid not in [str(x.id) for x in again]  # escalates once
    with net.client("coordinator") as c:
        got = c.get(f"/api/v1/referrals/{rid}").json()
    assert got["escalated_at"] and got["history"][-1]["action"] == "escalate"
    with unit_of_work() as session:
        service.escalate_overdue(session, now=due + timedelta(days=2))
    with net.client("coordinator") as c:
        assert c.get(f"/api/v1/referrals/{rid}").json()["state"] == "expired"


def service_actor(session, username: str):  # type: ignore[no-untyped-def]
    from yilian.security import service as security

    return security.actor_for(session, username)


def test_it_waives_the_second_deductible_inside_the_consortium_but_not_outside(net: Net) -> None:
    inside = send_hypertensive(net, "township")  # the township centre already charged its deductible
    step(net, "coordinator", inside["id"], "triage")
    offered = step(net, "coordinator", inside["id"], "offer", {"facility_id": str(net.facilities["county"])})
    ins = offered["insurance"]
    assert ins["in_chain"] is True and ins["after"]["deductible"] < ins["before"]["deductible"]
    outside = send_hypertensive(net, "township")
    step(net, "coordinator", outside["id"], "triage")
    with net.client("coordinator") as c:
        res = c.post(f"/api/v1/referrals/{outside['id']}/offer", json={"facility_id": str(net.facilities["city"])})
    assert res.status_code == 422 and res.json()["field"] == "outside_reason"
    offered = step(
        net,
        "coordinator",
        outside["id"],
        "offer",
        {"facility_id": str(net.facilities["city"]), "outside_reason": "patient lives in the city"},
    )
    assert offered["insurance"]["in_chain"] is False
    assert offered["insurance"]["after"]["deductible"] == offered["insurance"]["before"]["deductible"]


def test_it_shows_the_criteria_a_patient_meets_with_the_observation_that_triggered_them(net: Net) -> None:
    patient = make_patient()
    with unit_of_work() as session:
        store.create(
            session,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "subject": {"reference": patient},
                "effectiveDateTime": "2026-11-20T09:00:00+08:00",
                "component": [
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "valueQuantity": {"value": 186, "unit": "mmHg"},
                    },
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                        "valueQuantity": {"value": 114, "unit": "mmHg"},
                    },
                ],
            },
        )
        store.create(
            session,
            {
                "resourceType": "Condition",
                "subject": {"reference": patient},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
            },
        )
    with net.client("village") as c:
        res = c.get("/api/v1/referrals/criteria", params={"patient": patient, "direction": "up"})
    assert res.status_code == 200
    severe = next(m for m in res.json() if m["id"] == "htn-up-severe")
    assert severe["observations"] and severe["observations"][0].startswith("Observation/")
    assert "8462-4 = 114" in " ".join(severe["evidence"])
