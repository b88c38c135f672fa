"""Chained (`subject:Patient.identifier`, `patient.name`) and reverse-chained (`_has`) search; `_elements` and
`_summary` trimming with the SUBSETTED tag."""

from __future__ import annotations

import pytest

from .conftest import FhirClient, observation, patient

SID = "urn:yilian:sid:cn-resident-id"
CARD = "11010519491231002X"


@pytest.fixture
def two_patients(doctor: FhirClient) -> dict[str, str]:
    zhang = doctor.post("/fhir/Patient", json=patient(maritalStatus={"text": "已婚"})).json()["id"]
    li = doctor.post(
        "/fhir/Patient", json=patient(identifier=[], name=[{"family": "李", "given": ["四"]}], birthDate="1970-01-01")
    ).json()["id"]
    ids = {"zhang": zhang, "li": li}
    ids["zhang_sbp"] = doctor.post("/fhir/Observation", json=observation(zhang, "8480-6", 165)).json()["id"]
    ids["zhang_dbp"] = doctor.post("/fhir/Observation", json=observation(zhang, "8462-4", 95)).json()["id"]
    ids["li_dbp"] = doctor.post("/fhir/Observation", json=observation(li, "8462-4", 80)).json()["id"]
    return ids


def _ids(client: FhirClient, url: str, **params: str) -> set[str]:
    r = client.get(url, params=params)
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


def test_it_finds_observations_by_their_patients_identifier_and_name(
    doctor: FhirClient, two_patients: dict[str, str]
) -> None:
    p = two_patients
    assert _ids(doctor, "/fhir/Observation", **{"subject:Patient.identifier": f"{SID}|{CARD}"}) == {
        p["zhang_sbp"],
        p["zhang_dbp"],
    }
    assert _ids(doctor, "/fhir/Observation", **{"patient.name": "李"}) == {p["li_dbp"]}
    assert _ids(doctor, "/fhir/Observation", **{"subject.name": "zhangsanfeng"}) == {p["zhang_sbp"], p["zhang_dbp"]}
    # Chained and plain parameters AND together.
    both = {"patient.name": "张", "code": "http://loinc.org|8462-4"}
    assert _ids(doctor, "/fhir/Observation", **both) == {p["zhang_dbp"]}
    # A deleted patient's observations are no longer reached through the chain.
    assert doctor.delete(f"/fhir/Patient/{p['li']}").status_code == 204
    assert _ids(doctor, "/fhir/Observation", **{"patient.name": "李"}) == set()


def test_it_finds_patients_by_their_observations_with_has(doctor: FhirClient, two_patients: dict[str, str]) -> None:
    p = two_patients
    systolic = {"_has:Observation:patient:code": "http://loinc.org|8480-6"}
    assert _ids(doctor, "/fhir/Patient", **systolic) == {p["zhang"]}
    diastolic = {"_has:Observation:patient:code": "8462-4"}
    assert _ids(doctor, "/fhir/Patient", **diastolic) == {p["zhang"], p["li"]}
    high = {"_has:Observation:subject:value-quantity": "gt90"}
    assert _ids(doctor, "/fhir/Patient", **high) == {p["zhang"]}
    assert doctor.delete(f"/fhir/Observation/{p['zhang_sbp']}").status_code == 204
    assert _ids(doctor, "/fhir/Patient", **systolic) == set()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/fhir/Observation?patient.shoe-size=42", "patient.shoe-size"),
        ("/fhir/Observation?status.name=x", "status.name"),
        ("/fhir/Observation?patient.organization.name=x", "patient.organization.name"),
        ("/fhir/Observation?subject:Spaceship.name=x", "subject:Spaceship.name"),
        ("/fhir/Observation?patient.birthdate=yesterday", "patient.birthdate"),
        ("/fhir/Patient?_has:Observation:patient=x", "_has:Observation:patient"),
        ("/fhir/Patient?_has:Spaceship:patient:code=x", "_has:Spaceship:patient:code"),
        ("/fhir/Patient?_has:Observation:status:code=x", "_has:Observation:status:code"),
        ("/fhir/Patient?_has:Observation:patient:_has:x=1", "_has:Observation:patient:_has:x"),
        ("/fhir/Patient?_summary=everything", "_summary"),
        ("/fhir/Patient?_elements=name;drop table", "_elements"),
    ],
)
def test_it_refuses_bad_chains_with_an_outcome_naming_the_parameter(doctor: FhirClient, url: str, field: str) -> None:
    r = doctor.get(url)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == [field]


def test_it_searches_injection_looking_chain_values_as_text(doctor: FhirClient, two_patients: dict[str, str]) -> None:
    for value in ("' OR 1=1 --", "%", "_", "李'; DELETE FROM fhir_resource; --"):
        assert _ids(doctor, "/fhir/Observation", **{"patient.name": value}) == set()
    assert len(_ids(doctor, "/fhir/Observation")) == 3


def test_it_trims_matches_to_the_asked_elements_and_tags_them_subsetted(
    doctor: FhirClient, two_patients: dict[str, str]
) -> None:
    body = doctor.get("/fhir/Patient", params={"_id": two_patients["zhang"], "_elements": "name,Patient.birthDate"})
    resource = body.json()["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "name", "birthDate"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
            "display": "subsetted"} in resource["meta"]["tag"]  # fmt: skip

    obs = doctor.get("/fhir/Observation", params={"_id": two_patients["zhang_sbp"], "_elements": "value"}).json()
    assert "valueQuantity" in obs["entry"][0]["resource"] and "code" not in obs["entry"][0]["resource"]

    summary = doctor.get("/fhir/Patient", params={"_id": two_patients["zhang"], "_summary": "true"}).json()
    trimmed = summary["entry"][0]["resource"]
    assert trimmed["gender"] == "male" and trimmed["name"] and "maritalStatus" not in trimmed  # not a summary element
    assert any(t["code"] == "SUBSETTED" for t in trimmed["meta"]["tag"])

    # Included resources and plain searches are whole; the stored resource is untouched.
    full = doctor.get(f"/fhir/Patient/{two_patients['zhang']}").json()
    assert full["maritalStatus"] == {"text": "已婚"} and "tag" not in full["meta"]
    with_include = doctor.get(
        "/fhir/Observation",
        params={"_id": two_patients["zhang_sbp"], "_elements": "status", "_include": "Observation:patient"},
    ).json()
    included = [e["resource"] for e in with_include["entry"] if e["search"]["mode"] == "include"]
    assert included and "maritalStatus" in included[0]


def test_it_trims_a_read_too_and_refuses_a_bad_summary(doctor: FhirClient, two_patients: dict[str, str]) -> None:
    url = f"/fhir/Patient/{two_patients['zhang']}"
    trimmed = doctor.get(url, params={"_elements": "gender"}).json()
    assert set(trimmed) == {"resourceType", "id", "meta", "gender"}
    assert any(t["code"] == "SUBSETTED" for t in trimmed["meta"]["tag"])
    assert "maritalStatus" not in doctor.get(url, params={"_summary": "true"}).json()
    assert "maritalStatus" in doctor.get(url, params={"_summary": "false"}).json()
    bad = doctor.get(url, params={"_summary": "count"})
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_summary"]
