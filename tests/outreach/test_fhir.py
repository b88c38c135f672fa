"""The FHIR face of expert clinics: Schedule, Slot, Appointment translators round-trip and validate as R4; the store
serves them to FHIR clients (free slots of a clinic, a patient's appointment)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.appointment import Appointment as R4Appointment
from fhir.resources.R4B.procedure import Procedure as R4Procedure
from fhir.resources.R4B.schedule import Schedule as R4Schedule
from fhir.resources.R4B.slot import Slot as R4Slot

from yilian.db import read_session
from yilian.outreach import clinics
from yilian.outreach import fhir as outreach_fhir
from yilian.outreach.models import Appointment, Clinic, Slot


def test_the_translators_round_trip_and_validate_as_r4(http, site) -> None:  # type: ignore[no-untyped-def]
    r = http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/bookings",
        json={"day": str(site.day), "patient": {"name": "刘女士", "phone": "13900000001"}},
        headers=site.auth("township"),
    )
    assert r.status_code == 201
    with read_session() as s:
        clinic = clinics.get_clinic(s, site.clinic_id)
        appointment = s.query(Appointment).one()
        slot = s.get(Slot, appointment.slot_id)
        assert slot is not None and isinstance(clinic, Clinic)

        schedule = outreach_fhir.to_schedule(clinic, "张三", "莱西市人民医院")
        slot_res = outreach_fhir.to_slot(slot)
        appt_res = outreach_fhir.to_appointment(appointment, slot, clinic)

    R4Schedule.model_validate(schedule)
    R4Slot.model_validate(slot_res)
    R4Appointment.model_validate(appt_res)
    back = outreach_fhir.from_schedule(schedule)
    assert (back["practitioner_id"], back["facility_id"], back["specialty"], back["daily_quota"]) == (
        site.zhang,
        site.facilities["LXRM"],
        "cardiology",
        3,
    )
    s_back = outreach_fhir.from_slot(slot_res)
    assert (s_back["number"], s_back["status"], s_back["minutes"], s_back["clinic_id"]) == (
        1,
        "busy",
        slot.minutes,
        site.clinic_id,
    )
    assert s_back["start"] == slot.start.astimezone(UTC)
    a_back = outreach_fhir.from_appointment(appt_res)
    assert (a_back["reference"], a_back["status"], a_back["channel"], a_back["patient_name"]) == (
        appointment.reference,
        "booked",
        "staff",
        "刘女士",
    )
    R4Procedure.model_validate(
        outreach_fhir.to_procedure(
            procedure_id="p1",
            title="阑尾切除术",
            patient_ref="x",
            day=datetime.now(UTC).date(),
            expert_id=clinic.practitioner_id,
            facility_id=clinic.facility_id,
            local_team=[],
            operation_level=3,
            activity_id=clinic.id,
        )
    )


def test_fhir_clients_find_a_clinics_free_slots_and_the_booked_appointment(http, site) -> None:  # type: ignore[no-untyped-def]
    http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/bookings",
        json={"day": str(site.day), "patient": {"name": "刘女士", "phone": "13900000001"}},
        headers=site.auth("coord"),
    )
    auth = site.auth("coord")

    schedule = http.get(f"/fhir/Schedule/{site.clinic_id}", headers=auth).json()
    free = http.get(
        "/fhir/Slot", params={"schedule": f"Schedule/{site.clinic_id}", "status": "free"}, headers=auth
    ).json()
    busy = http.get(
        "/fhir/Slot", params={"schedule": f"Schedule/{site.clinic_id}", "status": "busy"}, headers=auth
    ).json()
    appointments = http.get(
        "/fhir/Appointment", params={"practitioner": f"Practitioner/{site.zhang}"}, headers=auth
    ).json()

    assert schedule["actor"][0]["reference"] == f"Practitioner/{site.zhang}"
    assert free["total"] == 2 and busy["total"] == 1
    assert appointments["total"] == 1
    appt = appointments["entry"][0]["resource"]
    assert appt["status"] == "booked" and appt["slot"][0]["reference"] == f"Slot/{busy['entry'][0]['resource']['id']}"
