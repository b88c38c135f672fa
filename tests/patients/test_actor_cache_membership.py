"""A doctor's consortia are part of the remembered actor: joining one opens its records on the next request."""

from __future__ import annotations

from yilian.db import unit_of_work
from yilian.network import service as network
from yilian.network.schemas import ConsortiumIn, MemberIn

ZHANG = {"name": "张伟明", "gender": "male", "birth_date": "1962-03-07", "phone": "13803570001"}


def test_a_hospital_joining_the_consortium_opens_a_restricted_record_on_the_next_request(http, fresh) -> None:
    made = http.post("/api/v1/patients", json=ZHANG, headers=fresh.auth("village"))
    assert made.status_code == 201, made.text
    person, ref = made.json()["person"], made.json()["record"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": ref},
        "effectiveDateTime": "2026-10-05T10:00:00+08:00",
    }
    fhir = {**fresh.auth("village"), "Content-Type": "application/fhir+json"}
    assert http.post("/fhir/Observation", json=obs, headers=fhir).status_code == 201
    restrict = http.put(
        f"/api/v1/patients/persons/{person}/consent",
        json={"share_outside_consortium": False},
        headers=fresh.auth("village"),
    )
    assert restrict.status_code == 200, restrict.text
    search = f"/fhir/Observation?patient={ref}"
    denied = http.get(search, headers=fresh.auth("city"))  # the city doctor's actor is now remembered
    assert denied.status_code == 403
    assert denied.json()["resourceType"] == "OperationOutcome"

    with unit_of_work() as session:  # the city hospital and the village clinic form a telemedicine network
        network.create_consortium(
            session,
            ConsortiumIn(
                name="远程医疗协作网",
                form="telemedicine_network",
                lead_facility_id="YC-CH",
                members=[MemberIn(facility_id="YC-CH", role="lead"), MemberIn(facility_id="HT-V01")],
            ),
        )
    opened = http.get(search, headers=fresh.auth("city"))
    assert opened.status_code == 200, opened.text
    assert opened.json()["total"] == 1
