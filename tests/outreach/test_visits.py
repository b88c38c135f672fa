"""On site: check-ins against the days-per-week rule, visiting-day activities (surgeries become Procedures), local
doctors' skills, and a programme's impact counted from records — through the JSON API of a real server."""

from __future__ import annotations

from datetime import date, timedelta

from yilian.db import unit_of_work
from yilian.fhir import store
from yilian.outreach.clinics import local_now

AMB = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
IMP = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}


def last_full_week() -> list[date]:
    today = local_now().date()
    monday = today - timedelta(days=today.weekday() + 7)
    return [monday + timedelta(days=i) for i in range(7)]


def new_patient() -> str:
    with unit_of_work() as s:
        return str(store.create(s, {"resourceType": "Patient", "name": [{"text": "周患者"}], "gender": "female"})["id"])


def test_it_alerts_when_a_resident_expert_was_on_site_fewer_than_four_days_last_week(http, site) -> None:  # type: ignore[no-untyped-def]
    week = last_full_week()
    for day in week[:3]:  # Monday to Wednesday only
        r = http.post(
            f"/api/v1/outreach/programmes/{site.programme_id}/checkins",
            json={"practitioner_id": site.zhang, "day": str(day)},
            headers=site.auth("desk"),
        )
        assert r.status_code == 201

    rows = http.get(
        f"/api/v1/outreach/programmes/{site.programme_id}/compliance",
        params={"from": str(week[0]), "to": str(week[-1])},
        headers=site.auth("official"),
    ).json()

    assert [(r["practitioner_name"], r["min_days_per_week"]) for r in rows] == [("张三", 4)]
    assert [(a["week_start"], a["on_site"], a["required"], a["short_by"]) for a in rows[0]["alerts"]] == [
        (str(week[0]), 3, 4, 1)
    ]
    twice = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/checkins",
        json={"practitioner_id": site.zhang, "day": str(week[0])},
        headers=site.auth("desk"),
    )
    assert twice.status_code == 409 and twice.json()["field"] == "day"
    fourth = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/checkins",
        json={"practitioner_id": site.zhang, "day": str(week[3])},
        headers=site.auth("desk"),
    )
    assert fourth.status_code == 201
    again = http.get(
        f"/api/v1/outreach/programmes/{site.programme_id}/compliance",
        params={"from": str(week[0]), "to": str(week[-1])},
        headers=site.auth("official"),
    ).json()
    assert again[0]["alerts"] == []


def test_a_check_in_is_kept_by_the_hospitals_involved_only(http, site) -> None:  # type: ignore[no-untyped-def]
    r = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/checkins",
        json={"practitioner_id": site.zhang, "day": str(last_full_week()[0])},
        headers=site.auth("township"),
    )
    future = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/checkins",
        json={"practitioner_id": site.zhang, "day": str(local_now().date() + timedelta(days=3))},
        headers=site.auth("desk"),
    )
    assert r.status_code == 403
    assert future.status_code == 422 and future.json()["field"] == "day"


def test_a_surgery_on_a_visiting_day_becomes_a_procedure_with_the_local_team(http, site) -> None:  # type: ignore[no-untyped-def]
    patient = new_patient()
    day = last_full_week()[5]

    r = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/activities",
        json={
            "practitioner_id": site.li,
            "facility": "LXZY",
            "day": str(day),
            "kind": "surgery",
            "title": "颅内血肿清除术",
            "local_team": [site.local_doctor],
            "patient_ref": f"Patient/{patient}",
            "operation_level": 4,
        },
        headers=site.auth("coord"),
    )

    assert r.status_code == 201, r.text
    procedure_ref = r.json()["procedure_ref"]
    procedure = http.get(f"/fhir/{procedure_ref}", headers=site.auth("coord")).json()
    assert procedure["resourceType"] == "Procedure" and procedure["status"] == "completed"
    assert procedure["subject"]["reference"] == f"Patient/{patient}"
    assert [p["actor"]["reference"] for p in procedure["performer"]] == [
        f"Practitioner/{site.li}",
        f"Practitioner/{site.local_doctor}",
    ]
    assert procedure["location"]["reference"] == f"Location/{site.facilities['LXZY']}"
    no_patient = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/activities",
        json={
            "practitioner_id": site.li,
            "facility": "LXZY",
            "day": str(day),
            "kind": "surgery",
            "title": "阑尾切除术",
        },
        headers=site.auth("coord"),
    )
    assert no_patient.status_code == 422 and no_patient.json()["field"] == "patient_ref"
    lecture_alone = http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/activities",
        json={"practitioner_id": site.li, "facility": "LXZY", "day": str(day), "kind": "lecture", "title": "卒中识别"},
        headers=site.auth("coord"),
    )
    assert lecture_alone.status_code == 422 and lecture_alone.json()["field"] == "attendees"


