"""Bulk export with the asynchronous pattern: 202 + Content-Location, poll, NDJSON files."""

from __future__ import annotations

import json
import time
from typing import Any


def _wait(client: Any, location: str) -> Any:
    for _ in range(100):
        r = client.get(location)
        if r.status_code != 202:
            return r
        time.sleep(0.1)
    raise AssertionError("export did not finish")


def test_it_exports_every_type_as_ndjson_files(admin: Any, doctor: Any, new_patient: Any, new_observation: Any) -> None:
    pids = [doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"] for _ in range(3)]
    for pid in pids:
        doctor.post("/fhir/Observation", json=new_observation(pid))
    admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "县医院"})

    kick = admin.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert kick.status_code == 202, kick.text
    done = _wait(admin, kick.headers["content-location"])
    assert done.status_code == 200, done.text
    manifest = done.json()
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"Observation": 3, "Organization": 1, "Patient": 3}
    patients_file = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    lines = admin.get(patients_file).text.strip().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(pids)


def test_it_exports_a_groups_patients_only(admin: Any, doctor: Any, new_patient: Any, new_observation: Any) -> None:
    inside, outside = (doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"] for _ in range(2))
    doctor.post("/fhir/Observation", json=new_observation(inside))
    doctor.post("/fhir/Observation", json=new_observation(outside))
    group = admin.post(
        "/fhir/Group",
        json={
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{inside}"}}],
        },
    ).json()["id"]
    kick = admin.get(f"/fhir/Group/{group}/$export", params={"_type": "Patient,Observation"})
    manifest = _wait(admin, kick.headers["content-location"]).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Observation": 1, "Patient": 1}


def test_it_keeps_bulk_export_for_administrators(doctor: Any) -> None:
    r = doctor.get("/fhir/$export")
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"
    assert doctor.get("/fhir/$export-status/not-a-job").status_code == 404


def test_it_exports_every_patients_compartment_at_the_patient_level(
    admin: Any, doctor: Any, new_patient: Any, new_observation: Any
) -> None:
    pid = doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"]
    doctor.post("/fhir/Observation", json=new_observation(pid))
    admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "县医院"})  # not patient data
    kick = admin.get("/fhir/Patient/$export")
    assert kick.status_code == 202
    manifest = _wait(admin, kick.headers["content-location"]).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Observation": 1, "Patient": 1}
