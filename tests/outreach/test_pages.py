"""The outreach pages as people see them: the coordinator's programme, roster calendar (solve, lock, re-solve) and
clinic desk; the patient's public booking page on a phone, with the code the demo's console gateway "sends"."""

from __future__ import annotations

import re
from datetime import timedelta

from yilian.outreach.clinics import local_now


def test_the_coordinator_sees_programmes_clinics_and_the_home_panel_in_chinese(http, site) -> None:  # type: ignore[no-untyped-def]
    home = http.get("/", headers=site.auth("coord"))
    index = http.get("/outreach", headers=site.auth("coord"))
    programme = http.get(f"/outreach/programmes/{site.programme_id}", headers=site.auth("coord"))

    assert home.status_code == 200 and 'data-testid="outreach-panel"' in home.text and "专家下沉" in home.text
    assert index.status_code == 200 and "市立医院—莱西专家下沉" in index.text and "张三 · cardiology" in index.text
    assert programme.status_code == 200
    assert "常驻专家" in programme.text and "FREQ=MONTHLY;BYDAY=1SA,1SU" in programme.text
    assert 'data-testid="impact"' in programme.text and "门诊人次" in programme.text
    http.cookies.set("yilian_lang", "en")
    english = http.get(f"/outreach/programmes/{site.programme_id}", headers=site.auth("coord"))
    assert "Resident expert" in english.text and "Outpatient visits" in english.text


def test_the_coordinator_solves_the_month_locks_a_day_and_re_solves_from_the_calendar(http, site) -> None:  # type: ignore[no-untyped-def]
    month = f"{local_now().date():%Y-%m}"
    url = f"/outreach/programmes/{site.programme_id}/roster"

    solved = http.post(url, data={"month": month}, headers=site.auth("coord"))
    page = http.get(url, params={"month": month}, headers=site.auth("coord"))

    assert solved.status_code == 303
    assert 'data-testid="roster-calendar"' in page.text and "OPTIMAL" in page.text
    assert "0 条违反" in page.text or "0 broken rules" in page.text
    locked = http.post(
        f"{url}/lock",
        data={"month": month, "practitioner_id": site.zhang, "day": f"{month}-15", "facility": ""},
        headers=site.auth("coord"),
    )
    assert locked.status_code == 303
    again = http.post(url, data={"month": month}, headers=site.auth("coord"))
    assert again.status_code == 303
    roster = http.get(
        f"/api/v1/outreach/programmes/{site.programme_id}/rosters/{month}", headers=site.auth("coord")
    ).json()
    day15 = [e for e in roster["entries"] if e["practitioner_id"] == site.zhang and e["day"] == f"{month}-15"]
    assert day15 == [
        {"practitioner_id": site.zhang, "day": f"{month}-15", "facility_id": None, "specialty": None, "locked": True}
    ]
    assert roster["violations"] == []
    official = http.post(url, data={"month": month}, headers=site.auth("official"))
    assert official.status_code == 403


def test_a_patient_books_on_the_public_page_with_the_code_and_sees_the_booking(http, site) -> None:  # type: ignore[no-untyped-def]
    listing = http.get("/book")
    assert listing.status_code == 200 and "张三" in listing.text and "莱西市人民医院" in listing.text
    form_url = f"/book/{site.clinic_id}/{site.day}"
    assert f'href="{form_url}"' in listing.text
    person = {"name": "刘女士", "id_card": "", "phone": "13912345678"}

    sent = http.post(form_url, data={**person, "action": "code"})
    code = re.search(r'data-testid="demo-code">.*?<strong>(\d{6})</strong>', sent.text, re.S)
    wrong = http.post(form_url, data={**person, "action": "book", "code": "12345x"})
    done = http.post(form_url, data={**person, "action": "book", "code": code.group(1) if code else ""})

    assert sent.status_code == 200 and code, sent.text
    assert wrong.status_code == 422 and 'data-field="code"' in wrong.text and 'value="刘女士"' in wrong.text
    assert done.status_code == 200 and "预约成功" in done.text
    reference = re.search(r'data-testid="reference">(\w+)<', done.text)
    assert reference
    patient_cookie = done.cookies["yilian_patient"]
    http.cookies.set("yilian_patient", patient_cookie)
    mine = http.get("/book/mine")
    assert reference.group(1) in mine.text and "13912345678" not in mine.text  # the phone is shown masked
    # A patient's cookie is no staff session.
    http.cookies.set("yilian_session", patient_cookie)
    assert http.get("/outreach").status_code == 303


