"""The referral's FHIR R4 face: ServiceRequest (the order) + Task (the workflow), Appointment for the booking,
Encounter for the stay at the receiver, CarePlan for the down-referral plan; Schedule + Slot for the outpatient slots and beds departments publish. The referral row is the source of truth; these are written from it on every step.
`from_task` reads what an outside system posts to /fhir so that it starts the same workflow as the UI."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from yilian.errors import Invalid

NS = uuid.UUID("8f0c2a5e-3b7d-4e59-a1c6-2d9e7f4b1a03")
STATE_SYSTEM = "urn:yilian:referral-state"
DIRECTION_SYSTEM = "urn:yilian:referral-direction"
CHANNEL_SYSTEM = "urn:yilian:green-channel"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
EXT = "https://yilian.example.org/fhir/StructureDefinition/"

# Task.status for each local state; the local state itself goes in businessStatus.
TASK_STATUS = {
    "draft": "draft",
    "submitted": "requested",
    "triaged": "received",
    "offered": "ready",
    "accepted": "accepted",
    "declined": "rejected",
    "redirected": "on-hold",
    "booked": "accepted",
    "arrived": "in-progress",
    "in_treatment": "in-progress",
    "discharged": "in-progress",
    "down_referred": "in-progress",
    "followed_up": "in-progress",
    "closed": "completed",
    "cancelled": "cancelled",
    "expired": "failed",
}
REQUEST_STATUS = {"draft": "draft", "closed": "completed", "cancelled": "revoked", "expired": "revoked"}
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
URGENCY_OF = {"routine": "routine", "urgent": "urgent", "asap": "urgent", "stat": "emergency"}


class ReferralLike(Protocol):
    id: uuid.UUID
    patient_ref: str
    patient_name: str
    direction: str
    urgency: str
    green_channel: str | None
    state: str
    reason: str
    diagnosis_codes: list[str]
    summary: str
    record_refs: list[str]
    sender_facility_id: uuid.UUID
    receiver_facility_id: uuid.UUID | None
    down_facility_id: uuid.UUID | None
    target_facility_id: uuid.UUID | None
    appointment: dict[str, Any] | None
    care_plan: dict[str, Any] | None
    sla_due_at: datetime | None
    accepted_at: datetime | None
    accept_due_at: datetime | None
    decline_reason: str | None
    service_request_id: str
    task_id: str
    created_at: datetime
    updated_at: datetime


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z") if dt else None


def _org(fid: uuid.UUID | None, names: Mapping[uuid.UUID, str]) -> dict[str, Any] | None:
    if fid is None:
        return None
    ref: dict[str, Any] = {"reference": f"Organization/{fid}"}
    if fid in names:
        ref["display"] = names[fid]
    return ref


def appointment_id(r: ReferralLike) -> str:
    return str(uuid.uuid5(NS, f"appointment:{r.id}"))


def care_plan_id(r: ReferralLike) -> str:
    return str(uuid.uuid5(NS, f"careplan:{r.id}"))


def encounter_id(r: ReferralLike) -> str:
    return str(uuid.uuid5(NS, f"encounter:{r.id}"))


# The stay at the receiver, once the patient has arrived: Encounter.status per local state.
ENCOUNTER_STATUS = {"arrived": "arrived", "in_treatment": "in-progress"}
AFTER_ARRIVAL = ("arrived", "in_treatment", "discharged", "down_referred", "followed_up", "closed")


def to_service_request(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": r.service_request_id,
        "identifier": [{"system": "urn:yilian:referral", "value": str(r.id)}],
        "status": REQUEST_STATUS.get(r.state, "active"),
        "intent": "order",
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]},
            {"coding": [{"system": DIRECTION_SYSTEM, "code": r.direction}]},
        ],
        "priority": PRIORITY.get(r.urgency, "routine"),
        "code": {"text": r.reason[:200] or "referral"},
        "subject": {"reference": r.patient_ref, "display": r.patient_name or None},
        "authoredOn": _iso(r.created_at),
        "requester": _org(r.sender_facility_id, names),
    }
    if r.diagnosis_codes:
        res["reasonCode"] = [{"coding": [{"system": ICD10, "code": c}]} for c in r.diagnosis_codes]
    performer = r.receiver_facility_id or r.target_facility_id
    if performer:
        res["performer"] = [_org(performer, names)]
    if r.record_refs:
        res["supportingInfo"] = [{"reference": ref} for ref in r.record_refs if "/" in ref]
    if r.summary:
        res["note"] = [{"text": r.summary[:4000]}]
    if r.green_channel:
        res["orderDetail"] = [{"coding": [{"system": CHANNEL_SYSTEM, "code": r.green_channel}]}]
    if res["subject"]["display"] is None:
        del res["subject"]["display"]
    return res


def to_task(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    owner = r.down_facility_id if r.state in ("down_referred", "followed_up", "closed") and r.down_facility_id else None
    owner = owner or r.receiver_facility_id
    res: dict[str, Any] = {
        "resourceType": "Task",
        "id": r.task_id,
        "identifier": [{"system": "urn:yilian:referral", "value": str(r.id)}],
        "basedOn": [{"reference": f"ServiceRequest/{r.service_request_id}"}],
        "status": TASK_STATUS[r.state],
        "businessStatus": {"coding": [{"system": STATE_SYSTEM, "code": r.state}], "text": r.state},
        "intent": "order",
        "priority": PRIORITY.get(r.urgency, "routine"),
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{r.service_request_id}"},
        "for": {"reference": r.patient_ref},
        "authoredOn": _iso(r.created_at),
        "lastModified": _iso(r.updated_at),
        "requester": _org(r.sender_facility_id, names),
    }
    if owner:
        res["owner"] = _org(owner, names)
    if r.sla_due_at:
        res["restriction"] = {"period": {"end": _iso(r.sla_due_at)}}
    # The acceptance clock: when the receiver first acted on the task (executionPeriod.start, as R4 defines it) and by
    # when it had to (restriction.period moves on to the next clock, so the acceptance deadline is kept apart).
    if r.accepted_at:
        res["executionPeriod"] = {"start": _iso(r.accepted_at)}
    if r.accept_due_at:
        res["extension"] = [{"url": f"{EXT}referral-acceptance-due", "valueDateTime": _iso(r.accept_due_at)}]
    if r.care_plan:
        res["output"] = [
            {
                "type": {
                    "coding": [{"system": STATE_SYSTEM, "code": "down_referred"}],
                    "text": "down-referral care plan",
                },
                "valueReference": {"reference": f"CarePlan/{care_plan_id(r)}"},
            }
        ]
    if r.state in ("declined", "redirected") and r.decline_reason:
        res["statusReason"] = {"text": r.decline_reason[:500]}
    if r.state in AFTER_ARRIVAL:
        res["encounter"] = {"reference": f"Encounter/{encounter_id(r)}"}
    return res


def to_encounter(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any] | None:
    """The patient's stay at the receiving facility, from arrival to discharge (linked from the Task)."""
    if r.state not in AFTER_ARRIVAL:
        return None
    times = getattr(r, "times", None) or {}
    inpatient = bool(r.appointment and r.appointment.get("kind") == "bed")
    res: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id(r),
        "status": ENCOUNTER_STATUS.get(r.state, "finished"),
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP" if inpatient else "AMB",
        },
        "subject": {"reference": r.patient_ref},
        "basedOn": [{"reference": f"ServiceRequest/{r.service_request_id}"}],
    }
    period = {k: v for k, v in (("start", times.get("arrival")), ("end", times.get("discharge"))) if v}
    if period:
        res["period"] = period
    if r.appointment:
        res["appointment"] = [{"reference": f"Appointment/{appointment_id(r)}"}]
    provider = _org(r.receiver_facility_id, names)
    if provider:
        res["serviceProvider"] = provider
    return res


