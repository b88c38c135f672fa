"""Domain write hooks: a referral Task inside a transaction Bundle starts a referral (and rolls back with it); Patients
written through /fhir or imported reach the master patient index at write time; a deleted Patient leaves it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from yilian.cli import app
from yilian.db import read_session, unit_of_work
from yilian.network import service as network
from yilian.network.models import Division
from yilian.network.schemas import ConsortiumIn, FacilityIn, MemberIn
from yilian.patients.models import MpiLink, MpiRecord
from yilian.security import service as security
from yilian.security import tokens

from .conftest import FhirClient, patient

SNOMED_REFERRAL = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}


@pytest.fixture
def township(http: Any, clean_db: Any) -> FhirClient:
    """A township doctor in a county medical community (township centre + county hospital): a referral sender."""
    with unit_of_work() as session:
        for code, name, level, parent in (
            ("14", "山西省", "province", None),
            ("1410", "临汾市", "city", "14"),
            ("141023", "襄汾县", "county", "1410"),
        ):
            session.add(Division(code=code, name=name, level=level, parent_code=parent, lon=111.4, lat=35.9))
        session.flush()
        county = network.create_facility(
            session,
            FacilityIn(code="T-county", name="襄汾县人民医院", level="county_hospital", division_code="141023",
                       lon=111.44, lat=35.88, departments=["内分泌科", "急诊科"]),
        )  # fmt: skip
        town = network.create_facility(
            session,
            FacilityIn(code="T-town", name="新城镇卫生院", level="township_centre", division_code="141023",
                       lon=111.40, lat=35.85, departments=["全科医学科"], parent_id=county.id),
        )  # fmt: skip
        network.create_consortium(
            session,
            ConsortiumIn(name="襄汾县医共体", form="county_medical_community", lead_facility_id=str(county.id),
                         division_code="141023",
                         members=[MemberIn(facility_id=str(county.id), role="lead"),
                                  MemberIn(facility_id=str(town.id))]),
        )  # fmt: skip
        security.create_user(
            session, username="dr.town", password="longenough", role="township_doctor", facility_id=town.id
        )
    return FhirClient(http, tokens.issue("dr.town"))


def _referral_bundle(*, extra: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    patient_urn, sr_urn, task_urn = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    entries = [
        # The Task comes first on purpose: the ServiceRequest it is based on must still be there when it runs.
        {
            "fullUrl": task_urn,
            "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                         "basedOn": [{"reference": sr_urn}], "for": {"reference": patient_urn}},
            "request": {"method": "POST", "url": "Task"},
        },
        {
            "fullUrl": sr_urn,
            "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                         "category": [SNOMED_REFERRAL], "priority": "urgent",
                         "code": {"text": "血糖控制不佳，HbA1c 10.2%"},
                         "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]}],
                         "subject": {"reference": patient_urn}},
            "request": {"method": "POST", "url": "ServiceRequest"},
        },
        {
            "fullUrl": patient_urn,
            "resource": {"resourceType": "Patient", "name": [{"text": "李秀英"}], "gender": "female",
                         "birthDate": "1962-05-04"},
            "request": {"method": "POST", "url": "Patient"},
        },
        *(extra or []),
    ]  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, task_urn.removeprefix("urn:uuid:")


def _referrals(client: FhirClient) -> list[dict[str, Any]]:
    r = client.http.get("/api/v1/referrals", headers={"Authorization": client.headers["Authorization"]})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_it_starts_a_referral_from_a_transaction_bundle_with_a_service_request_and_task(township: FhirClient) -> None:
    bundle, task_id = _referral_bundle()
    r = township.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    task_entry = r.json()["entry"][0]
    assert task_entry["response"]["status"] == "201 Created"
    assert task_entry["resource"]["businessStatus"]["coding"][0]["code"] == "submitted"
    assert task_entry["resource"]["id"] == task_id  # the Bundle's urn:uuid, so the other entries' references hold

    referrals = _referrals(township)
    assert len(referrals) == 1
    referral = referrals[0]
    assert referral["state"] == "submitted" and referral["task"] == f"Task/{task_id}"
    assert referral["service_request"] == r.json()["entry"][1]["response"]["location"].rsplit("/_history", 1)[0]
    assert referral["patient"] == r.json()["entry"][2]["response"]["location"].rsplit("/_history", 1)[0]
    task = township.get(f"/fhir/Task/{task_id}").json()
    assert task["restriction"]["period"]["end"]  # the acceptance SLA the referral domain set


def test_it_saves_no_referral_when_a_later_entry_of_the_transaction_fails(township: FhirClient) -> None:
    bad = {
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "yesterday"},
        "request": {"method": "POST", "url": "Observation"},
    }
    bundle, _ = _referral_bundle(extra=[bad])
    r = township.post("/fhir", json=bundle)
    assert r.status_code in (400, 422), r.text
    assert r.json()["issue"][0]["expression"][0].startswith("Bundle.entry[3]")
    assert _referrals(township) == []
    for res_type in ("Task", "ServiceRequest", "Patient"):
        assert township.get(f"/fhir/{res_type}", params={"_summary": "count"}).json()["total"] == 0


def test_it_keeps_an_ordinary_task_in_a_transaction_an_ordinary_resource(township: FhirClient) -> None:
    task = {"resourceType": "Task", "status": "requested", "intent": "plan", "description": "随访电话"}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": task, "request": {"method": "POST", "url": "Task"}}]}  # fmt: skip
    r = township.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["description"] == "随访电话"
    assert _referrals(township) == []


# --- the master patient index hears Patient writes ---------------------------------------------------------------------


def _person_of(ref: str) -> Any:
    with read_session() as session:
        record = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == ref))
        return record.person_id if record else None


def test_it_links_a_patient_posted_to_fhir_in_the_same_request(doctor: FhirClient) -> None:
    first = doctor.post("/fhir/Patient", json=patient())
    # The same resident ID card at another facility, written with a traditional character: one person.
    second = doctor.post("/fhir/Patient", json=patient(name=[{"family": "張", "given": ["三丰"]}]))
    assert first.status_code == second.status_code == 201
    a, b = f"Patient/{first.json()['id']}", f"Patient/{second.json()['id']}"
    assert _person_of(a) is not None  # indexed by the write itself, before anyone searched
    assert _person_of(a) == _person_of(b)


def test_it_links_patients_of_a_transaction_and_forgets_a_deleted_one(doctor: FhirClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}} for _ in range(2)],
    }
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    a, b = (e["response"]["location"].rsplit("/_history", 1)[0] for e in r.json()["entry"])
    assert _person_of(a) == _person_of(b) is not None

    assert doctor.delete(f"/fhir/{b}").status_code == 204
    assert _person_of(b) is None  # left the index
    assert _person_of(a) is not None
    with read_session() as session:
        actions = [x.action for x in session.scalars(select(MpiLink).where(MpiLink.patient_ref == b))]
    assert actions[-1] == "unlink"  # the history says it left


def test_it_updates_the_index_when_a_patient_is_updated_through_fhir(doctor: FhirClient) -> None:
    alone = doctor.post("/fhir/Patient", json=patient(identifier=[], name=[{"text": "王小明"}], birthDate="1980-01-02"))
    other = doctor.post("/fhir/Patient", json=patient())
    pid = other.json()["id"]
    assert _person_of(f"Patient/{pid}") != _person_of(f"Patient/{alone.json()['id']}")
    with read_session() as session:
        before = session.scalar(select(MpiRecord.name).where(MpiRecord.patient_ref == f"Patient/{pid}"))
    changed = {**other.json(), "name": [{"family": "李", "given": ["四"]}]}
    assert doctor.put(f"/fhir/Patient/{pid}", json=changed).status_code == 200
    with read_session() as session:
        after = session.scalar(select(MpiRecord.name).where(MpiRecord.patient_ref == f"Patient/{pid}"))
    assert before == "张三丰" and after == "李四"


def test_it_links_imported_patients_when_the_import_finishes(tmp_path: Path, http: Any, clean_db: Any) -> None:
    rows = [patient(id=str(uuid.uuid4())) for _ in range(2)]
    rows.append(patient(id=str(uuid.uuid4()), identifier=[], name=[{"text": "赵六"}], birthDate="1990-02-03"))
    path = tmp_path / "Patient.ndjson"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["fhir", "import", str(path), "--report", str(tmp_path / "rejected.ndjson")])
    assert result.exit_code == 0, result.output
    refs = [f"Patient/{r['id']}" for r in rows]
    assert _person_of(refs[0]) == _person_of(refs[1]) is not None
    assert _person_of(refs[2]) not in (None, _person_of(refs[0]))


def test_it_links_a_large_import_in_one_batch_at_the_end(
    tmp_path: Path, http: Any, clean_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yilian.patients import service

    # Above this many new Patients the import links with Splink over the whole store instead of one by one; lowered
    # here so that three records take that path.
    monkeypatch.setattr(service, "CATCH_UP_ONE_BY_ONE", 1)
    rows = [patient(id=str(uuid.uuid4())) for _ in range(2)]
    rows.append(patient(id=str(uuid.uuid4()), identifier=[], name=[{"text": "赵六"}], birthDate="1990-02-03"))
    path = tmp_path / "Patient.ndjson"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["fhir", "import", str(path), "--report", str(tmp_path / "rejected.ndjson")])
    assert result.exit_code == 0, result.output
    refs = [f"Patient/{r['id']}" for r in rows]
    assert _person_of(refs[0]) == _person_of(refs[1]) is not None
    assert _person_of(refs[2]) not in (None, _person_of(refs[0]))
    with read_session() as session:
        methods = {x.method for x in session.scalars(select(MpiLink).where(MpiLink.patient_ref.in_(refs)))}
    assert "exact-id" in methods  # linked by the batch on the shared resident ID card


def test_it_starts_a_referral_from_a_batch_bundle_entry(township: FhirClient) -> None:
    patient_id = township.post(
        "/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "王芳"}], "gender": "female"}
    ).json()["id"]
    sr = township.post(
        "/fhir/ServiceRequest",
        json={"resourceType": "ServiceRequest", "status": "active", "intent": "order", "category": [SNOMED_REFERRAL],
              "code": {"text": "血压控制不佳"}, "subject": {"reference": f"Patient/{patient_id}"}},
    ).json()["id"]  # fmt: skip
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "basedOn": [{"reference": f"ServiceRequest/{sr}"}],
        "for": {"reference": f"Patient/{patient_id}"},
    }
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": task, "request": {"method": "POST", "url": "Task"}},
        # A referral starts as requested: the referral domain refuses this one, naming Task.status.
        {"resource": {**task, "status": "completed"}, "request": {"method": "POST", "url": "Task"}},
    ]}  # fmt: skip
    r = township.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert first["resource"]["businessStatus"]["coding"][0]["code"] == "submitted"
    assert second["response"]["status"] in ("400", "422")  # reported in place, the first one kept
    assert second["response"]["outcome"]["issue"][0]["expression"] == ["Task.status"]
    assert [x["task"] for x in _referrals(township)] == [f"Task/{first['resource']['id']}"]
