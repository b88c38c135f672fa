"""Create, read, update, delete, history and access through the real /fhir API."""

from __future__ import annotations

from typing import Any

from yilian.db import read_session
from yilian.security.models import AuditEvent


def test_it_publishes_a_capability_statement_without_a_token(http: Any) -> None:
    r = http.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "CapabilityStatement"
    types = {res["type"]: res for res in body["rest"][0]["resource"]}
    for wanted in (
        "Patient",
        "Observation",
        "Organization",
        "Location",
        "HealthcareService",
        "PractitionerRole",
        "OrganizationAffiliation",
        "Task",
        "MeasureReport",
    ):
        assert wanted in types
    assert {"name": "birthdate", "type": "date"} in types["Patient"]["searchParam"]


def test_it_refuses_every_resource_route_without_a_token(http: Any, clean_db: Any) -> None:
    r = http.get("/fhir/Patient")
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "login"


def test_it_creates_reads_updates_and_deletes_a_patient_keeping_history(doctor: Any, new_patient: Any) -> None:
    created = doctor.post("/fhir/Patient", json=new_patient())
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["location"].endswith(f"/fhir/Patient/{pid}/_history/1")
    assert created.json()["meta"]["versionId"] == "1"

    read = doctor.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200
    assert read.json()["name"][0]["family"] == "张"

    changed = {**read.json(), "gender": "female"}
    stale = doctor.put(f"/fhir/Patient/{pid}", json=changed, headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    updated = doctor.put(f"/fhir/Patient/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'

    assert doctor.get(f"/fhir/Patient/{pid}/_history/1").json()["gender"] == "male"
    assert doctor.get(f"/fhir/Patient/{pid}/_history/2").json()["gender"] == "female"

    assert doctor.delete(f"/fhir/Patient/{pid}").status_code == 204
    gone = doctor.get(f"/fhir/Patient/{pid}")
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    history = doctor.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["type"] == "history"
    assert history["total"] == 3
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert doctor.get("/fhir/Patient", params={"_id": pid}).json()["total"] == 0


def test_it_creates_a_resource_with_put_when_the_id_is_new(doctor: Any, new_patient: Any) -> None:
    r = doctor.put("/fhir/Patient/village-0001", json=new_patient(id="village-0001"))
    assert r.status_code == 201
    assert doctor.get("/fhir/Patient/village-0001").status_code == 200


def test_it_creates_only_once_with_if_none_exist(doctor: Any, new_patient: Any) -> None:
    condition = {"If-None-Exist": "identifier=urn:yilian:sid:cn-resident-id|11010519491231002X"}
    first = doctor.post("/fhir/Patient", json=new_patient(), headers=condition)
    second = doctor.post("/fhir/Patient", json=new_patient(), headers=condition)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert doctor.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 1


def test_it_audits_reads_and_searches_of_patient_data(doctor: Any, new_patient: Any, new_observation: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    doctor.post("/fhir/Observation", json=new_observation(pid))
    doctor.get(f"/fhir/Patient/{pid}")
    doctor.get("/fhir/Observation", params={"patient": pid})
    with read_session() as session:
        rows = session.query(AuditEvent).filter(AuditEvent.patient_ref == f"Patient/{pid}").all()
    actions = {r.action for r in rows}
    assert {"fhir.read", "fhir.search", "fhir.create"} <= actions
    assert all(r.username == "dr.li" for r in rows)


def test_it_forbids_an_insurance_officer_to_read_patient_records_but_not_the_registry(
    doctor: Any, insurer: Any, admin: Any, new_patient: Any
) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    denied = insurer.get(f"/fhir/Patient/{pid}")
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"
    assert insurer.get("/fhir/Observation").status_code == 403

    org = {"resourceType": "Organization", "name": "盐陵县人民医院", "active": True}
    assert doctor.post("/fhir/Organization", json=org).status_code == 403  # registry: administrators only
    oid = admin.post("/fhir/Organization", json=org).json()["id"]
    assert insurer.get(f"/fhir/Organization/{oid}").status_code == 200
    assert insurer.get("/fhir/Organization", params={"name": "盐陵"}).json()["total"] == 1


def test_it_lets_the_patients_domain_replace_the_access_policy(doctor: Any, new_patient: Any) -> None:
    from yilian.errors import Forbidden
    from yilian.fhir import access

    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]

    def consent_says_no(session: Any, actor: Any, action: str, res_type: str, patient: str | None) -> None:
        if patient == f"Patient/{pid}":
            raise Forbidden("the patient restricted sharing", field="Patient")

    installed = access._policy  # whatever the app installed (the patients domain's policy): put it back after
    access.register_policy(consent_says_no)
    try:
        assert doctor.get(f"/fhir/Patient/{pid}").status_code == 403
    finally:
        access.register_policy(installed)
    assert doctor.get(f"/fhir/Patient/{pid}").status_code == 200


def test_it_returns_the_patients_whole_compartment_with_everything(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    other = doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"]
    for code in ("8480-6", "8462-4"):
        doctor.post("/fhir/Observation", json=new_observation(pid, code))
    doctor.post("/fhir/Observation", json=new_observation(other))
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    doctor.post("/fhir/Encounter", json=enc)
    bundle = doctor.get(f"/fhir/Patient/{pid}/$everything").json()
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds == ["Encounter", "Observation", "Observation", "Patient"]
    assert bundle["total"] == 4


def test_it_validates_without_storing(doctor: Any, new_patient: Any) -> None:
    ok = doctor.post("/fhir/Patient/$validate", json=new_patient())
    assert ok.status_code == 200
    assert ok.json()["issue"][0]["severity"] == "information"
    bad = doctor.post("/fhir/Patient/$validate", json=new_patient(birthDate="1949-02-30x"))
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Patient.birthDate"]
    assert doctor.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0
