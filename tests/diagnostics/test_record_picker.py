"""Requesting a consultation: items of the shared record are found by search and linked (not copied); a remote ward
round carries its list of patients."""

from __future__ import annotations

from yilian.db import unit_of_work
from yilian.fhir import store

from .test_consultation import request


def observation(patient: str, loinc: str, display: str, value: float, unit: str, when: str) -> dict:  # type: ignore[type-arg]
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": display},
        "subject": {"reference": patient},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


def test_it_finds_record_items_by_search_and_links_them_to_the_consultation(region, as_user, http) -> None:  # type: ignore[no-untyped-def]
    li, wang = region.patients["li"], region.patients["wang"]
    with unit_of_work() as session:
        glucose = store.create(session, observation(li, "2345-7", "空腹血糖", 9.6, "mmol/L", "2026-11-01"))
        bp = store.create(session, observation(li, "8480-6", "收缩压", 172, "mm[Hg]", "2026-11-10"))
        wangs = store.create(session, observation(wang, "2345-7", "空腹血糖", 5.1, "mmol/L", "2026-11-02"))
    township = as_user("township")

    items = township.get("/api/v1/diagnostics/record-items", params={"patient": li, "q": "血糖"}).json()
    assert [(i["ref"], i["when"]) for i in items] == [(f"Observation/{glucose['id']}", "2026-11-01")]
    assert "9.6 mmol/L" in items[0]["text"]
    everything = township.get("/api/v1/diagnostics/record-items", params={"patient": li}).json()
    assert [i["ref"] for i in everything] == [f"Observation/{bp['id']}", f"Observation/{glucose['id']}"]

    r = request(township, region, record_items=[f"Observation/{wangs['id']}"])
    assert r.status_code == 422 and r.json()["field"] == "record_items.0"  # Wang's result in Li's consultation
    r = request(township, region, record_items=[f"Observation/{glucose['id']}"])
    assert r.status_code == 201
    seen = township.get(f"/api/v1/diagnostics/consultations/{r.json()['id']}").json()
    assert seen["record_items"] == [f"Observation/{glucose['id']}"]
    assert "空腹血糖" in seen["record_details"][0]["text"]

    # The page's picker answers htmx with checkboxes, and the form posts the ticked links.
    http.cookies.set("yilian_session", township.headers["Authorization"].split()[1])
    fragment = http.get("/diagnostics/record-picker", params={"patient": li, "record_q": "收缩压"}).text
    assert f'value="Observation/{bp["id"]}"' in fragment and "172" in fragment and glucose["id"] not in fragment
    form = {
        "patient": li,
        "specialty": "心内科",
        "question": "血压高",
        "kind": "consultation",
        "record_items": [f"Observation/{bp['id']}"],
    }
    r = http.post("/diagnostics/consultations", data=form)
    assert r.status_code == 303
    page = http.get(r.headers["location"]).text
    assert "收缩压" in page and bp["id"] in page


def test_a_remote_ward_round_lists_its_patients_in_order(region, as_user, http) -> None:  # type: ignore[no-untyped-def]
    li, wang = region.patients["li"], region.patients["wang"]
    township = as_user("township")
    r = request(township, region, kind="ward_round", round_patients=[wang, "Patient/nobody"])
    assert r.status_code == 404 and r.json()["field"] == "round_patients.1"
    r = request(township, region, round_patients=[wang])
    assert r.status_code == 422 and r.json()["field"] == "round_patients"
    r = request(township, region, kind="ward_round", round_patients=[wang])
    assert r.status_code == 201
    assert [p["name"] for p in r.json()["round_patients"]] == ["李秀英", "王建国"]
    assert [p["ref"] for p in r.json()["round_patients"]] == [li, wang]

    http.cookies.set("yilian_session", township.headers["Authorization"].split()[1])
    fragment = http.get("/diagnostics/patient-picker", params={"patient_q": "王建国"}).text
    assert f'value="{wang}"' in fragment
    page = http.get(f"/diagnostics/consultations/{r.json()['id']}").text
    assert page.index("李秀英") < page.index("王建国", page.index("round-patients"))
