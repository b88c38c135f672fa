"""Programmes and their postings over the API: the four kinds of posting with their terms (resident ≥ 4 days a week,
short-term window, recurring rule, honorary chief ≥ 2 days a month), each one a PractitionerRole at the receiving
hospital that FHIR clients find; bad postings refused naming the field."""

from __future__ import annotations

from datetime import timedelta

from yilian.db import unit_of_work
from yilian.network import service as network
from yilian.network.schemas import PractitionerIn
from yilian.outreach.clinics import local_now


def expert(name: str, specialty: str) -> str:
    with unit_of_work() as s:
        return str(
            network.create_practitioner(
                s,
                PractitionerIn(name=name, gender="male", title="chief", specialty=specialty, home_facility_id="QDSL"),
            ).id
        )


def test_each_kind_of_posting_keeps_its_terms_and_is_a_practitioner_role_at_the_receiving_hospital(http, site) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/outreach/programmes/{site.programme_id}/postings"
    start = local_now().date()
    short = http.post(
        url,
        json={
            "practitioner_id": expert("赵六", "paediatrics"),
            "facility": "LXZY",
            "kind": "short_term",
            "start": str(start),
            "end": str(start + timedelta(days=20)),
        },
        headers=site.auth("coord"),
    )
    chief = http.post(
        url,
        json={"practitioner_id": expert("王五", "orthopaedics"), "facility": "LXZY", "kind": "honorary_chief"},
        headers=site.auth("coord"),
    )
    assert short.status_code == 201, short.text
    assert chief.status_code == 201, chief.text

    postings = {p["kind"]: p for p in http.get(url, headers=site.auth("coord")).json()}

    assert set(postings) == {"resident", "recurring", "short_term", "honorary_chief"}
    assert postings["resident"]["min_days_per_week"] == 4
    assert postings["recurring"]["recurrence"] == "FREQ=MONTHLY;BYDAY=1SA,1SU"
    assert (postings["short_term"]["start"], postings["short_term"]["end"]) == (
        str(start),
        str(start + timedelta(days=20)),
    )
    assert postings["honorary_chief"]["min_days_per_month"] == 2
    for kind, p in postings.items():
        role = http.get(f"/fhir/PractitionerRole/{p['practitioner_role_id']}", headers=site.auth("coord"))
        assert role.status_code == 200, (kind, role.text)
        body = role.json()
        assert body["practitioner"]["reference"] == f"Practitioner/{p['practitioner_id']}"
        assert body["organization"]["reference"] == f"Organization/{p['facility_id']}"
    found = http.get(
        "/fhir/PractitionerRole",
        params={
            "practitioner": f"Practitioner/{site.zhang}",
            "organization": f"Organization/{site.facilities['LXRM']}",
        },
        headers=site.auth("coord"),
    ).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [postings["resident"]["practitioner_role_id"]]


def test_postings_that_make_no_sense_are_refused_naming_the_field(http, site) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/outreach/programmes/{site.programme_id}/postings"
    someone = expert("孙七", "neurology")

    no_rule = http.post(
        url, json={"practitioner_id": someone, "facility": "LXZY", "kind": "recurring"}, headers=site.auth("coord")
    )
    bad_rule = http.post(
        url,
        json={"practitioner_id": someone, "facility": "LXZY", "kind": "recurring", "recurrence": "every full moon"},
        headers=site.auth("coord"),
    )
    no_window = http.post(
        url, json={"practitioner_id": someone, "facility": "LXZY", "kind": "short_term"}, headers=site.auth("coord")
    )
    not_receiving = http.post(
        url, json={"practitioner_id": someone, "facility": "LXWS", "kind": "resident"}, headers=site.auth("coord")
    )
    not_a_planner = http.post(
        url, json={"practitioner_id": someone, "facility": "LXZY", "kind": "resident"}, headers=site.auth("desk")
    )

    assert (no_rule.status_code, no_rule.json()["field"]) == (422, "recurrence")
    assert (bad_rule.status_code, bad_rule.json()["field"]) == (422, "recurrence")
    assert no_window.status_code == 422 and no_window.json()["field"] in ("start", "end")
    assert not_receiving.status_code == 422 and not_receiving.json()["field"] == "facility"
    assert not_a_planner.status_code == 403


def test_only_the_programmes_own_coordinators_plan_it(http, site) -> None:  # type: ignore[no-untyped-def]
    month = f"{local_now().date():%Y-%m}"
    someone = expert("孙七", "neurology")
    programme = f"/api/v1/outreach/programmes/{site.programme_id}"

    posting = http.post(
        f"{programme}/postings",
        json={"practitioner_id": someone, "facility": "LXZY", "kind": "resident"},
        headers=site.auth("far_coord"),
    )
    demand = http.post(
        f"{programme}/demand",
        json={"facility": "LXZY", "specialty": "neurology", "sessions": 2},
        headers=site.auth("far_coord"),
    )
    solve = http.post(f"{programme}/rosters", json={"month": month}, headers=site.auth("far_coord"))
    check_in = http.post(
        f"{programme}/checkins",
        json={"practitioner_id": site.zhang, "day": str(local_now().date())},
        headers=site.auth("far_coord"),
    )
    new_programme = http.post(
        "/api/v1/outreach/programmes",
        json={"name": "别人的项目", "sending_facility": "QDSL", "receiving_facilities": ["LXZY"]},
        headers=site.auth("far_coord"),
    )
    page = http.get(f"/outreach/programmes/{site.programme_id}/roster", headers=site.auth("far_coord"))

    for refused in (posting, demand, solve, check_in, new_programme):
        assert refused.status_code == 403, refused.text
    assert page.status_code == 200 and 'data-testid="solve"' not in page.text, "no solve button for outsiders"
    own_page = http.get(f"/outreach/programmes/{site.programme_id}/roster", headers=site.auth("coord"))
    assert 'data-testid="solve"' in own_page.text
    own = http.post(f"{programme}/rosters", json={"month": month}, headers=site.auth("coord"))
    assert own.status_code == 200 and own.json()["feasible"]
