"""The FHIR face: every translator's output validates as R4 (fhir.resources R4B) and reads back into a draft."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fhir.resources.R4B import get_fhir_model_class

from yilian.diagnostics import fhir

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SITE, CENTRE = uuid.uuid4(), uuid.uuid4()
NAMES = {SITE: "东庄村卫生室", CENTRE: "洪洞县人民医院"}


def order(**kw):  # type: ignore[no-untyped-def]
    base = dict(id=uuid.uuid4(), patient_ref="Patient/p1", ordering_facility_id=SITE, centre_facility_id=CENTRE,
                ordered_by="village", modality="ecg", item_code="ECG-12", item_name="常规十二导联心电图",
                priority="urgent", clinical_question="胸闷", state="received", repeat_reason="emergency",
                patient_informed=True, ordered_at=T0, received_at=T0, reported_at=None)  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def study(**kw):  # type: ignore[no-untyped-def]
    base = dict(id=uuid.uuid4(), source="upload", content_type="application/pdf", filename="ecg.pdf", study_uid=None,
                wado_url=None, description=None, measurements={"heart_rate": 72.0, "qtc": 430.0}, received_at=T0)  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def valid(resource: dict) -> dict:  # type: ignore[type-arg]
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def test_it_round_trips_an_order_through_service_request() -> None:
    o = order()
    sr = valid(fhir.to_service_request(o, NAMES))
    draft = fhir.from_service_request(sr)
    assert draft.patient == o.patient_ref and draft.modality == "ecg" and draft.item_code == "ECG-12"
    assert draft.centre == str(CENTRE) and draft.priority == "urgent" and draft.clinical_question == "胸闷"
    assert draft.repeat_reason == "emergency" and draft.patient_informed
    assert sr["code"]["coding"][0] == {"system": fhir.LOINC, "code": "11524-6", "display": "12-lead ECG"}
    assert valid(fhir.to_task(o, NAMES))["status"] == "in-progress"


def test_it_writes_imaging_studies_observations_and_hr_tagged_reports() -> None:
    o = order(modality="imaging", item_code="CT-HEAD", item_name="头颅CT平扫", state="reported", reported_at=T0)
    s = study(
        measurements={},
        study_uid="1.2.840.113619.2.55.3",
        wado_url="http://pacs/dicom-web/studies/1.2.840.113619.2.55.3",
    )
    img = valid(fhir.to_imaging_study(o, s))
    assert img["identifier"][0]["value"] == "urn:oid:1.2.840.113619.2.55.3"
    report = SimpleNamespace(id=uuid.uuid4(), findings="未见异常", conclusion="颅内未见明显异常", critical=False,
                             recognised=True, signed_by_name="赵医生", signed_by="reader", signed_at=T0)  # fmt: skip
    dr = valid(fhir.to_diagnostic_report(o, report, [s], NAMES))
    assert dr["meta"]["tag"] == [fhir.HR_TAG] and dr["imagingStudy"] == [{"reference": f"ImagingStudy/{s.id}"}]
    assert dr["category"][0]["coding"][0]["code"] == "RAD"
    ecg = order(state="reported", reported_at=T0)
    obs = [valid(r) for r in fhir.to_observations(ecg, study())]
    assert {r["code"]["coding"][0]["code"] for r in obs} == {"8867-4", "8636-3"}
    assert dicom_uid_ok(fhir.dicom_uid(uuid.uuid4()))


def dicom_uid_ok(uid: str) -> bool:
    return len(uid) <= 64 and uid.startswith("2.25.") and uid.replace(".", "").isdigit()


def test_it_round_trips_a_teleconsultation_and_its_opinion() -> None:
    c = SimpleNamespace(id=uuid.uuid4(), kind="mdt", patient_ref="Patient/p1", requesting_facility_id=SITE,
                        centre_facility_id=CENTRE, requested_by="township", specialty="心内科", urgency="urgent",
                        question="反复胸痛，是否需要介入？", record_items=["Observation/o1"], state="answered",
                        experts=["expert", "expert2"], scheduled_at=T0, opinion={"diagnosis": "不稳定型心绞痛"},
                        answered_by="expert", requested_at=T0, answered_at=T0)  # fmt: skip
    sr = valid(fhir.to_consult_request(c, NAMES))
    assert sr["category"][0]["coding"][0]["code"] == "11429006"
    back = fhir.from_consult_request(sr)
    assert (back.kind, back.specialty, back.urgency, back.record_items) == (
        "mdt",
        "心内科",
        "urgent",
        ["Observation/o1"],
    )
    assert back.question == c.question and back.centre == str(CENTRE)
    valid(fhir.to_consult_task(c, NAMES))
    dr = valid(fhir.to_consult_report(c, NAMES))
    assert dr["conclusion"] == "不稳定型心绞痛" and len(dr["resultsInterpreter"]) == 2


def test_it_refuses_a_service_request_without_a_diagnostic_modality() -> None:
    from yilian.errors import Invalid

    with pytest.raises(Invalid) as e:
        fhir.from_service_request({"resourceType": "ServiceRequest", "category": [{"text": "diet"}]})
    assert e.value.field == "ServiceRequest.category"
