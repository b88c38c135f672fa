"""Who sees a clinic's patients: the clinic's hospital, the expert and the programme's coordinators — nobody else,
and every look at the list is in the audit trail (also under each listed patient with a record)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from yilian.db import read_session, unit_of_work
from yilian.errors import Conflict, Invalid, NotFound
from yilian.fhir import store
from yilian.network import service as network
from yilian.outreach import clinics
from yilian.outreach.schemas import PatientIn
from yilian.security.models import AuditEvent, User


def day_list(http, site, user: str):  # type: ignore[no-untyped-def]
    return http.get(f"/api/v1/outreach/clinics/{site.clinic_id}/days/{site.day}", headers=site.auth(user))


def test_the_day_list_is_for_the_clinics_hospital_the_expert_and_the_programmes_coordinators(http, site) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="刘女士", phone="13900000001"))

    allowed = {user: day_list(http, site, user) for user in ("desk", "expert", "coord")}
    refused = {user: day_list(http, site, user) for user in ("colleague", "far_coord", "township", "tcm", "official")}

    for user, r in allowed.items():
        assert r.status_code == 200, (user, r.text)
        assert [a["patient_name"] for a in r.json()["appointments"]] == ["刘女士"]
    for user, r in refused.items():
        assert r.status_code == 403, (user, r.text)
        assert r.json()["field"] == "clinic" and "刘女士" not in r.text
    # Outside the scope the clinic's free numbers are still public; the patients are not.
    public = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}", headers=site.auth("far_coord"))
    assert public.status_code == 200 and public.json()["days"][0]["booked"] == 1
    cancel_refused = http.post(
        f"/api/v1/outreach/appointments/{allowed['desk'].json()['appointments'][0]['reference']}/cancel",
        json={},
        headers=site.auth("far_coord"),
    )
    assert cancel_refused.status_code == 403


def test_the_clinic_desk_page_hides_the_patients_from_a_user_outside_the_scope(http, site) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="刘女士", phone="13900000001"))

    own = http.get(f"/outreach/clinics/{site.clinic_id}?day={site.day}", headers=site.auth("desk"))
    outside = http.get(f"/outreach/clinics/{site.clinic_id}?day={site.day}", headers=site.auth("far_coord"))

    assert own.status_code == 200 and "刘女士" in own.text
    assert outside.status_code == 200 and "刘女士" not in outside.text


def test_every_read_of_the_day_list_is_audited_also_under_each_patient_with_a_record(http, site) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        patient = str(store.create(s, {"resourceType": "Patient", "name": [{"text": "周患者"}]})["id"])
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="周患者", patient_ref=patient, phone="13900000002"))
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="无档案", phone="13900000003"))

    assert day_list(http, site, "coord").status_code == 200
    assert day_list(http, site, "expert").status_code == 200

    with read_session() as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "outreach.clinic.day_list").order_by(AuditEvent.at)
        ).all()
    by_user = {(r.username, r.patient_ref) for r in rows}
    assert by_user == {
        ("coord", None),
        ("coord", f"Patient/{patient}"),
        ("expert", None),
        ("expert", f"Patient/{patient}"),
    }
    summary = next(r for r in rows if r.username == "coord" and r.patient_ref is None)
    assert summary.resource_ref == f"Schedule/{site.clinic_id}"
    assert summary.detail == {"day": str(site.day), "appointments": 2, "waiting": 0}


def test_only_the_account_linked_to_the_experts_record_is_the_expert(http, site) -> None:  # type: ignore[no-untyped-def]
    """A colleague at the expert's hospital who bears the same name is not the expert; unlinking the expert's own
    account takes the list away on the next request."""
    with unit_of_work() as s:
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="刘女士", phone="13900000001"))
    assert day_list(http, site, "expert").status_code == 200
    assert day_list(http, site, "colleague").status_code == 403

    with unit_of_work() as s:
        network.link_account(s, "expert", None)
    assert day_list(http, site, "expert").status_code == 403


def test_linking_an_account_names_what_is_wrong(site) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ("colleague", site.zhang, Conflict, "already linked to user expert"),  # one account per practitioner
        ("desk", site.zhang, Invalid, "does not work at"),  # a county doctor is not the city hospital's expert
        ("colleague", str(uuid.uuid4()), NotFound, "no practitioner"),
        ("colleague", "not-an-id", NotFound, "no practitioner"),
    ]
    for username, practitioner, error, message in cases:
        with pytest.raises(error) as caught, unit_of_work() as s:
            network.link_account(s, username, practitioner)
        assert caught.value.field == "practitioner_id" and message in str(caught.value), (username, caught.value)
    with read_session() as s:
        rows = s.execute(select(User.username, User.practitioner_id).where(User.practitioner_id.is_not(None)))
        linked = {username: practitioner for username, practitioner in rows}
        audited = s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "user.link_practitioner")).all()
    assert linked == {"expert": uuid.UUID(site.zhang)}  # nothing half-written by the refused links
    assert audited == [{"username": "expert", "practitioner_id": site.zhang}]
