"""Batch and transaction Bundles at POST /fhir."""

from __future__ import annotations

import uuid
from typing import Any


def _count(client: Any, res_type: str) -> int:
    return int(client.get(f"/fhir/{res_type}", params={"_summary": "count"}).json()["total"])


def _transaction(entries: list[dict[str, Any]], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_it_commits_a_transaction_and_resolves_urn_uuid_references(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    obs = new_observation("placeholder")
    obs["subject"] = {"reference": urn}
    bundle = _transaction(
        [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
            {"fullUrl": urn, "resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created", "201 Created"]
    patient_id = urn.removeprefix("urn:uuid:")  # the urn's uuid becomes the id, so references stay readable
    assert body["entry"][1]["response"]["location"].startswith(f"Patient/{patient_id}/_history/1")
    found = doctor.get("/fhir/Observation", params={"patient": patient_id}).json()
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"


def test_it_leaves_nothing_behind_when_a_transaction_entry_is_invalid(doctor: Any, new_patient: Any) -> None:
    bundle = _transaction(
        [
            {"resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": new_patient(birthDate="not-a-date"), "request": {"method": "POST", "url": "Patient"}},
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert "nothing was saved" in issue["diagnostics"]
    assert _count(doctor, "Patient") == 0


def test_it_runs_put_delete_and_get_in_a_transaction(doctor: Any, new_patient: Any) -> None:
    gone = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    bundle = _transaction(
        [
            {"resource": new_patient(id="p-1"), "request": {"method": "PUT", "url": "Patient/p-1"}},
            {"request": {"method": "DELETE", "url": f"Patient/{gone}"}},
            {"request": {"method": "GET", "url": "Patient?_id=p-1"}},
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created", "204 No Content", "200 OK"]
    assert r.json()["entry"][2]["resource"]["total"] == 1
    assert doctor.get(f"/fhir/Patient/{gone}").status_code == 410


def test_it_reports_each_batch_entry_on_its_own(doctor: Any, new_patient: Any) -> None:
    bundle = _transaction(
        [
            {"resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": new_patient(gender=7), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"resource": {"resourceType": "Spaceship"}, "request": {"method": "POST", "url": "Spaceship"}},
        ],
        kind="batch",
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["201", "422", "404", "404"]
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"] == ["Patient.gender"]
    assert _count(doctor, "Patient") == 1


def test_it_refuses_bundles_that_are_not_batches_or_transactions(doctor: Any, new_patient: Any) -> None:
    assert doctor.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}).status_code == 400
    assert doctor.post("/fhir", json=new_patient()).status_code == 400
    no_request = _transaction([{"resource": new_patient()}])
    r = doctor.post("/fhir", json=no_request)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
