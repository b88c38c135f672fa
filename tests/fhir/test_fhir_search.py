"""Search through /fhir: parameters by type, modifiers, prefixes, sorting, paging, includes and the outcome entry."""

from __future__ import annotations

from typing import Any

import pytest


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


@pytest.fixture
def people(doctor: Any, new_patient: Any) -> dict[str, str]:
    made = {}
    for key, family, given, born, gender in [
        ("zhang", "张", ["三丰"], "1949-12-31", "male"),
        ("li", "李", ["秀英"], "1975-06-15", "female"),
        ("wang", "Wáng", ["Lì"], "2001-01-20", "female"),
    ]:
        body = new_patient(
            name=[{"family": family, "given": given}],
            birthDate=born,
            gender=gender,
            identifier=[
                {
                    "system": "urn:yilian:facility:140100:mrn",
                    "type": {"coding": [{"code": "MR"}]},
                    "value": f"MRN-{key}",
                }
            ],
            telecom=[{"system": "phone", "value": f"1380000{len(key):04d}"}],
        )
        r = doctor.post("/fhir/Patient", json=body)
        assert r.status_code == 201, r.text
        made[key] = r.json()["id"]
    return made


def test_it_finds_chinese_names_by_characters_pinyin_and_initials(doctor: Any, people: dict[str, str]) -> None:
    for query, who in [
        ("张", "zhang"),
        ("张三", "zhang"),
        ("zhang", "zhang"),
        ("ZhangSan", "zhang"),
        ("zsf", "zhang"),
        ("li", "li"),
        ("lixiu", "li"),
    ]:
        bundle = doctor.get("/fhir/Patient", params={"name": query}).json()
        assert people[who] in _ids(bundle), query
    assert _ids(doctor.get("/fhir/Patient", params={"family": "wang"}).json()) == [people["wang"]]  # accents ignored
    assert _ids(doctor.get("/fhir/Patient", params={"family:exact": "Wáng"}).json()) == [people["wang"]]
    assert _ids(doctor.get("/fhir/Patient", params={"family:exact": "wang"}).json()) == []
    assert _ids(doctor.get("/fhir/Patient", params={"given:contains": "秀"}).json()) == [people["li"]]


def test_it_matches_tokens_with_and_without_a_system(doctor: Any, people: dict[str, str]) -> None:
    sys = "urn:yilian:facility:140100:mrn"
    assert _ids(doctor.get("/fhir/Patient", params={"identifier": f"{sys}|MRN-li"}).json()) == [people["li"]]
    assert _ids(doctor.get("/fhir/Patient", params={"identifier": "MRN-li"}).json()) == [people["li"]]
    assert _ids(doctor.get("/fhir/Patient", params={"identifier": "other|MRN-li"}).json()) == []
    females = doctor.get("/fhir/Patient", params={"gender": "female"}).json()
    assert sorted(_ids(females)) == sorted([people["li"], people["wang"]])
    assert _ids(doctor.get("/fhir/Patient", params={"gender:not": "female"}).json()) == [people["zhang"]]
    either = doctor.get("/fhir/Patient", params={"identifier": "MRN-li,MRN-wang"}).json()
    assert either["total"] == 2


def test_it_compares_dates_with_prefixes_and_partial_dates(doctor: Any, people: dict[str, str]) -> None:
    def found(value: str) -> set[str]:
        bundle = doctor.get("/fhir/Patient", params={"birthdate": value}).json()
        return {k for k, v in people.items() if v in _ids(bundle)}

    assert found("1975") == {"li"}
    assert found("1975-06") == {"li"}
    assert found("eq1975-06-15") == {"li"}
    assert found("lt1975-06-15") == {"zhang"}
    assert found("le1975-06-15") == {"zhang", "li"}
    assert found("gt1975") == {"wang"}
    assert found("ge1975-06-15") == {"li", "wang"}
    assert found("ne1975") == {"zhang", "wang"}
    assert found("sa1980") == {"wang"}
    assert found("eb1960") == {"zhang"}
    both = doctor.get("/fhir/Patient", params=[("birthdate", "ge1970"), ("birthdate", "lt2000")]).json()
    assert _ids(both) == [people["li"]]


