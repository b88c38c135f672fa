"""Bad and hostile input always gets a 4xx OperationOutcome naming what is wrong, never a 500, and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest


def _outcome(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def _count(doctor: Any, res_type: str = "Patient") -> int:
    return int(doctor.get(f"/fhir/{res_type}", params={"_summary": "count"}).json()["total"])


def test_it_refuses_malformed_json(doctor: Any) -> None:
    r = doctor.http.post("/fhir/Patient", content=b'{"resourceType": "Patient", "name": [', headers=doctor.headers)
    assert "not valid JSON" in _outcome(r, 400)["diagnostics"]
    r = doctor.http.post("/fhir/Patient", content=b"\xff\xfe garbage", headers=doctor.headers)
    _outcome(r, 400)
    r = doctor.http.post("/fhir/Patient", content=b"", headers=doctor.headers)
    _outcome(r, 400)


def test_it_refuses_a_body_of_the_wrong_type_for_the_url(doctor: Any, new_observation: Any) -> None:
    issue = _outcome(doctor.post("/fhir/Patient", json=new_observation("x")), 400)
    assert issue["expression"] == ["Patient.resourceType"]
    _outcome(doctor.post("/fhir/Patient", json=["not", "an", "object"]), 422)


def test_it_refuses_an_id_mismatch_on_put(doctor: Any, new_patient: Any) -> None:
    issue = _outcome(doctor.put("/fhir/Patient/abc", json=new_patient(id="xyz")), 400)
    assert issue["expression"] == ["Patient.id"]
    _outcome(doctor.put("/fhir/Patient/abc", json=new_patient()), 400)
    assert _count(doctor) == 0


def test_it_names_the_element_that_breaks_the_r4_structure(doctor: Any, new_patient: Any) -> None:
    cases = [
        (new_patient(birthDate="1990-02-30"), "Patient.birthDate"),
        (new_patient(name=[{"family": 42}]), "Patient.name[0].family"),
        (new_patient(favouriteColour="red"), "Patient.favouriteColour"),
        (new_patient(active="maybe"), "Patient.active"),
    ]
    for body, path in cases:
        issue = _outcome(doctor.post("/fhir/Patient", json=body), 422)
        assert issue["expression"] == [path], issue
    obs = {"resourceType": "Observation", "code": {"text": "bp"}}  # status is required
    assert _outcome(doctor.post("/fhir/Observation", json=obs), 422)["expression"] == ["Observation.status"]
    assert _count(doctor) == 0


@pytest.mark.parametrize(
    "number,why",
    [
        ("11010519491231002", "18 characters"),
        ("110105194912310021", "check digit"),
        ("110105194902300023", "not a real date"),
        ("11010519491231002Y", "17 digits"),
    ],
)
def test_it_checks_resident_id_card_numbers(doctor: Any, new_patient: Any, number: str, why: str) -> None:
    body = new_patient()
    body["identifier"][0]["value"] = number
    issue = _outcome(doctor.post("/fhir/Patient", json=body), 422)
    assert issue["expression"] == ["Patient.identifier"]
    assert why in issue["diagnostics"]


def test_it_refuses_giant_strings_deep_nesting_and_huge_bodies(doctor: Any, new_patient: Any) -> None:
    _outcome(doctor.post("/fhir/Patient", json=new_patient(name=[{"text": "x" * (1024 * 1024 + 1)}])), 413)
    deep: Any = "leaf"
    for _ in range(60):
        deep = {"extension": [{"url": "urn:x", "valueString": "a"}], "n": deep}
    _outcome(doctor.post("/fhir/Patient", json=new_patient(contact=[deep])), 400)
    very_deep = "[" * 100_000 + "]" * 100_000
    _outcome(doctor.http.post("/fhir/Patient", content=very_deep, headers=doctor.headers), 400)
    huge = json.dumps(new_patient(text={"status": "generated", "div": "<div>" + "y" * (6 * 1024 * 1024) + "</div>"}))
    _outcome(doctor.http.post("/fhir/Patient", content=huge, headers=doctor.headers), 413)
    assert _count(doctor) == 0


def test_it_refuses_bad_paging_and_sort_values(doctor: Any) -> None:
    for params in [
        {"_count": "-1"},
        {"_count": "abc"},
        {"_count": "100000"},
        {"_offset": "-5"},
        {"_sort": "shoe"},
        {"birthdate": "yesterday"},
        {"_total": "lots"},
        {"_include": "Patient:name"},
    ]:
        r = doctor.get("/fhir/Patient", params=params)
        _outcome(r, 400)


def test_it_treats_injection_looking_search_values_as_plain_text(doctor: Any, new_patient: Any) -> None:
    doctor.post("/fhir/Patient", json=new_patient())
    for value in [
        "' OR 1=1 --",
        "%",
        "_",
        "zhang%' OR '1'='1",
        "\\",
        "Robert'); DROP TABLE fhir_resource;--",
        "名字\u202e",
    ]:
        for param in ("name", "identifier", "family:contains", "_id", "organization"):
            r = doctor.get("/fhir/Patient", params={param: value})
            assert r.status_code == 200, (param, value, r.text)
            assert r.json()["total"] == 0, (param, value)
    _outcome(doctor.get("/fhir/Patient", params={"name": "a\x00b"}), 400)
    assert _count(doctor) == 1


def test_it_answers_unknown_types_and_ids_with_404(doctor: Any) -> None:
    assert _outcome(doctor.get("/fhir/Spaceship"), 404)["code"] == "not-found"
    _outcome(doctor.get("/fhir/Spaceship/1"), 404)
    _outcome(doctor.post("/fhir/Spaceship", json={"resourceType": "Spaceship"}), 404)
    _outcome(doctor.get("/fhir/Patient/does-not-exist"), 404)
    _outcome(doctor.get("/fhir/Patient/bad%20id%00"), 404)
    _outcome(doctor.get("/fhir/Patient/nope/_history/1"), 404)


def test_it_refuses_codes_outside_a_required_value_set(doctor: Any, new_patient: Any) -> None:
    issue = _outcome(doctor.post("/fhir/Patient", json=new_patient(gender="robot")), 422)
    assert issue["expression"] == ["Patient.gender"]
    assert _count(doctor) == 0


def test_it_names_the_element_with_the_wrong_cardinality(doctor: Any, new_patient: Any, new_observation: Any) -> None:
    assert _outcome(doctor.post("/fhir/Patient", json=new_patient(name={"family": "张"})), 422)["expression"] == [
        "Patient.name"
    ]
    assert _outcome(doctor.post("/fhir/Patient", json=new_patient(gender=["male", "female"])), 422)["expression"] == [
        "Patient.gender"
    ]
    two_subjects = {**new_observation("a"), "subject": [{"reference": "Patient/a"}, {"reference": "Patient/b"}]}
    issue = _outcome(doctor.post("/fhir/Observation", json=two_subjects), 422)
    assert issue["expression"] == ["Observation.subject"]