def test_a_local_doctors_skills_log_shows_the_step_from_supervised_to_independent(http, site) -> None:  # type: ignore[no-untyped-def]
    week = last_full_week()
    steps = [("observed", None), ("assisted", site.zhang), ("supervised", site.zhang), ("independent", None)]
    for day, (level, supervisor) in zip(week, steps, strict=False):
        body = {"practitioner_id": site.local_doctor, "procedure": "冠脉造影", "day": str(day), "level": level}
        if supervisor:
            body["supervisor_id"] = supervisor
        assert http.post("/api/v1/outreach/skills", json=body, headers=site.auth("desk")).status_code == 201
    unsupervised = http.post(
        "/api/v1/outreach/skills",
        json={
            "practitioner_id": site.local_doctor,
            "procedure": "冠脉造影",
            "day": str(week[5]),
            "level": "supervised",
        },
        headers=site.auth("desk"),
    )

    skills = http.get(f"/api/v1/outreach/skills/{site.local_doctor}", headers=site.auth("desk")).json()

    assert unsupervised.status_code == 422 and unsupervised.json()["field"] == "supervisor_id"
    assert skills == [
        {
            "procedure": "冠脉造影",
            "counts": {"observed": 1, "assisted": 1, "supervised": 1, "independent": 1},
            "first_independent": str(week[3]),
            "level": "independent",
        }
    ]


def test_the_impact_dashboard_compares_the_receiving_hospitals_before_and_after_from_records(http, site) -> None:  # type: ignore[no-untyped-def]
    start = local_now().date() - timedelta(days=60)  # the programme's start (see the fixture)
    lxrm = site.facilities["LXRM"]
    patient = new_patient()
    with unit_of_work() as s:
        visits = [(start - timedelta(days=d), AMB) for d in (5, 20, 40)]
        visits += [(start + timedelta(days=d), AMB) for d in (1, 3, 10, 30, 50)]
        visits += [
            (start - timedelta(days=10), IMP),
            (start + timedelta(days=12), IMP),
            (start + timedelta(days=14), IMP),
        ]
        for day, cls in visits:
            store.create(
                s,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": cls,
                    "subject": {"reference": f"Patient/{patient}"},
                    "serviceProvider": {"reference": f"Organization/{lxrm}"},
                    "period": {"start": f"{day}T09:00:00+08:00", "end": f"{day}T11:00:00+08:00"},
                },
            )
    http.post(
        f"/api/v1/outreach/programmes/{site.programme_id}/activities",
        json={
            "practitioner_id": site.zhang,
            "facility": "LXRM",
            "day": str(start + timedelta(days=20)),
            "kind": "mentored_surgery",
            "title": "经皮冠状动脉介入治疗",
            "patient_ref": patient,
            "operation_level": 4,
            "local_team": [site.local_doctor],
            "attendees": [site.local_doctor],
        },
        headers=site.auth("coord"),
    )
    for i in range(4):  # quota 3: three booked, one waiting
        http.post(
            f"/api/v1/outreach/clinics/{site.clinic_id}/bookings",
            json={"day": str(site.day), "patient": {"name": f"患者{i}", "phone": f"1380000000{i}"}},
            headers=site.auth("township"),
        )

    impact = http.get(f"/api/v1/outreach/programmes/{site.programme_id}/impact", headers=site.auth("official")).json()

    figures = {f["name"]: (f["before"], f["after"]) for f in impact["figures"]}
    assert figures["outpatient_visits"] == (3, 5)
    assert figures["discharges"] == (1, 2)
    assert figures["operations"] == (0, 1) and figures["operations_level_3_4"] == (0, 1)
    assert (impact["slots_offered"], impact["slots_booked"], impact["fill_rate"], impact["unmet_demand"]) == (
        3,
        3,
        1.0,
        1,
    )
    assert impact["referrals_avoided"] == 3 + 1  # three clinic patients and one operated on site
    assert (impact["teaching_sessions"], impact["doctors_trained"]) == (1, 1)