def test_it_searches_observations_by_patient_code_date_and_value(
    doctor: Any, people: dict[str, str], new_observation: Any
) -> None:
    pid = people["zhang"]
    doctor.post("/fhir/Observation", json=new_observation(pid, "8480-6", 150, "2026-10-05T10:00:00+08:00"))
    doctor.post("/fhir/Observation", json=new_observation(pid, "8480-6", 128, "2026-11-05T10:00:00+08:00"))
    doctor.post("/fhir/Observation", json=new_observation(pid, "8462-4", 95, "2026-11-05T10:00:00+08:00"))
    doctor.post("/fhir/Observation", json=new_observation(people["li"], "8480-6", 110, "2026-11-06T10:00:00+08:00"))

    def total(**params: str) -> int:
        r = doctor.get("/fhir/Observation", params=params)
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    assert total(patient=pid) == 3
    assert total(subject=f"Patient/{pid}") == 3
    assert total(patient=pid, code="http://loinc.org|8480-6") == 2
    assert total(patient=pid, code="http://loinc.org|8480-6", date="ge2026-11-01") == 1
    assert total(code="8480-6", date="2026-11") == 2
    assert total(**{"value-quantity": "gt140"}) == 1
    assert total(**{"value-quantity": "le128|http://unitsofmeasure.org|mm[Hg]"}) == 3
    assert total(**{"_lastUpdated": "ge2020-01-01"}) == 4


def test_it_sorts_and_pages_with_stable_next_links(doctor: Any, people: dict[str, str]) -> None:
    by_birth = doctor.get("/fhir/Patient", params={"_sort": "birthdate"}).json()
    assert _ids(by_birth) == [people["zhang"], people["li"], people["wang"]]
    newest_first = doctor.get("/fhir/Patient", params={"_sort": "-birthdate"}).json()
    assert _ids(newest_first) == [people["wang"], people["li"], people["zhang"]]

    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=2&_sort=-birthdate"
    pages = 0
    while url:
        bundle = doctor.get(url).json()
        assert bundle["total"] == 3
        seen += _ids(bundle)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
        pages += 1
        if pages == 2:
            assert "previous" in links
    assert pages == 2
    assert seen == _ids(newest_first)


def test_it_counts_only_when_asked_for_a_summary(doctor: Any, people: dict[str, str]) -> None:
    bundle = doctor.get("/fhir/Patient", params={"_summary": "count"}).json()
    assert bundle["total"] == 3
    assert "entry" not in bundle
    assert "total" not in doctor.get("/fhir/Patient", params={"_total": "none"}).json()


def test_it_includes_and_revincludes_referenced_resources(
    doctor: Any, admin: Any, people: dict[str, str], new_observation: Any
) -> None:
    org = admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "县医院"}).json()["id"]
    pid = people["zhang"]
    current = doctor.get(f"/fhir/Patient/{pid}").json()
    doctor.put(f"/fhir/Patient/{pid}", json={**current, "managingOrganization": {"reference": f"Organization/{org}"}})
    obs = doctor.post("/fhir/Observation", json=new_observation(pid)).json()["id"]

    with_patient = doctor.get("/fhir/Observation", params={"_include": "Observation:patient"}).json()
    assert _ids(with_patient) == [obs]
    assert _ids(with_patient, "include") == [pid]

    with_obs = doctor.get("/fhir/Patient", params={"_id": pid, "_revinclude": "Observation:patient"}).json()
    assert _ids(with_obs, "include") == [obs]
    assert _ids(doctor.get("/fhir/Patient", params={"organization": f"Organization/{org}"}).json()) == [pid]


