"""Conditional update (`PUT Type?search`) and conditional delete (`DELETE Type?search`) by the R4 rules."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import FhirClient

SID = "urn:yilian:sid:cn-resident-id"
CARD = "11010519491231002X"


def _count(client: FhirClient, res_type: str, **params: str) -> int:
    return int(client.get(f"/fhir/{res_type}", params={**params, "_summary": "count"}).json()["total"])


def test_it_creates_then_updates_by_identifier(doctor: FhirClient, new_patient: Any) -> None:
    url = f"/fhir/Patient?identifier={SID}|{CARD}"
    created = doctor.put(url, json=new_patient())
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["Location"].endswith(f"/Patient/{pid}/_history/1")

    updated = doctor.put(url, json=new_patient(gender="other"))
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["gender"] == "other"
    assert _count(doctor, "Patient") == 1


def test_it_uses_the_bodys_id_when_nothing_matches_and_refuses_a_different_one_when_something_does(
    doctor: FhirClient, new_patient: Any
) -> None:
    wanted = str(uuid.uuid4())
    url = f"/fhir/Patient?identifier={SID}|{CARD}"
    r = doctor.put(url, json=new_patient(id=wanted))
    assert r.status_code == 201 and r.json()["id"] == wanted
    clash = doctor.put(url, json=new_patient(id="someone-else"))
    assert clash.status_code == 400
    assert clash.json()["issue"][0]["expression"] == ["Patient.id"]


def test_it_answers_412_when_several_match_and_400_without_criteria(doctor: FhirClient, new_patient: Any) -> None:
    for _ in range(2):
        assert doctor.post("/fhir/Patient", json=new_patient()).status_code == 201
    many = doctor.put("/fhir/Patient?family=张", json=new_patient(gender="female"))
    assert many.status_code == 412
    assert many.json()["issue"][0]["expression"] == ["url"]
    assert doctor.delete("/fhir/Patient?family=张").status_code == 412
    assert _count(doctor, "Patient", gender="female") == 0 and _count(doctor, "Patient") == 2

    everything = doctor.put("/fhir/Patient?_count=1", json=new_patient())
    assert everything.status_code == 400 and everything.json()["issue"][0]["expression"] == ["url"]
    assert doctor.delete("/fhir/Patient").status_code == 400
    unknown = doctor.put("/fhir/Patient?shoe-size=42", json=new_patient())
    assert unknown.status_code == 400 and unknown.json()["issue"][0]["expression"] == ["shoe-size"]
    injection = doctor.delete("/fhir/Patient?family=' OR 1=1 --")
    assert injection.status_code == 204 and _count(doctor, "Patient") == 2


def test_it_deletes_the_one_match_and_does_nothing_when_none_match(doctor: FhirClient, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    assert doctor.delete(f"/fhir/Patient?identifier={SID}|999999999999999999").status_code == 204
    assert _count(doctor, "Patient") == 1
    assert doctor.delete(f"/fhir/Patient?identifier={SID}|{CARD}").status_code == 204
    assert doctor.get(f"/fhir/Patient/{pid}").status_code == 410  # soft: history kept
    assert doctor.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200


def test_it_honours_if_match_on_a_conditional_update(doctor: FhirClient, new_patient: Any) -> None:
    doctor.post("/fhir/Patient", json=new_patient())
    url = f"/fhir/Patient?identifier={SID}|{CARD}"
    stale = doctor.put(url, json=new_patient(gender="female"), headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.json()["issue"][0]["expression"] == ["If-Match"]
    fresh = doctor.put(url, json=new_patient(gender="female"), headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 200


def test_it_runs_conditional_update_and_delete_in_a_transaction(doctor: FhirClient, new_patient: Any) -> None:
    doctor.post("/fhir/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "旧"},
                                            "identifier": [{"system": "urn:lab", "value": "old-1"}]})  # fmt: skip
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": new_patient(),
             "request": {"method": "PUT", "url": f"Patient?identifier={SID}|{CARD}"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "收缩压"},
                          "subject": {"reference": urn}},
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Observation?identifier=urn:lab|old-1"}},
        ],
    }  # fmt: skip
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "204 No Content"]
    pid = r.json()["entry"][0]["resource"]["id"]
    obs = r.json()["entry"][1]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{pid}"  # the urn of a conditional update resolves
    assert _count(doctor, "Observation", identifier="urn:lab|old-1") == 0

    # Run again: the conditional update now finds the patient (200), and an ambiguous one fails everything.
    again = doctor.post("/fhir", json=bundle)
    assert again.json()["entry"][0]["response"]["status"] == "200 OK"
    doctor.post("/fhir/Patient", json=new_patient())
    failing = doctor.post("/fhir", json=bundle)
    assert failing.status_code == 412
    assert failing.json()["issue"][0]["expression"] == ["Bundle.entry[0].request.url"]
    assert _count(doctor, "Observation") == 2  # nothing of the failed Bundle was saved