def to_appointment(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any] | None:
    if not r.appointment:
        return None
    status = {"booked": "booked", "arrived": "arrived", "cancelled": "cancelled"}.get(r.state, "fulfilled")
    participants: list[dict[str, Any]] = [{"actor": {"reference": r.patient_ref}, "status": "accepted"}]
    if r.receiver_facility_id:
        participants.append({"actor": {"reference": f"Location/{r.receiver_facility_id}"}, "status": "accepted"})
    res: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment_id(r),
        "status": status,
        "basedOn": [{"reference": f"ServiceRequest/{r.service_request_id}"}],
        "description": str(r.appointment.get("department") or ""),
        "start": r.appointment["start"],
        "end": r.appointment["end"],
        "participant": participants,
    }
    if r.appointment.get("kind") == "bed":
        res["appointmentType"] = {"text": "bed reservation"}
    if r.appointment.get("slot_id"):
        res["slot"] = [{"reference": f"Slot/{r.appointment['slot_id']}"}]
    if not res["description"]:
        del res["description"]
    return res


def to_care_plan(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any] | None:
    if not r.care_plan:
        return None
    plan = r.care_plan
    status = "completed" if r.state == "closed" else "active"
    activities = [
        {
            "detail": {
                "status": "not-started" if r.state == "down_referred" else "completed",
                "description": f"family-doctor follow-up within {plan.get('follow_up_days')} days",
            }
        }
    ]
    activities += [{"detail": {"status": "in-progress", "description": m}} for m in plan.get("medications", [])]
    res: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": care_plan_id(r),
        "status": status,
        "intent": "plan",
        "title": "down-referral care plan",
        "description": str(plan.get("plan", ""))[:4000],
        "subject": {"reference": r.patient_ref},
        "activity": activities,
        "period": {"start": plan.get("at"), "end": plan.get("due")},
    }
    author = _org(r.receiver_facility_id, names)
    if author:
        res["author"] = author
    return res


