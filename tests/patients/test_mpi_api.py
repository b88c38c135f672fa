"""The shared record through the real server: one person registered at a village clinic and at the county hospital
appears once with both records; consent, break-glass and the review queue behave as a user would expect."""

from __future__ import annotations

from typing import Any

from yilian.fhir import access
from yilian.patients import record, rules

ZHANG = {"name": "张伟明", "gender": "male", "birth_date": "1962-03-07", "phone": "13803570001",
         "address": "山西省临汾市洪洞县大槐树镇贾村3号"}  # fmt: skip


def _id(first17: str) -> str:
    return first17 + rules.resident_id_check_char(first17)


def register(http: Any, region: Any, user: str, **data: Any) -> dict[str, Any]:
    response = http.post("/api/v1/patients", json=data, headers=region.auth(user))
    assert response.status_code == 201, response.text
    return response.json()


def observation(patient_ref: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": "2026-10-05T10:00:00+08:00",
        "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


def test_it_shows_one_person_registered_at_the_village_clinic_and_the_county_hospital(http, fresh) -> None:
    at_village = register(http, fresh, "village", **ZHANG)  # no ID card at the village clinic
    assert at_village["outcome"] == "new"
    fhir = {**fresh.auth("village"), "Content-Type": "application/fhir+json"}
    assert http.post("/fhir/Observation", json=observation(at_village["record"], 172), headers=fhir).status_code == 201
    # At the county hospital the clerk picks a homophone (伟 → 玮) and adds the ID card.
    at_county = register(http, fresh, "county", **{**ZHANG, "name": "张玮明", "resident_id": _id("14102419620307001")})
    assert at_county["outcome"] == "linked"
    assert at_county["person"] == at_village["person"]

    person = http.get(f"/api/v1/patients/persons/{at_county['person']}", headers=fresh.auth("county")).json()
    assert {r["facility"] for r in person["records"]} == {"贾村卫生室", "洪洞县人民医院"}
    assert {r["level"] for r in person["records"]} == {"village_clinic", "county_hospital"}
    assert [t["text"] for t in person["timeline"]] == ["Systolic blood pressure 172 mmHg"]
    assert person["timeline"][0]["facility"] == "贾村卫生室"
    assert any(link["method"] == "probabilistic" and link["score"] > 0.97 for link in person["links"])

    page = http.get(f"/patients/persons/{at_county['person']}", headers=fresh.auth("county"))
    assert page.status_code == 200
    for text in ("张玮明", "贾村卫生室", "洪洞县人民医院", "村卫生室/社区卫生服务站", "县级医院", "跨机构诊疗时间线"):
        assert text in page.text, text
    assert 'data-testid="linked-record"' in page.text and page.text.count('data-testid="linked-record"') == 2

    search = http.get("/patients", params={"q": "zhangweiming"}, headers=fresh.auth("village"))
    assert search.text.count('data-testid="hit"') == 1


def test_it_refuses_a_bad_registration_naming_the_field(http, fresh) -> None:
    cases = [
        ({**ZHANG, "resident_id": "141024196203070012"}, 422, "resident_id"),
        ({**ZHANG, "birth_date": "1962-13-40"}, 422, "birth_date"),
        ({**ZHANG, "facility": "NO-SUCH"}, 404, "facility"),
        ({**ZHANG, "name": ""}, 422, "name"),
        ({**ZHANG, "shoe_size": 42}, 422, "shoe_size"),
    ]
    for body, status, field in cases:
        response = http.post("/api/v1/patients", json=body, headers=fresh.auth("village"))
        assert response.status_code == status, (body, response.text)
        assert response.json()["field"] == field
    # Registering at another hospital than one's own is refused, and nothing was written.
    response = http.post("/api/v1/patients", json={**ZHANG, "facility": "YC-CH"}, headers=fresh.auth("village"))
    assert response.status_code == 403 and response.json()["field"] == "facility"
    assert http.get("/api/v1/patients", params={"q": "张伟明"}, headers=fresh.auth("admin")).json()["items"] == []


def test_a_patient_written_through_fhir_is_indexed_and_linked_before_anyone_searches(http, fresh) -> None:
    first = register(http, fresh, "county", **ZHANG)
    fhir = {**fresh.auth("village"), "Content-Type": "application/fhir+json"}
    patient = {
        "resourceType": "Patient",
        "name": [{"text": "張偉明"}],  # traditional characters
        "gender": "male",
        "birthDate": "1962-07-03",  # day and month swapped
        "telecom": [{"system": "phone", "value": "+86 138 0357 0001"}],
        "address": [{"text": "洪洞县大槐树镇贾村"}],
        "managingOrganization": {"reference": f"Organization/{fresh.village_clinic}"},
    }
    created = http.post("/fhir/Patient", json=patient, headers=fhir)
    assert created.status_code == 201
    hits = http.get("/api/v1/patients", params={"q": "13803570001"}, headers=fresh.auth("county")).json()["items"]
    assert len(hits) == 1 and hits[0]["person"] == first["person"]
    assert len(hits[0]["records"]) == 2
    # An update through FHIR is seen too: the record follows the new phone.
    stored = created.json()
    stored["telecom"] = [{"system": "phone", "value": "13912345678"}]
    assert http.put(f"/fhir/Patient/{stored['id']}", json=stored, headers=fhir).status_code == 200
    hits = http.get("/api/v1/patients", params={"q": "13912345678"}, headers=fresh.auth("county")).json()["items"]
    assert len(hits) == 1 and hits[0]["person"] == first["person"]


def test_patient_match_answers_with_scores_and_match_grades(http, fresh) -> None:
    known = register(http, fresh, "county", **{**ZHANG, "resident_id": _id("14102419620307001")})
    register(http, fresh, "county", name="李秀英", gender="female", birth_date="1970-01-01", phone="13900000000")
    fhir = {**fresh.auth("county"), "Content-Type": "application/fhir+json"}
    query = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient", "name": [{"text": "张伟明"}],
                                              "birthDate": "1962-03-07", "gender": "male",
                                              "telecom": [{"system": "phone", "value": "13803570001"}]}},
            {"name": "count", "valueInteger": 5},
        ],
    }  # fmt: skip
    response = http.post("/fhir/Patient/$match", json=query, headers=fhir)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    entry = bundle["entry"][0]
    assert entry["resource"]["id"] == known["record"].split("/")[1]
    assert entry["search"]["score"] > 0.97
    assert entry["search"]["extension"][0] == {
        "url": "http://hl7.org/fhir/StructureDefinition/match-grade",
        "valueCode": "certain",
    }
    weaker = {**query, "parameter": [{"name": "resource", "resource": {"resourceType": "Patient",
              "name": [{"text": "张伟明"}], "birthDate": "1962-03-07"}},
              {"name": "onlyCertainMatches", "valueBoolean": True}]}  # fmt: skip
    assert http.post("/fhir/Patient/$match", json=weaker, headers=fhir).json()["total"] == 0

    for body, expression in [
        ({"resourceType": "Patient"}, "Parameters"),
        ({"resourceType": "Parameters", "parameter": []}, "Parameters.parameter"),
        ({**query, "parameter": [*query["parameter"], {"name": "count", "valueInteger": -1}]},
         "Parameters.parameter.count"),
        ({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient",
          "birthDate": "1962-02-30"}}]}, "Patient.birthDate"),
    ]:  # fmt: skip
        bad = http.post("/fhir/Patient/$match", json=body, headers=fhir)
        assert 400 <= bad.status_code < 500, bad.text
        issue = bad.json()["issue"][0]
        assert bad.json()["resourceType"] == "OperationOutcome" and issue["expression"] == [expression], issue


