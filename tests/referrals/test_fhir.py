"""The referral's FHIR face validates against R4 in every state, and reads back into the same referral."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from yilian.fhir.validation import validate
from yilian.referrals import fhir
from yilian.referrals.states import State


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