def test_the_clinic_desk_books_cancels_and_adds_extra_numbers(http, site) -> None:  # type: ignore[no-untyped-def]
    url = f"/outreach/clinics/{site.clinic_id}"
    for i in range(4):
        r = http.post(
            f"{url}/book",
            data={"day": str(site.day), "name": f"患者{i}", "phone": f"1390000000{i}"},
            headers=site.auth("desk"),
        )
        assert r.status_code == 303
    page = http.get(url, params={"day": str(site.day)}, headers=site.auth("desk"))
    assert page.text.count("患者") >= 4 and 'data-testid="waitlist"' in page.text
    bad = http.post(f"{url}/book", data={"day": str(site.day), "name": "王", "phone": "123"}, headers=site.auth("desk"))
    assert bad.status_code == 422
    extra = http.post(f"{url}/extra", data={"day": str(site.day), "count": "2"}, headers=site.auth("desk"))
    assert extra.status_code == 303
    after = http.get("/api/v1/outreach/clinics/" + site.clinic_id, headers=site.auth("desk")).json()["days"][0]
    assert (after["booked"], after["free"], after["waiting"]) == (4, 1, 0)
    another = site.day + timedelta(days=1)
    opened = http.post(f"{url}/days", data={"day": str(another)}, headers=site.auth("desk"))
    elsewhere = http.post(f"{url}/days", data={"day": str(another)}, headers=site.auth("tcm"))
    assert opened.status_code == 303 and elsewhere.status_code == 403
    days = http.get("/api/v1/outreach/clinics/" + site.clinic_id, headers=site.auth("desk")).json()["days"]
    assert [(d["day"], d["quota"], d["free"]) for d in days] == [(str(site.day), 3, 1), (str(another), 3, 3)]


def test_the_receiving_hospital_records_a_check_in_and_a_lecture_from_the_programme_page(http, site) -> None:  # type: ignore[no-untyped-def]
    url = f"/outreach/programmes/{site.programme_id}"
    page = http.get(url, headers=site.auth("desk"))
    assert 'data-testid="activity-form"' in page.text and "孙医生" in page.text
    today = local_now().date()

    checked = http.post(
        f"{url}/checkins", data={"practitioner_id": site.zhang, "day": str(today)}, headers=site.auth("desk")
    )
    lecture = http.post(
        f"{url}/activities",
        data={
            "practitioner_id": site.zhang,
            "facility": site.facilities["LXRM"],
            "day": str(today),
            "kind": "lecture",
            "title": "心衰规范化治疗",
            "people": [site.local_doctor],
        },
        headers=site.auth("desk"),
    )
    nobody = http.post(
        f"{url}/activities",
        data={
            "practitioner_id": site.zhang,
            "facility": site.facilities["LXRM"],
            "day": str(today),
            "kind": "lecture",
            "title": "x",
        },
        headers=site.auth("desk"),
    )

    assert checked.status_code == 303 and lecture.status_code == 303
    assert nobody.status_code == 422
    after = http.get(url, headers=site.auth("desk")).text
    assert "心衰规范化治疗" in after and "专题讲座" in after
    assert http.get(url, headers=site.auth("township")).text.count('data-testid="activity-form"') == 0


def test_the_calendar_explains_which_rule_cannot_hold_and_by_how_much(http, site) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    first = local_now().date().replace(day=1)
    monday = first + timedelta(days=(7 - first.weekday()) % 7 or 7)  # a Monday with its whole week in the month
    duty = [str(monday + timedelta(days=i)) for i in range(6)]  # 张三 is on duty at home Monday to Saturday
    marked = http.post(
        "/api/v1/outreach/expert-days",
        json={"practitioner_id": site.zhang, "days": duty, "kind": "home_duty"},
        headers=site.auth("coord"),
    )
    assert marked.status_code == 201
    month = f"{first:%Y-%m}"
    url = f"/outreach/programmes/{site.programme_id}/roster"

    assert http.post(url, data={"month": month}, headers=site.auth("coord")).status_code == 303
    page = http.get(url, params={"month": month}, headers=site.auth("coord"))
    roster = http.get(
        f"/api/v1/outreach/programmes/{site.programme_id}/rosters/{month}", headers=site.auth("coord")
    ).json()

    assert not roster["feasible"]
    short = [s for s in roster["shortfalls"] if s["rule"] == "resident_days"]
    assert short and short[0]["expert_id"] == site.zhang and short[0]["amount"] >= 3
    assert "本月无法全部满足的规则" in page.text and "常驻专家每周在岗天数" in page.text
    assert f"差 {short[0]['amount']} 天" in page.text and "home duty" in page.text