def test_a_restricted_record_needs_a_break_glass_reason_outside_the_consortium(http, fresh) -> None:
    assert access._policy is record.fhir_policy  # the patients domain decides who reads a compartment
    mine = register(http, fresh, "village", **ZHANG)
    person, ref = mine["person"], mine["record"]
    fhir = {"Content-Type": "application/fhir+json"}
    http.post("/fhir/Observation", json=observation(ref, 150), headers={**fresh.auth("village"), **fhir})
    obs_search = f"/fhir/Observation?patient={ref}"

    # Shared across the region by default: the city hospital reads it.
    assert http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("city")).status_code == 200
    assert http.get(obs_search, headers=fresh.auth("city")).json()["total"] == 1
    # The patient asks their village clinic to keep the record inside the consortium.
    restrict = http.put(f"/api/v1/patients/persons/{person}/consent", json={"share_outside_consortium": False},
                        headers=fresh.auth("village"))  # fmt: skip
    assert restrict.status_code == 200, restrict.text
    assert http.put(f"/api/v1/patients/persons/{person}/consent", json={"share_outside_consortium": False},
                    headers=fresh.auth("city")).status_code == 403  # fmt: skip
    # Inside the consortium nothing changes; outside, the record is closed until a reason is given.
    assert http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("county")).status_code == 200
    denied = http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("city"))
    assert denied.status_code == 403 and denied.json()["field"] == "break_glass_reason"
    assert http.get(obs_search, headers=fresh.auth("city")).status_code == 403
    page = http.get(f"/patients/persons/{person}", headers=fresh.auth("city"))
    assert page.status_code == 403 and 'data-testid="break-glass"' in page.text
    short = http.post(
        f"/api/v1/patients/persons/{person}/break-glass", json={"reason": "x"}, headers=fresh.auth("city")
    )
    assert short.status_code == 422 and short.json()["field"] == "reason"
    reason = "急诊：患者昏迷送至本院，需查既往史"
    assert http.post(f"/api/v1/patients/persons/{person}/break-glass", json={"reason": reason},
                     headers=fresh.auth("city")).status_code == 200  # fmt: skip
    opened = http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("city")).json()
    assert opened["break_glass"] is True and opened["audit"] is None  # who-saw-what is for the patient's facility
    assert http.get(obs_search, headers=fresh.auth("city")).json()["total"] == 1

    seen = http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("village")).json()["audit"]
    glass = [a for a in seen if a["break_glass"] and a["user"] == "city"]
    assert any(a["reason"] == reason for a in glass)
    assert any(a["action"] == "fhir.search" for a in seen if a["user"] == "city")
    page = http.get(f"/patients/persons/{person}", headers=fresh.auth("village"))
    assert reason in page.text and "紧急授权" in page.text
    # Officials work on aggregates: even in their jurisdiction a person-level read needs a reason.
    assert http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("official")).status_code == 403

    lifted = http.put(f"/api/v1/patients/persons/{person}/consent", json={"share_outside_consortium": True},
                      headers=fresh.auth("village"))  # fmt: skip
    assert lifted.status_code == 200
    assert http.get(f"/api/v1/patients/persons/{person}", headers=fresh.auth("admin")).json()["restricted"] is False