class SlotLike(Protocol):
    id: uuid.UUID
    facility_id: uuid.UUID
    department: str
    kind: str
    start: datetime
    end: datetime
    referral_id: uuid.UUID | None


def schedule_id(facility_id: uuid.UUID, department: str, kind: str) -> str:
    """One Schedule per facility, department and kind (outpatient slots, inpatient beds): a stable id."""
    return str(uuid.uuid5(NS, f"schedule:{facility_id}:{department}:{kind}"))


def to_schedule(facility_id: uuid.UUID, department: str, kind: str, name: str = "") -> dict[str, Any]:
    actor: dict[str, Any] = {"reference": f"Organization/{facility_id}"}
    if name:
        actor["display"] = name
    return {
        "resourceType": "Schedule",
        "id": schedule_id(facility_id, department, kind),
        "active": True,
        "serviceType": [{"text": department}],
        "actor": [actor],
        "comment": ("inpatient beds" if kind == "bed" else "outpatient slots") + " for referred patients",
    }


def to_slot(slot: SlotLike) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Slot",
        "id": str(slot.id),
        "schedule": {"reference": f"Schedule/{schedule_id(slot.facility_id, slot.department, slot.kind)}"},
        "status": "busy" if slot.referral_id else "free",
        "start": _iso(slot.start),
        "end": _iso(slot.end),
        "serviceType": [{"text": slot.department}],
    }
    if slot.kind == "bed":
        res["appointmentType"] = {"text": "bed reservation"}
    return res


def resources_for(r: ReferralLike, names: Mapping[uuid.UUID, str]) -> list[dict[str, Any]]:
    out = [to_service_request(r, names), to_task(r, names)]
    for extra in (to_appointment(r, names), to_encounter(r, names), to_care_plan(r, names)):
        if extra is not None:
            out.append(extra)
    return out


def _ref_id(ref: Mapping[str, Any] | None, rtype: str, field: str) -> str | None:
    if not ref:
        return None
    value = str(ref.get("reference", ""))
    if not value.startswith(f"{rtype}/"):
        raise Invalid(f"{field} must reference a {rtype}", field=field)
    return value.removeprefix(f"{rtype}/")


def from_task(task: Mapping[str, Any], request: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a ReferralIn needs, from a Task (+ the ServiceRequest it is based on) posted by an outside system."""
    if task.get("status") not in ("requested", "draft"):
        raise Invalid("a new referral Task has status requested (or draft)", field="Task.status")
    patient = (task.get("for") or {}).get("reference") or ((request or {}).get("subject") or {}).get("reference")
    if not patient or not str(patient).startswith("Patient/"):
        raise Invalid("the Task (or its ServiceRequest) names the patient: for = Patient/<id>", field="Task.for")
    req = request or {}
    codes = [
        c.get("code")
        for rc in req.get("reasonCode") or []
        for c in rc.get("coding") or []
        if c.get("system") in (ICD10, None) and c.get("code")
    ]
    reason = (req.get("code") or {}).get("text") or (task.get("description")) or "referral"
    target = None
    performers = req.get("performer") or []
    if performers:
        target = _ref_id(performers[0], "Organization", "ServiceRequest.performer")
    channel = None
    for detail in req.get("orderDetail") or []:
        for c in detail.get("coding") or []:
            if c.get("system") == CHANNEL_SYSTEM:
                channel = c.get("code")
    direction = "up"
    for cat in req.get("category") or []:
        for c in cat.get("coding") or []:
            if c.get("system") == DIRECTION_SYSTEM:
                direction = str(c.get("code"))
    notes = " ".join(str(n.get("text", "")) for n in req.get("note") or [])
    return {
        "patient": str(patient),
        "direction": direction,
        "urgency": URGENCY_OF.get(str(task.get("priority") or req.get("priority") or "routine"), "routine"),
        "green_channel": channel,
        "reason": str(reason),
        "diagnosis_codes": codes,
        "summary": notes,
        "record_refs": [s["reference"] for s in req.get("supportingInfo") or [] if s.get("reference")],
        "target_facility_id": target,
        "consent": True,  # an order from a clinical system carries the consent it took
        "draft": task.get("status") == "draft",
        "service_request_id": (req.get("id") if req else None),
    }
