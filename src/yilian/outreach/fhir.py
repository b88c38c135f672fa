"""The outreach domain's FHIR R4 face: a clinic is a Schedule, each numbered appointment a Slot, each booking an
Appointment; a surgery on a visiting day is a Procedure. Postings are PractitionerRoles, written by the registry.

Ids are the domain rows' uuids, so a resource and its row share an identity. Written into the FHIR store by the
services in the same transaction as the row, so that FHIR clients and SQL-on-FHIR views see the same clinics.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID

EXT = "https://yilian.example.org/fhir/StructureDefinition/"
EXT_QUOTA = EXT + "daily-quota"
EXT_HORIZON = EXT + "booking-horizon-days"
EXT_NUMBER = EXT + "slot-number"
EXT_EXTRA = EXT + "slot-extra"
EXT_OPERATION_LEVEL = EXT + "operation-level"
EXT_PROGRAMME = EXT + "outreach-programme"
EXT_CHANNEL = EXT + "booking-channel"
SPECIALTY_SYSTEM = "urn:yilian:specialty"
BOOKING_SYSTEM = "urn:yilian:outreach:booking-number"
ACTIVITY_SYSTEM = "urn:yilian:outreach:activity"
SERVICE_TYPE = {"coding": [{"system": "urn:yilian:service-type", "code": "expert-clinic", "display": "专家门诊"}]}


class ClinicLike(Protocol):
    id: UUID
    programme_id: UUID | None
    practitioner_id: UUID
    facility_id: UUID
    specialty: str
    name: str
    daily_quota: int
    horizon_days: int
    active: bool


class SlotLike(Protocol):
    id: UUID
    clinic_id: UUID
    number: int
    start: datetime
    minutes: int
    status: str
    extra: bool


class AppointmentLike(Protocol):
    id: UUID
    reference: str
    status: str
    channel: str
    patient_name: str
    patient_ref: str | None
    created_at: datetime


def _instant(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _specialty(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": SPECIALTY_SYSTEM, "code": code}]}]


def to_schedule(c: ClinicLike, expert_name: str, facility_name: str) -> dict[str, Any]:
    ext = [
        {"url": EXT_QUOTA, "valueInteger": c.daily_quota},
        {"url": EXT_HORIZON, "valueInteger": c.horizon_days},
    ]
    if c.programme_id:
        ext.append({"url": EXT_PROGRAMME, "valueString": str(c.programme_id)})
    return {
        "resourceType": "Schedule",
        "id": str(c.id),
        "extension": ext,
        "active": bool(c.active),
        "serviceType": [SERVICE_TYPE],
        "specialty": _specialty(c.specialty),
        "actor": [
            {"reference": f"Practitioner/{c.practitioner_id}", "display": expert_name},
            {"reference": f"Location/{c.facility_id}", "display": facility_name},
        ],
        "comment": c.name,
    }


def from_schedule(resource: dict[str, Any]) -> dict[str, Any]:
    """The clinic's fields back from a Schedule (ids, specialty, quota, horizon)."""
    ext = {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in resource.get("extension", [])}
    refs = [a.get("reference", "") for a in resource.get("actor", [])]
    return {
        "id": resource["id"],
        "practitioner_id": next(r.removeprefix("Practitioner/") for r in refs if r.startswith("Practitioner/")),
        "facility_id": next(r.removeprefix("Location/") for r in refs if r.startswith("Location/")),
        "specialty": resource["specialty"][0]["coding"][0]["code"],
        "daily_quota": ext[EXT_QUOTA],
        "horizon_days": ext[EXT_HORIZON],
        "programme_id": ext.get(EXT_PROGRAMME),
        "name": resource.get("comment"),
        "active": resource.get("active", True),
    }


def to_slot(s: SlotLike) -> dict[str, Any]:
    return {
        "resourceType": "Slot",
        "id": str(s.id),
        "extension": [
            {"url": EXT_NUMBER, "valueInteger": s.number},
            {"url": EXT_EXTRA, "valueBoolean": bool(s.extra)},
        ],
        "serviceType": [SERVICE_TYPE],
        "schedule": {"reference": f"Schedule/{s.clinic_id}"},
        "status": "busy" if s.status == "busy" else "free",
        "start": _instant(s.start),
        "end": _instant(s.start + timedelta(minutes=s.minutes)),
    }


