"""The FHIR R4 face of shared diagnostics: one translator per resource, ids derived from the rows' ids.

order → ServiceRequest (+ Task for the centre's work); uploaded/PACS study → ImagingStudy; measured values →
Observation; signed report → DiagnosticReport (HR-tagged when recognised); teleconsultation → ServiceRequest with
category SNOMED CT 11429006 (Consultation) + Task, its opinion → DiagnosticReport (LOINC 11488-4 Consult note).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from yilian.diagnostics import catalogue
from yilian.diagnostics.rules import MEASURES, ConsultKind, Modality, Priority
from yilian.diagnostics.schemas import ConsultIn, OrderIn
from yilian.errors import Invalid

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ITEM_SYSTEM = "urn:yilian:recognition-item"
MEASURE_SYSTEM = "urn:yilian:diagnostic-measure"
ORDER_SYSTEM = "urn:yilian:diagnostic-order"
CONSULT_SYSTEM = "urn:yilian:teleconsultation"
CONSULT_KIND_SYSTEM = "urn:yilian:consultation-kind"
HR_TAG = {"system": "urn:yilian:recognition", "code": "HR", "display": "互认 (mutually recognised result)"}
EXT = "https://yilian.example.org/fhir/StructureDefinition/"
EXT_WADO = EXT + "wado-rs"
EXT_REPEAT = EXT + "recognition-repeat-reason"
EXT_AMEND = EXT + "amendment-reason"
NS = uuid.UUID("0b7c2f0e-9d1a-4a57-8c9e-5d0f1e6a7b31")

# Category of the order (SNOMED CT procedure) and of the report (HL7 v2 diagnostic service section).
ORDER_CATEGORY = {
    Modality.ECG: ("29303009", "Electrocardiographic procedure"),
    Modality.IMAGING: ("363679005", "Imaging"),
    Modality.LAB: ("108252007", "Laboratory procedure"),
    Modality.PATHOLOGY: ("108257001", "Anatomic pathology procedure"),
}
REPORT_SECTION = {Modality.ECG: "EC", Modality.IMAGING: "RAD", Modality.LAB: "LAB", Modality.PATHOLOGY: "SP"}
CONSULTATION = {"system": SNOMED, "code": "11429006", "display": "Consultation"}
ORDER_STATUS = {"ordered": "active", "received": "active", "reported": "completed", "cancelled": "revoked"}
TASK_STATUS = {
    "ordered": "requested",
    "received": "in-progress",
    "reported": "completed",
    "cancelled": "cancelled",
    "requested": "requested",
    "scheduled": "accepted",
    "answered": "completed",
}


def derived_id(kind: str, row_id: uuid.UUID) -> str:
    return str(uuid.uuid5(NS, f"{kind}/{row_id}"))


def dicom_uid(row_id: uuid.UUID) -> str:
    """A DICOM UID for a study that came without one (an uploaded file): the 2.25 root with the uuid as integer."""
    return f"2.25.{row_id.int}"


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def _org(facility_id: uuid.UUID, name: str) -> dict[str, Any]:
    return {"reference": f"Organization/{facility_id}", "display": name}


class OrderLike(Protocol):
    id: uuid.UUID
    patient_ref: str
    ordering_facility_id: uuid.UUID
    centre_facility_id: uuid.UUID
    ordered_by: str
    modality: str
    item_code: str | None
    item_name: str
    priority: str
    clinical_question: str
    state: str
    repeat_reason: str | None
    patient_informed: bool
    ordered_at: datetime
    received_at: datetime | None
    reported_at: datetime | None


class StudyLike(Protocol):
    id: uuid.UUID
    source: str
    content_type: str | None
    filename: str | None
    study_uid: str | None
    wado_url: str | None
    description: str | None
    measurements: dict[str, Any]
    received_at: datetime


class ReportLike(Protocol):
    id: uuid.UUID
    findings: str
    conclusion: str
    critical: bool
    recognised: bool
    signed_by_name: str
    signed_by: str
    signed_at: datetime


def _item_code(order: OrderLike) -> dict[str, Any]:
    codings = []
    if order.item_code:
        item = catalogue.items().get(order.item_code)
        if item and item.loinc:
            codings.append({"system": LOINC, "code": item.loinc, "display": item.name_en})
        codings.append({"system": ITEM_SYSTEM, "code": order.item_code, "display": order.item_name})
    return {"coding": codings, "text": order.item_name} if codings else {"text": order.item_name}


def to_service_request(order: OrderLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    modality = Modality(order.modality)
    code, display = ORDER_CATEGORY[modality]
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(order.id),
        "identifier": [{"system": ORDER_SYSTEM, "value": str(order.id)}],
        "status": ORDER_STATUS[order.state],
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": code, "display": display}], "text": modality.value}],
        "priority": order.priority,
        "code": _item_code(order),
        "subject": {"reference": order.patient_ref},
        "authoredOn": _iso(order.ordered_at),
        "requester": {"display": order.ordered_by},
        "performer": [_org(order.centre_facility_id, names.get(order.centre_facility_id, ""))],
        "extension": [
            {
                "url": EXT + "ordering-facility",
                "valueReference": _org(order.ordering_facility_id, names.get(order.ordering_facility_id, "")),
            }
        ],
    }
    if order.clinical_question:
        res["reasonCode"] = [{"text": order.clinical_question}]
    if order.repeat_reason:
        res["extension"].append({"url": EXT_REPEAT, "valueCode": order.repeat_reason})
    return res


def from_service_request(sr: Mapping[str, Any]) -> OrderIn:
    """Back to an order draft (an outside system placing an order through FHIR)."""
    if sr.get("resourceType") != "ServiceRequest":
        raise Invalid("expected a ServiceRequest", field="resourceType")
    text = ((sr.get("category") or [{}])[0]).get("text")
    codes = {code: m for m, (code, _) in ORDER_CATEGORY.items()}
    modality = None
    for coding in ((sr.get("category") or [{}])[0]).get("coding") or []:
        modality = codes.get(coding.get("code")) or modality
    if modality is None and text in {m.value for m in Modality}:
        modality = Modality(text)
    if modality is None:
        raise Invalid("the ServiceRequest's category names no diagnostic modality", field="ServiceRequest.category")
    code = sr.get("code") or {}
    item_code = next((c["code"] for c in code.get("coding") or [] if c.get("system") == ITEM_SYSTEM), None)
    performer = ((sr.get("performer") or [{}])[0]).get("reference", "")
    repeat = next((e.get("valueCode") for e in sr.get("extension") or [] if e.get("url") == EXT_REPEAT), None)
    try:
        priority = Priority(sr.get("priority", "routine"))
    except ValueError:
        raise Invalid("priority is routine, urgent or stat", field="ServiceRequest.priority") from None
    return OrderIn(
        patient=(sr.get("subject") or {}).get("reference", ""),
        modality=modality,
        item_code=item_code,
        item_name=None if item_code else code.get("text"),
        centre=performer.removeprefix("Organization/") or None,
        priority=priority,
        clinical_question=((sr.get("reasonCode") or [{}])[0]).get("text", ""),
        repeat_reason=repeat,
        patient_informed=repeat is not None,
    )


def to_task(order: OrderLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Task",
        "id": derived_id("task", order.id),
        "status": TASK_STATUS[order.state],
        "intent": "order",
        "priority": order.priority,
        "code": {"text": f"read {order.modality}"},
        "focus": {"reference": f"ServiceRequest/{order.id}"},
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
        "for": {"reference": order.patient_ref},
        "authoredOn": _iso(order.ordered_at),
        "lastModified": _iso(order.reported_at or order.received_at or order.ordered_at),
        "requester": _org(order.ordering_facility_id, names.get(order.ordering_facility_id, "")),
        "owner": _org(order.centre_facility_id, names.get(order.centre_facility_id, "")),
    }
    return res


def to_imaging_study(order: OrderLike, study: StudyLike) -> dict[str, Any]:
    uid = study.study_uid or dicom_uid(study.id)
    res: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": str(study.id),
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}],
        "status": "available",
        "subject": {"reference": order.patient_ref},
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
        "started": _iso(study.received_at),
        "description": study.description or study.filename or order.item_name,
    }
    if study.wado_url:
        res["extension"] = [{"url": EXT_WADO, "valueUrl": study.wado_url}]
    return res


def to_observations(order: OrderLike, study: StudyLike) -> list[dict[str, Any]]:
    out = []
    category = "laboratory" if order.modality == Modality.LAB else "procedure"
    for code, value in sorted(study.measurements.items()):
        m = MEASURES[code]
        coding = [{"system": MEASURE_SYSTEM, "code": code, "display": m.display}]
        if m.loinc:
            coding.insert(0, {"system": LOINC, "code": m.loinc, "display": m.display})
        out.append(
            {
                "resourceType": "Observation",
                "id": derived_id(f"obs/{code}", study.id),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
                "code": {"coding": coding, "text": m.display},
                "subject": {"reference": order.patient_ref},
                "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
                "effectiveDateTime": _iso(study.received_at),
                "valueQuantity": {"value": value, "unit": m.unit, "system": UCUM, "code": m.unit},
            }
        )
    return out


def to_diagnostic_report(
    order: OrderLike, report: ReportLike, studies: Sequence[StudyLike], names: Mapping[uuid.UUID, str]
) -> dict[str, Any]:
    modality = Modality(order.modality)
    results = [{"reference": f"Observation/{o['id']}"} for s in studies for o in to_observations(order, s)]
    imaging = [{"reference": f"ImagingStudy/{s.id}"} for s in studies if modality == Modality.IMAGING]
    res: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(report.id),
        "identifier": [{"system": ORDER_SYSTEM, "value": str(order.id)}],
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
        "status": getattr(report, "status", "final") or "final",
        "category": [{"coding": [{"system": V2_0074, "code": REPORT_SECTION[modality]}]}],
        "code": _item_code(order),
        "subject": {"reference": order.patient_ref},
        "effectiveDateTime": _iso(order.received_at or order.ordered_at),
        "issued": _iso(report.signed_at),
        "performer": [_org(order.centre_facility_id, names.get(order.centre_facility_id, ""))],
        "resultsInterpreter": [{"display": report.signed_by_name or report.signed_by}],
        "conclusion": report.conclusion,
    }
    if report.findings:
        res["presentedForm"] = [{"contentType": "text/plain", "title": "findings", "data": _b64(report.findings)}]
    if results:
        res["result"] = results
    if imaging:
        res["imagingStudy"] = imaging
    if getattr(report, "amend_reason", None):
        # R4 has no element for why a report was amended; the earlier version stays in the resource's history.
        res["extension"] = [{"url": EXT_AMEND, "valueString": report.amend_reason}]  # type: ignore[attr-defined]
    if report.recognised:
        res["meta"] = {"tag": [HR_TAG]}
    if report.critical:
        res["conclusionCode"] = [{"coding": [{"system": SNOMED, "code": "394848005", "display": "Critical"}]}]
    return res


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# -- teleconsultation --------------------------------------------------------------------------------------------------


class ConsultLike(Protocol):
    id: uuid.UUID
    kind: str
    patient_ref: str
    requesting_facility_id: uuid.UUID
    centre_facility_id: uuid.UUID
    requested_by: str
    specialty: str
    urgency: str
    question: str
    record_items: list[str]
    state: str
    experts: list[str]
    scheduled_at: datetime | None
    opinion: dict[str, Any]
    answered_by: str | None
    requested_at: datetime
    answered_at: datetime | None


URGENCY_PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
PRIORITY_URGENCY = {v: k for k, v in URGENCY_PRIORITY.items()}
CONSULT_STATUS = {"requested": "active", "scheduled": "active", "answered": "completed", "cancelled": "revoked"}


def to_consult_request(c: ConsultLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(c.id),
        "identifier": [{"system": CONSULT_SYSTEM, "value": str(c.id)}],
        "status": CONSULT_STATUS[c.state],
        "intent": "order",
        "category": [{"coding": [CONSULTATION], "text": "consultation"}],
        "priority": URGENCY_PRIORITY[c.urgency],
        "code": {"coding": [{"system": CONSULT_KIND_SYSTEM, "code": c.kind}], "text": c.specialty},
        "subject": {"reference": c.patient_ref},
        "authoredOn": _iso(c.requested_at),
        "requester": {"display": c.requested_by},
        "performer": [_org(c.centre_facility_id, names.get(c.centre_facility_id, ""))],
        "reasonCode": [{"text": c.question}],
        "extension": [
            {
                "url": EXT + "ordering-facility",
                "valueReference": _org(c.requesting_facility_id, names.get(c.requesting_facility_id, "")),
            }
        ],
    }
    if c.record_items:
        res["supportingInfo"] = [{"reference": ref} for ref in c.record_items]
    if c.scheduled_at:
        res["occurrenceDateTime"] = _iso(c.scheduled_at)
    return res


def from_consult_request(sr: Mapping[str, Any]) -> ConsultIn:
    if not any(
        cd.get("code") == CONSULTATION["code"] for cat in sr.get("category") or [] for cd in cat.get("coding") or []
    ):
        raise Invalid("a teleconsultation is a ServiceRequest of category 11429006", field="ServiceRequest.category")
    code = sr.get("code") or {}
    kind = next((cd["code"] for cd in code.get("coding") or [] if cd.get("system") == CONSULT_KIND_SYSTEM), None)
    performer = ((sr.get("performer") or [{}])[0]).get("reference", "")
    return ConsultIn(
        patient=(sr.get("subject") or {}).get("reference", ""),
        kind=ConsultKind(kind or "consultation"),
        specialty=code.get("text", ""),
        question=((sr.get("reasonCode") or [{}])[0]).get("text", ""),
        urgency=PRIORITY_URGENCY.get(sr.get("priority", "routine"), "routine"),
        record_items=[s["reference"] for s in sr.get("supportingInfo") or []],
        centre=performer.removeprefix("Organization/") or None,
    )


def to_consult_task(c: ConsultLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Task",
        "id": derived_id("consult-task", c.id),
        "status": TASK_STATUS[c.state],
        "intent": "order",
        "priority": URGENCY_PRIORITY[c.urgency],
        "code": {"coding": [CONSULTATION], "text": c.kind},
        "focus": {"reference": f"ServiceRequest/{c.id}"},
        "basedOn": [{"reference": f"ServiceRequest/{c.id}"}],
        "for": {"reference": c.patient_ref},
        "authoredOn": _iso(c.requested_at),
        "lastModified": _iso(c.answered_at or c.scheduled_at or c.requested_at),
        "requester": _org(c.requesting_facility_id, names.get(c.requesting_facility_id, "")),
        "owner": _org(c.centre_facility_id, names.get(c.centre_facility_id, "")),
    }
    if c.scheduled_at:
        res["restriction"] = {"period": {"start": _iso(c.scheduled_at)}}
    return res


def to_consult_report(c: ConsultLike, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    """The opinion as a DiagnosticReport in the patient's record (one opinion, several interpreters for an MDT)."""
    assert c.answered_at is not None
    op = c.opinion
    text = "\n".join(f"{k}: {op[k]}" for k in ("diagnosis", "advice", "follow_up", "text") if op.get(k))
    return {
        "resourceType": "DiagnosticReport",
        "id": derived_id("consult-report", c.id),
        "basedOn": [{"reference": f"ServiceRequest/{c.id}"}],
        "status": "final",
        "category": [{"coding": [CONSULTATION], "text": c.kind}],
        "code": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}], "text": c.specialty},
        "subject": {"reference": c.patient_ref},
        "effectiveDateTime": _iso(c.scheduled_at or c.answered_at),
        "issued": _iso(c.answered_at),
        "performer": [_org(c.centre_facility_id, names.get(c.centre_facility_id, ""))],
        "resultsInterpreter": [{"display": e} for e in c.experts],
        "conclusion": op.get("diagnosis", ""),
        "presentedForm": [{"contentType": "text/plain", "title": "opinion", "data": _b64(text)}],
    }