def test_a_reviewer_links_or_separates_the_pairs_the_matcher_was_unsure_of(http, fresh) -> None:
    # Twins: same birth date, phone and address, different given names: a person must decide.
    base = {"gender": "male", "birth_date": "2001-05-20", "phone": "13803571234", "address": "洪洞县大槐树镇贾村5号"}
    a = register(http, fresh, "village", name="张文博", **base)
    b = register(http, fresh, "county", name="张文涛", **base)
    assert b["outcome"] == "review" and a["person"] != b["person"]

    assert http.get("/api/v1/patients/review", headers=fresh.auth("village")).status_code == 403
    queue = http.get("/api/v1/patients/review", headers=fresh.auth("consortium")).json()["items"]
    assert len(queue) == 1
    item = queue[0]
    assert {item["left"]["name"], item["right"]["name"]} == {"张文博", "张文涛"}
    page = http.get("/patients/review", headers=fresh.auth("consortium"))
    assert page.text.count('data-testid="review-item"') == 1 and "不是同一人" in page.text

    bad = http.post(
        f"/api/v1/patients/review/{item['id']}", json={"decision": "maybe"}, headers=fresh.auth("consortium")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "decision"
    decided = http.post(f"/api/v1/patients/review/{item['id']}", json={"decision": "separate", "reason": "双胞胎"},
                        headers=fresh.auth("consortium"))  # fmt: skip
    assert decided.status_code == 200 and decided.json()["status"] == "separate"
    again = http.post(
        f"/api/v1/patients/review/{item['id']}", json={"decision": "link"}, headers=fresh.auth("consortium")
    )
    assert again.status_code == 409
    assert http.get("/api/v1/patients/review", headers=fresh.auth("consortium")).json()["items"] == []

    # A merge by mistake is undone, with the history kept.
    merged = http.post(f"/api/v1/patients/persons/{a['person']}/merge", json={"absorb": b["person"], "reason": "test"},
                       headers=fresh.auth("consortium"))  # fmt: skip
    assert merged.status_code == 200
    assert http.post(f"/api/v1/patients/persons/{a['person']}/merge", json={"absorb": b["person"]},
                     headers=fresh.auth("village")).status_code == 403  # fmt: skip
    person = http.get(f"/api/v1/patients/persons/{b['person']}", headers=fresh.auth("county")).json()
    assert person["id"] == a["person"] and len(person["records"]) == 2  # the absorbed person's link follows
    split = http.post(f"/api/v1/patients/persons/{a['person']}/unmerge", json={"records": [b["record"]]},
                      headers=fresh.auth("consortium"))  # fmt: skip
    assert split.status_code == 200 and split.json()["separated_into"] == b["person"]
    person = http.get(f"/api/v1/patients/persons/{a['person']}", headers=fresh.auth("county")).json()
    assert len(person["records"]) == 1
    separated = http.get(f"/api/v1/patients/persons/{b['person']}", headers=fresh.auth("county")).json()
    assert [h["action"] for h in separated["links"]].count("link") == 3  # registered, merged, separated: all kept
    assert {h["by"] for h in separated["links"] if h["method"] == "manual"} == {"consortium"}


def test_the_golden_person_is_a_valid_fhir_person_linking_each_record(http, fresh) -> None:
    from fhir.resources.R4B.person import Person

    a = register(http, fresh, "village", **ZHANG)
    register(http, fresh, "county", **{**ZHANG, "resident_id": _id("14102419620307001")})
    resource = http.get(f"/api/v1/patients/persons/{a['person']}/fhir", headers=fresh.auth("county")).json()
    Person.model_validate(resource)
    assert resource["identifier"][0]["value"] == _id("14102419620307001")
    assert len(resource["link"]) == 2 and {link["assurance"] for link in resource["link"]} <= {"level3", "level4"}


def test_it_finds_a_patient_by_id_card_phone_pinyin_and_traditional_characters(http, fresh) -> None:
    card = _id("14102419620307001")
    person = register(http, fresh, "county", **{**ZHANG, "resident_id": card})["person"]
    for q in (card, "138-0357-0001", "zhang wei ming", "ZhangWeiMing", "張偉明", "张玮明"):
        items = http.get("/api/v1/patients", params={"q": q}, headers=fresh.auth("village")).json()["items"]
        assert [i["person"] for i in items] == [person], q
    empty = http.get("/api/v1/patients", params={"q": " "}, headers=fresh.auth("village"))
    assert empty.status_code == 422 and empty.json()["field"] == "q"
    page = http.get("/patients", params={"q": " "}, headers=fresh.auth("village"))
    assert page.status_code == 422 and "请输入姓名、拼音、身份证号或手机号" in page.text
    # An official sees that the person exists, not their details.
    seen = http.get("/api/v1/patients", params={"q": card}, headers=fresh.auth("official")).json()["items"]
    assert seen[0]["needs_break_glass"] is True and seen[0]["birth_date"] is None
    assert all("display" not in r for r in seen[0]["records"])


def test_a_doctor_opens_a_restricted_record_with_a_reason_on_the_page(http, fresh) -> None:
    mine = register(http, fresh, "village", **ZHANG)
    form = http.post(f"/patients/persons/{mine['person']}/consent", data={"share": "no"}, headers=fresh.auth("village"))
    assert form.status_code == 303
    url = f"/patients/persons/{mine['person']}"
    assert http.get(url, headers=fresh.auth("city")).status_code == 403
    empty = http.post(f"{url}/break-glass", data={"reason": ""}, headers=fresh.auth("city"))
    assert empty.status_code == 422 and 'class="error"' in empty.text
    opened = http.post(f"{url}/break-glass", data={"reason": "转诊患者急诊手术前核对病史"}, headers=fresh.auth("city"))
    assert opened.status_code == 303 and opened.headers["location"] == url
    page = http.get(url, headers=fresh.auth("city"))
    assert page.status_code == 200 and 'data-testid="broke-glass"' in page.text
    assert 'data-testid="who-saw-what"' not in page.text