def from_slot(resource: dict[str, Any]) -> dict[str, Any]:
    ext = {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in resource.get("extension", [])}
    start = datetime.fromisoformat(resource["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(resource["end"].replace("Z", "+00:00"))
    return {
        "id": resource["id"],
        "clinic_id": resource["schedule"]["reference"].removeprefix("Schedule/"),
        "number": ext[EXT_NUMBER],
        "extra": ext.get(EXT_EXTRA, False),
        "status": resource["status"],
        "start": start,
        "minutes": int((end - start).total_seconds() // 60),
    }


APPOINTMENT_STATUS = {"booked": "booked", "cancelled": "cancelled", "arrived": "arrived", "noshow": "noshow"}


def to_appointment(a: AppointmentLike, s: SlotLike, c: ClinicLike) -> dict[str, Any]:
    patient: dict[str, Any] = {"display": a.patient_name}
    if a.patient_ref:
        patient["reference"] = f"Patient/{a.patient_ref}"
    return {
        "resourceType": "Appointment",
        "id": str(a.id),
        "extension": [{"url": EXT_CHANNEL, "valueCode": a.channel}],
        "identifier": [{"system": BOOKING_SYSTEM, "value": a.reference}],
        "status": APPOINTMENT_STATUS.get(a.status, "booked"),
        "serviceType": [SERVICE_TYPE],
        "specialty": _specialty(c.specialty),
        "start": _instant(s.start),
        "end": _instant(s.start + timedelta(minutes=s.minutes)),
        "created": _instant(a.created_at),
        "slot": [{"reference": f"Slot/{s.id}"}],
        "participant": [
            {"actor": patient, "status": "accepted"},
            {"actor": {"reference": f"Practitioner/{c.practitioner_id}"}, "status": "accepted"},
            {"actor": {"reference": f"Location/{c.facility_id}"}, "status": "accepted"},
        ],
    }


def from_appointment(resource: dict[str, Any]) -> dict[str, Any]:
    patient = resource["participant"][0]["actor"]
    return {
        "id": resource["id"],
        "reference": resource["identifier"][0]["value"],
        "status": resource["status"],
        "channel": resource["extension"][0]["valueCode"],
        "patient_name": patient.get("display"),
        "patient_ref": patient["reference"].removeprefix("Patient/") if "reference" in patient else None,
        "slot_id": resource["slot"][0]["reference"].removeprefix("Slot/"),
    }


def to_procedure(
    *,
    procedure_id: str,
    title: str,
    patient_ref: str,
    day: date,
    expert_id: UUID,
    facility_id: UUID,
    local_team: list[str],
    operation_level: int | None,
    activity_id: UUID,
    planned: bool = False,
) -> dict[str, Any]:
    """A surgery on a visiting day, with the expert and the local team as performers; `planned` (a future visiting
    day) is a Procedure in preparation, counted only once it is done."""
    performers = [
        {"function": {"text": "visiting expert (primary surgeon)"}, "actor": {"reference": f"Practitioner/{expert_id}"}}
    ]
    performers += [
        {"function": {"text": "local team"}, "actor": {"reference": f"Practitioner/{p}"}} for p in local_team
    ]
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": procedure_id,
        "identifier": [{"system": ACTIVITY_SYSTEM, "value": str(activity_id)}],
        "status": "preparation" if planned else "completed",
        "category": {
            "coding": [{"system": "http://snomed.info/sct", "code": "387713003", "display": "Surgical procedure"}]
        },
        "code": {"text": title},
        "subject": {"reference": f"Patient/{patient_ref}"},
        "performedDateTime": datetime.combine(day, time(9, 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "performer": performers,
        "location": {"reference": f"Location/{facility_id}"},
    }
    if operation_level:
        resource["extension"] = [{"url": EXT_OPERATION_LEVEL, "valueInteger": operation_level}]
    return resource
