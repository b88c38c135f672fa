"""Outside systems through /fhir, green channels, and atomic booking under concurrent clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from yilian.db import read_session, unit_of_work
from yilian.events.models import OutboxEvent
from yilian.referrals import service
from yilian.security import service as security

from .conftest import Net, make_patient

FHIR = "application/fhir+json"


def test_it_starts_the_same_workflow_when_an_outside_system_posts_a_service_request_and_task(net: Net) -> None:
    patient = make_patient("李秀英")
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
        "priority": "urgent",
        "code": {"text": "血糖控制不佳，HbA1c 10.2%"},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]}],
        "subject": {"reference": patient},
    }
    with net.client("township") as c:
        sr = c.post("/fhir/ServiceRequest", json=request, headers={"Content-Type": FHIR})
        assert sr.status_code == 201, sr.text
        task = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "basedOn": [{"reference": f"ServiceRequest/{sr.json()['id']}"}],
            "for": {"reference": patient},
        }
        created = c.post("/fhir/Task", json=task, headers={"Content-Type": FHIR})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "requested" and body["businessStatus"]["coding"][0]["code"] == "submitted"
        assert body["restriction"]["period"]["end"]  # the acceptance SLA
        rid = body["id"]
        got = c.get(f"/api/v1/referrals/{rid}").json()
    assert got["state"] == "submitted" and got["diagnosis_codes"] == ["E11.9"]
    assert got["service_request"] == f"ServiceRequest/{sr.json()['id']}"
    assert got["routing"][0]["name"] == "襄汾县人民医院"  # endocrinology, next level up, own consortium

    with net.client("coordinator") as c:
        assert c.post(f"/api/v1/referrals/{rid}/triage", json={}).status_code == 200
        found = c.get("/fhir/Task", params={"status": "received", "_id": rid}).json()
    assert found["total"] == 1 or len(found.get("entry", [])) == 1

    # A Task that is not a referral is stored as any other FHIR resource.
    with net.client("township") as c:
        plain = c.post(
            "/fhir/Task",
            json={"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": patient}},
            headers={"Content-Type": FHIR},
        )
    assert plain.status_code == 201
    with read_session() as session:
        assert service.by_task(session, plain.json()["id"]) is None


def test_it_refuses_a_referral_task_without_a_patient_with_an_operation_outcome(net: Net) -> None:
    with net.client("township") as c:
        sr = c.post(
            "/fhir/ServiceRequest",
            json={
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
                "subject": {"reference": "Group/x"},
            },
            headers={"Content-Type": FHIR},
        )
        res = c.post(
            "/fhir/Task",
            json={
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "basedOn": [{"reference": f"ServiceRequest/{sr.json()['id']}"}],
            },
            headers={"Content-Type": FHIR},
        )
    assert res.status_code == 422
    assert res.json()["resourceType"] == "OperationOutcome"
    assert res.json()["issue"][0]["expression"] == ["Task.for"]


def test_it_sends_a_chest_pain_patient_from_the_township_straight_to_a_chest_pain_centre_with_the_time_chain(
    net: Net,
) -> None:
    patient = make_patient("王大山")
    onset = datetime.now(UTC) - timedelta(minutes=50)
    with net.client("township") as c:
        res = c.post(
            "/api/v1/referrals",
            json={
                "patient": patient,
                "diagnosis_codes": ["I21.9"],
                "reason": "胸痛 50 分钟，ST 段抬高",
                "green_channel": "chest_pain",
                "consent": True,
                "times": {
                    "symptom_onset": onset.isoformat(),
                    "first_contact": (onset + timedelta(minutes=20)).isoformat(),
                },
            },
        )
    assert res.status_code == 201, res.text
    r = res.json()
    # No queue: triaged and offered by the platform at once, to a centre (levels skipped).
    assert r["state"] == "offered" and r["urgency"] == "emergency"
    assert r["receiver_facility_id"] == str(net.facilities["city"])
    assert [e["username"] for e in r["history"][2:4]] == ["system", "system"]
    with read_session() as session:
        alerts = list(
            session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.topic == "referral.green_channel_alert", OutboxEvent.subject == f"Referral/{r['id']}"
                )
            )
        )
    assert alerts and alerts[0].payload["receiver"] == str(net.facilities["city"])

    with net.client("citydoc") as c:
        assert c.post(f"/api/v1/referrals/{r['id']}/accept", json={}).status_code == 200
        assert (
            c.post(
                f"/api/v1/referrals/{r['id']}/book", json={"start": datetime.now(UTC).isoformat(), "kind": "bed"}
            ).status_code
            == 200
        )
        assert c.post(f"/api/v1/referrals/{r['id']}/arrive", json={}).status_code == 200
        treated = c.post(
            f"/api/v1/referrals/{r['id']}/times",
            json={"times": {"key_treatment": (datetime.now(UTC) + timedelta(minutes=60)).isoformat()}},
        )
    assert treated.status_code == 200
    times = treated.json()["times"]
    assert {"symptom_onset", "first_contact", "referral", "arrival", "key_treatment"} <= set(times)
    with read_session() as session:
        ref = service.by_task(session, r["id"])
        assert ref is not None
        chain = service.chain_status(ref)
    assert chain is not None and chain.target_minutes == 240
    assert chain.elapsed_minutes is not None and 105 <= chain.elapsed_minutes <= 115 and chain.within is True
    assert chain.door_minutes is not None and chain.door_minutes <= 61


def _accepted_referral(net: Net) -> str:
    with unit_of_work() as session:
        village = security.actor_for(session, "village")
        coordinator = security.actor_for(session, "coordinator")
        county = security.actor_for(session, "county")
        from yilian.referrals.schemas import ReferralIn

        r = service.create(
            session, village, ReferralIn(patient=make_patient(), reason="r", consent=True, diagnosis_codes=["I10"])
        )
        service.submit(session, village, r.id)
        service.triage(session, coordinator, r.id)
        service.offer(session, coordinator, r.id, net.facilities["county"])
        service.accept(session, county, r.id)
        return str(r.id)


def test_it_never_double_books_a_slot_under_fifty_parallel_clients_and_offers_the_next_one(net: Net) -> None:
    referrals = [_accepted_referral(net) for _ in range(50)]
    start = datetime.now(UTC) + timedelta(days=2)
    with net.client("county") as c:
        slots = c.post(
            "/api/v1/referrals/slots", json={"department": "心血管内科", "start": start.isoformat(), "count": 3}
        ).json()
    wanted = slots[0]["id"]

    def book(rid: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        with net.client("county") as c:
            res = c.post(f"/api/v1/referrals/{rid}/book", json={"slot_id": wanted})
            return res.status_code, res.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(book, referrals))
    codes = [code for code, _ in results]
    assert codes.count(200) == 1, codes
    assert codes.count(409) == 49
    losers = [body for code, body in results if code == 409]
    # The next best option is named: a free slot of the department, not the one just taken (earlier tests may have
    # left earlier free slots, so it need not be slots[1]).
    assert all("next free:" in b["message"] and wanted not in b["message"].split("next free:")[1] for b in losers)
    with net.client("county") as c:
        free = c.get("/api/v1/referrals/slots", params={"facility_id": str(net.facilities["county"])}).json()
    assert wanted not in [s["id"] for s in free]
    with read_session() as session:
        states = [service.by_task(session, rid).state for rid in referrals]  # type: ignore[union-attr]
    assert states.count("booked") == 1 and states.count("accepted") == 49  # the losers' step was rolled back
