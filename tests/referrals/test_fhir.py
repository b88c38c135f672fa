"""The referral's FHIR face validates against R4 in every state, and reads back into the same referral."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from yilian.db import read_session
from yilian.fhir import store
from yilian.fhir.validation import validate
from yilian.referrals import fhir
from yilian.referrals.states import State

from .conftest import Net


def referral(state: str) -> SimpleNamespace:
    now = datetime.now(UTC)
    rid = uuid.uuid4()
    return SimpleNamespace(
        id=rid,
        patient_ref="Patient/p1",
        patient_name="张建国",
        direction="up",
        urgency="emergency",
        green_channel="chest_pain",
        state=state,
        reason="胸痛",
        diagnosis_codes=["I21.9"],
        summary="ST 段抬高",
        record_refs=["Observation/o1"],
        sender_facility_id=uuid.uuid4(),
        receiver_facility_id=uuid.uuid4(),
        down_facility_id=uuid.uuid4(),
        target_facility_id=None,
        appointment={"kind": "bed", "start": now.isoformat(), "end": (now + timedelta(hours=1)).isoformat(),
                     "department": "心血管内科"},
        care_plan={"plan": "双抗 12 个月", "medications": ["阿司匹林"], "follow_up_days": 14,
                   "at": now.isoformat(), "due": (now + timedelta(days=14)).isoformat()},
        sla_due_at=now + timedelta(minutes=15),
        accepted_at=now + timedelta(minutes=9),
        accept_due_at=now + timedelta(minutes=15),
        times={"arrival": now.isoformat(), "discharge": (now + timedelta(days=3)).isoformat()},
        decline_reason="床位已满",
        service_request_id=str(rid),
        task_id=str(rid),
        created_at=now,
        updated_at=now,
    )  # fmt: skip


def test_it_produces_valid_r4_resources_in_every_state() -> None:
    for state in State:
        r = referral(state.value)
        for res in fhir.resources_for(r, {r.sender_facility_id: "新城镇卫生院"}):
            validate(res, res["resourceType"])
        task = fhir.to_task(r, {})
        assert task["businessStatus"]["coding"][0]["code"] == state.value
        assert task["status"] == fhir.TASK_STATUS[state.value]
        encounter = fhir.to_encounter(r, {})
        assert (encounter is not None) == (state.value in fhir.AFTER_ARRIVAL)
        if encounter:
            assert task["encounter"]["reference"] == f"Encounter/{encounter['id']}"
            assert encounter["class"]["code"] == "IMP"  # a bed was reserved: an inpatient stay


def test_it_reads_a_task_and_its_service_request_back_into_what_a_referral_needs() -> None:
    r = referral("submitted")
    sr = fhir.to_service_request(r, {})
    task = fhir.to_task(r, {})
    task["status"] = "requested"
    back = fhir.from_task(task, sr)
    assert back["patient"] == r.patient_ref
    assert back["diagnosis_codes"] == r.diagnosis_codes
    assert back["urgency"] == "emergency" and back["green_channel"] == "chest_pain"
    assert back["direction"] == "up" and back["record_refs"] == r.record_refs
    assert back["target_facility_id"] == str(r.receiver_facility_id)
    assert back["service_request_id"] == r.service_request_id


def test_published_slots_and_beds_have_a_valid_fhir_face() -> None:
    now = datetime.now(UTC)
    facility = uuid.uuid4()
    bed = SimpleNamespace(
        id=uuid.uuid4(), facility_id=facility, department="心血管内科", kind="bed", start=now,
        end=now + timedelta(days=1), referral_id=None,
    )  # fmt: skip
    schedule = fhir.to_schedule(facility, "心血管内科", "bed", "襄汾县人民医院")
    slot = fhir.to_slot(bed)
    validate(schedule, "Schedule")
    validate(slot, "Slot")
    assert slot["schedule"]["reference"] == f"Schedule/{schedule['id']}" and slot["status"] == "free"
    assert fhir.to_slot(SimpleNamespace(**{**vars(bed), "referral_id": uuid.uuid4()}))["status"] == "busy"
    assert fhir.schedule_id(facility, "心血管内科", "bed") != fhir.schedule_id(facility, "心血管内科", "outpatient")


def test_a_booked_slot_is_busy_in_fhir_and_free_again_when_the_referral_is_cancelled(net: Net) -> None:
    from .test_workflow import send_hypertensive, step

    start = datetime.now(UTC) + timedelta(days=2)
    with net.client("county") as c:
        slots = c.post(
            "/api/v1/referrals/slots", json={"department": "内分泌科", "start": start.isoformat(), "count": 2}
        ).json()
    schedule = f"Schedule/{fhir.schedule_id(net.facilities['county'], '内分泌科', 'outpatient')}"

    def statuses() -> dict[str, str]:
        with read_session() as session:
            found = store.search(session, "Slot", [("schedule", schedule), ("_count", "100")]).resources
        return {s["id"]: s["status"] for s in found}

    assert {statuses()[s["id"]] for s in slots} == {"free"}
    rid = send_hypertensive(net)["id"]
    step(net, "coordinator", rid, "triage")
    step(net, "coordinator", rid, "offer", {})
    step(net, "county", rid, "accept")
    booked = step(net, "county", rid, "book", {"slot_id": slots[0]["id"]})
    assert statuses()[slots[0]["id"]] == "busy" and statuses()[slots[1]["id"]] == "free"
    with read_session() as session:
        appointment = store.search(session, "Appointment", [("based-on", f"ServiceRequest/{rid}")]).resources[0]
    assert appointment["slot"] == [{"reference": f"Slot/{slots[0]['id']}"}] and booked["state"] == "booked"
    step(net, "village", rid, "cancel", {"reason": "患者改约"})
    assert statuses()[slots[0]["id"]] == "free"


def test_the_task_keeps_the_acceptance_clock_and_points_at_the_down_referral_plan() -> None:
    """What the acceptance KPI and the days-to-down-referral KPI read from the shared record."""
    r = referral("down_referred")
    task = fhir.to_task(r, {})
    assert task["executionPeriod"]["start"] == fhir._iso(r.accepted_at)
    assert task["extension"] == [
        {"url": f"{fhir.EXT}referral-acceptance-due", "valueDateTime": fhir._iso(r.accept_due_at)}
    ]
    assert task["output"][0]["valueReference"]["reference"] == f"CarePlan/{fhir.care_plan_id(r)}"
    plan = fhir.to_care_plan(r, {})
    assert plan is not None and plan["period"]["start"] == r.care_plan["at"]