def test_it_warns_about_unknown_parameters_unless_strict(doctor: Any, people: dict[str, str]) -> None:
    lenient = doctor.get("/fhir/Patient", params={"shoe-size": "42"})
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["severity"] == "warning"
    assert lenient.json()["total"] == 3
    strict = doctor.get("/fhir/Patient", params={"shoe-size": "42"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["shoe-size"]


def test_it_searches_with_a_form_post(doctor: Any, people: dict[str, str]) -> None:
    r = doctor.http.post(
        "/fhir/Patient/_search",
        data={"name": "zhang"},
        headers={"Authorization": doctor.headers["Authorization"]},
    )
    assert r.status_code == 200, r.text
    assert _ids(r.json()) == [people["zhang"]]


def test_it_searches_the_registry_resources(admin: Any, doctor: Any) -> None:
    county = admin.post(
        "/fhir/Organization",
        json={
            "resourceType": "Organization",
            "name": "盐陵县人民医院",
            "active": True,
            "identifier": [{"system": "urn:yilian:facility-code", "value": "411025001"}],
            "type": [{"coding": [{"system": "urn:yilian:level", "code": "county"}]}],
            "address": [{"city": "许昌市", "district": "鄢陵县"}],
        },
    ).json()["id"]
    town = admin.post(
        "/fhir/Organization",
        json={
            "resourceType": "Organization",
            "name": "望田镇卫生院",
            "partOf": {"reference": f"Organization/{county}"},
        },
    ).json()["id"]
    loc = admin.post(
        "/fhir/Location",
        json={
            "resourceType": "Location",
            "name": "影像中心",
            "managingOrganization": {"reference": f"Organization/{county}"},
        },
    ).json()["id"]
    svc = admin.post(
        "/fhir/HealthcareService",
        json={
            "resourceType": "HealthcareService",
            "name": "远程心电",
            "providedBy": {"reference": f"Organization/{county}"},
            "location": [{"reference": f"Location/{loc}"}],
            "category": [{"coding": [{"system": "urn:yilian:service", "code": "ecg"}]}],
        },
    ).json()["id"]
    pr = admin.post(
        "/fhir/Practitioner", json={"resourceType": "Practitioner", "name": [{"family": "王", "given": ["医生"]}]}
    ).json()["id"]
    role = admin.post(
        "/fhir/PractitionerRole",
        json={
            "resourceType": "PractitionerRole",
            "practitioner": {"reference": f"Practitioner/{pr}"},
            "organization": {"reference": f"Organization/{town}"},
        },
    ).json()["id"]
    aff = admin.post(
        "/fhir/OrganizationAffiliation",
        json={
            "resourceType": "OrganizationAffiliation",
            "active": True,
            "organization": {"reference": f"Organization/{county}"},
            "participatingOrganization": {"reference": f"Organization/{town}"},
        },
    ).json()["id"]

    def ids(url: str, **params: str) -> list[str]:
        r = doctor.get(url, params=params)
        assert r.status_code == 200, r.text
        return _ids(r.json())

    assert ids("/fhir/Organization", identifier="411025001") == [county]
    assert ids("/fhir/Organization", partof=f"Organization/{county}") == [town]
    assert ids("/fhir/Organization", type="urn:yilian:level|county") == [county]
    assert ids("/fhir/Organization", **{"address-city": "许昌"}) == [county]
    assert ids("/fhir/Organization", name="yanling") == [county]
    assert ids("/fhir/Location", organization=county) == [loc]
    assert ids("/fhir/HealthcareService", organization=county, **{"service-category": "ecg"}) == [svc]
    assert ids("/fhir/HealthcareService", location=f"Location/{loc}") == [svc]
    assert ids("/fhir/Practitioner", family="wang") == [pr]
    assert ids("/fhir/PractitionerRole", practitioner=pr, organization=town) == [role]
    assert ids(
        "/fhir/OrganizationAffiliation", **{"participating-organization": town, "primary-organization": county}
    ) == [aff]


def test_it_pages_without_skipping_anyone_while_others_write(doctor: Any, new_patient: Any) -> None:
    made = [doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"] for _ in range(6)]
    first = doctor.get("/fhir/Patient", params={"_count": "2"}).json()
    seen = _ids(first)
    assert seen == made[:2]
    doctor.delete(f"/fhir/Patient/{made[0]}")  # a row before the cursor disappears: an offset would skip made[2]
    late = doctor.post("/fhir/Patient", json=new_patient(identifier=[])).json()["id"]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "_cursor=" in url
    while url:
        page = doctor.get(url).json()
        seen += _ids(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == [*made, late]
    assert doctor.get("/fhir/Patient", params={"_cursor": "not-a-cursor"}).status_code == 400


def test_it_searches_by_encounter_and_status_and_bounds_the_page_size(
    doctor: Any, people: dict[str, str], new_observation: Any
) -> None:
    pid = people["li"]
    enc = doctor.post(
        "/fhir/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
        },
    ).json()["id"]
    linked = {**new_observation(pid), "encounter": {"reference": f"Encounter/{enc}"}, "status": "amended"}
    obs = doctor.post("/fhir/Observation", json=linked).json()["id"]
    doctor.post("/fhir/Observation", json=new_observation(pid))
    assert _ids(doctor.get("/fhir/Observation", params={"encounter": f"Encounter/{enc}"}).json()) == [obs]
    assert _ids(doctor.get("/fhir/Observation", params={"status": "amended"}).json()) == [obs]
    assert _ids(doctor.get("/fhir/Encounter", params={"patient": pid, "status": "finished"}).json()) == [enc]
    with_encounter = doctor.get("/fhir/Observation", params={"_id": obs, "_include": "Observation:encounter"}).json()
    assert _ids(with_encounter, "include") == [enc]
    assert doctor.get("/fhir/Patient", params={"_count": "1000"}).status_code == 200
    assert doctor.get("/fhir/Patient", params={"_count": "1001"}).status_code == 400


def test_it_gives_no_next_page_when_asked_for_no_entries(doctor: Any, people: dict[str, str]) -> None:
    bundle = doctor.get("/fhir/Patient", params={"_count": "0"}).json()
    assert bundle["total"] == 3
    assert bundle["entry"] == []
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_a_patients_search_by_code_and_date_finds_exactly_that_patients_matches(doctor: Any, new_patient: Any) -> None:
    """The patient + code + date search reads index rows that carry the patient's id: it must still find exactly
    the resources a search by each parameter alone would agree on, whoever else has the code, whatever the subject
    is (a Group, none), and after an update moves an Observation from one patient to another."""
    ids = {}
    for key in ("a", "b"):
        body = new_patient(identifier=[{"system": "urn:yilian:facility:140100:mrn", "value": f"MRN-{key}"}])
        ids[key] = doctor.post("/fhir/Patient", json=body).json()["id"]
    group = doctor.post("/fhir/Group", json={"resourceType": "Group", "type": "person", "actual": True}).json()["id"]

    def obs(subject: str | None, code: str, when: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": when,
        }
        if subject:
            body["subject"] = {"reference": subject}
        return body

    a, b = f"Patient/{ids['a']}", f"Patient/{ids['b']}"
    made = {}
    for key, subject, code, when in [
        ("match", a, "8310-5", "2026-10-05"),
        ("too_early", a, "8310-5", "2019-06-01"),
        ("other_code", a, "8480-6", "2026-10-05"),
        ("other_patient", b, "8310-5", "2026-10-05"),
        ("group", f"Group/{group}", "8310-5", "2026-10-05"),
        ("no_subject", None, "8310-5", "2026-10-05"),
        ("moves_to_a", b, "8310-5", "2026-10-06"),
        ("moves_to_b", a, "8310-5", "2026-10-07"),
    ]:
        r = doctor.post("/fhir/Observation", json=obs(subject, code, when))
        assert r.status_code == 201, r.text
        made[key] = r.json()
    loinc = "http://loinc.org|8310-5"

    def found(**params: str) -> set[str]:
        bundle = doctor.get("/fhir/Observation", params=params).json()
        return {k for k, v in made.items() if v["id"] in _ids(bundle)}

    assert found(patient=ids["a"], code=loinc, date="ge2020-01-01") == {"match", "moves_to_b"}
    for key, subject in (("moves_to_a", a), ("moves_to_b", b)):
        body = {**made[key], "subject": {"reference": subject}}
        assert doctor.put(f"/fhir/Observation/{body['id']}", json=body).status_code == 200
    assert found(patient=ids["a"], code=loinc, date="ge2020-01-01") == {"match", "moves_to_a"}
    assert found(patient=a, code="8310-5", date="ge2020-01-01") == {"match", "moves_to_a"}
    assert found(patient=ids["b"], code=loinc) == {"other_patient", "moves_to_b"}
    assert found(patient=ids["a"], date="lt2020-01-01") == {"too_early"}
    assert found(patient=ids["a"], **{"code:not": loinc}) == {"other_code"}
    assert found(patient=f"{ids['a']},{ids['b']}", code=loinc, date="ge2020-01-01") == {
        "match",
        "moves_to_a",
        "other_patient",
        "moves_to_b",
    }
    everyone = {"match", "other_patient", "group", "no_subject", "moves_to_a", "moves_to_b"}
    assert found(code=loinc, date="ge2020-01-01") == everyone
    assert found(subject=f"Group/{group}", code=loinc) == {"group"}
    assert "no_subject" in found(**{"patient:missing": "true"}, code=loinc)
