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


def test_it_undoes_the_whole_transaction_when_an_if_match_is_stale(doctor: Any, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"]
    current = doctor.get(f"/fhir/Patient/{pid}").json()
    bundle = _transaction(
        [
            {"resource": new_patient(identifier=[]), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {**current, "gender": "female"},
                "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'},
            },
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 412, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.ifMatch"]
    assert _count(doctor, "Patient") == 1
    assert doctor.get(f"/fhir/Patient/{pid}").json()["gender"] == "male"


def test_it_points_references_at_the_existing_resource_when_if_none_exist_matches(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    existing = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    urn = f"urn:uuid:{uuid.uuid4()}"
    obs = {**new_observation("x"), "subject": {"reference": urn}}
    bundle = _transaction(
        [
            {
                "fullUrl": urn,
                "resource": new_patient(),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=urn:yilian:sid:cn-resident-id|11010519491231002X",
                },
            },
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["200 OK", "201 Created"]
    assert r.json()["entry"][0]["resource"]["id"] == existing
    assert _count(doctor, "Patient") == 1
    found = doctor.get("/fhir/Observation", params={"patient": existing}).json()
    assert found["total"] == 1


def test_it_resolves_conditional_references_and_refuses_ambiguous_ones(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    obs = {**new_observation("x"), "subject": {"reference": "Patient?identifier=11010519491231002X"}}
    r = doctor.post(
        "/fhir", json=_transaction([{"resource": obs, "request": {"method": "POST", "url": "Observation"}}])
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"

    doctor.post("/fhir/Patient", json=new_patient())  # now two people carry that number
    r = doctor.post(
        "/fhir", json=_transaction([{"resource": obs, "request": {"method": "POST", "url": "Observation"}}])
    )
    assert r.status_code == 412, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource"]
    assert _count(doctor, "Observation") == 1


def test_it_refuses_a_transaction_that_changes_one_resource_twice(doctor: Any, new_patient: Any) -> None:
    bundle = _transaction(
        [
            {"resource": new_patient(id="p-2"), "request": {"method": "PUT", "url": "Patient/p-2"}},
            {"request": {"method": "DELETE", "url": "Patient/p-2"}},
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.url"]
    assert _count(doctor, "Patient") == 0


def test_it_lists_history_for_a_type_and_the_whole_system(doctor: Any, admin: Any, new_patient: Any) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    doctor.delete(f"/fhir/Patient/{pid}")
    admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "县医院"})
    by_type = doctor.get("/fhir/Patient/_history").json()
    assert [e["request"]["method"] for e in by_type["entry"]] == ["DELETE", "POST"]
    system = doctor.get("/fhir/_history", params={"_count": "2"}).json()
    assert system["type"] == "history"
    assert system["total"] == 3
    assert [e["fullUrl"].split("/fhir/")[1].split("/")[0] for e in system["entry"]] == ["Organization", "Patient"]
    assert any(link["relation"] == "next" for link in system["link"])


def test_it_writes_a_large_transaction_with_every_reference_and_index_in_place(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    # Plain creates of a transaction are written together; every one must still be readable, searchable and linked.
    patients = [f"urn:uuid:{uuid.uuid4()}" for _ in range(5)]
    entries = [
        {"fullUrl": urn, "resource": new_patient(identifier=[]), "request": {"method": "POST", "url": "Patient"}}
        for urn in patients
    ]
    for n in range(40):
        obs = {**new_observation("x", value=100 + n), "subject": {"reference": patients[n % 5]}}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    r = doctor.post("/fhir", json=_transaction(entries))
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created"] * 45
    for urn in patients:
        found = doctor.get("/fhir/Observation", params={"patient": urn.removeprefix("urn:uuid:"), "code": "8480-6"})
        assert found.json()["total"] == 8
    assert doctor.get("/fhir/Observation", params={"value-quantity": "139", "_summary": "count"}).json()["total"] == 1


def test_it_leaves_nothing_behind_when_an_entry_late_in_a_large_transaction_is_invalid(
    doctor: Any, new_patient: Any
) -> None:
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": new_patient(identifier=[]),
            "request": {"method": "POST", "url": "Patient"},
        }
        for _ in range(30)
    ]
    entries[27]["resource"]["gender"] = "robot"
    r = doctor.post("/fhir", json=_transaction(entries))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["expression"][0].startswith("Bundle.entry[27]")
    assert _count(doctor, "Patient") == 0


def test_it_resolves_a_conditional_reference_to_a_patient_created_earlier_in_the_transaction(
    doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    obs = {**new_observation("x"), "subject": {"reference": "Patient?identifier=11010519491231002X"}}
    bundle = _transaction(
        [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": new_patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
        ]
    )
    r = doctor.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    patient_id = r.json()["entry"][0]["resource"]["id"]
    assert r.json()["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
