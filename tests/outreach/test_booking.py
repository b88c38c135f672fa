"""Expert clinics over real HTTP: numbers up to the daily quota, then the waitlist; cancellations and extra numbers
fill it; the booking horizon; patients booking themselves with a verification code; and the last numbers under a
crowd of simultaneous bookings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from yilian.db import read_session, unit_of_work
from yilian.errors import NotFound
from yilian.events import service as outbox
from yilian.outreach import clinics, sms
from yilian.outreach.models import Appointment, Slot
from yilian.outreach.schemas import ClinicIn, PatientIn
from yilian.security.actor import SYSTEM


def phone(i: int) -> str:
    return f"139{i:08d}"


def book(http: httpx.Client, site, name: str, i: int, *, user: str = "township", waitlist: bool = True, day=None):  # type: ignore[no-untyped-def]
    return http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/bookings",
        json={"day": str(day or site.day), "patient": {"name": name, "phone": phone(i)}, "waitlist": waitlist},
        headers=site.auth(user),
    )


def test_it_books_numbers_in_order_until_the_quota_then_puts_patients_on_the_waitlist(http, site) -> None:  # type: ignore[no-untyped-def]
    numbers = [book(http, site, f"患者{i}", i) for i in range(3)]
    fourth = book(http, site, "王大爷", 3)
    fifth = book(http, site, "赵大妈", 4)

    assert [r.status_code for r in numbers] == [201, 201, 201]
    assert [r.json()["appointment"]["number"] for r in numbers] == [1, 2, 3]
    assert fourth.status_code == 202 and fourth.json()["status"] == "waitlisted"
    assert fourth.json()["waitlist"]["position"] == 1 and fifth.json()["waitlist"]["position"] == 2
    day = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}", headers=site.auth("township")).json()["days"][0]
    assert (day["booked"], day["free"], day["waiting"]) == (3, 0, 2)
    full = book(http, site, "钱先生", 5, waitlist=False)
    assert full.status_code == 409 and full.json()["field"] == "day"


def test_a_cancellation_goes_to_the_first_patient_waiting_who_is_told_by_text(http, site) -> None:  # type: ignore[no-untyped-def]
    first = [book(http, site, f"患者{i}", i).json()["appointment"] for i in range(3)]
    book(http, site, "王大爷", 3)
    book(http, site, "赵大妈", 4)

    r = http.post(
        f"/api/v1/outreach/appointments/{first[1]['reference']}/cancel",
        json={"reason": "病人改期"},
        headers=site.auth("desk"),
    )

    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    listing = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}/days/{site.day}", headers=site.auth("desk")).json()
    booked = {a["patient_name"]: a["number"] for a in listing["appointments"] if a["status"] == "booked"}
    assert booked == {"患者0": 1, "王大爷": 2, "患者2": 3}
    assert [(w["patient_name"], w["status"], w["position"]) for w in listing["waitlist"]] == [
        ("王大爷", "promoted", 0),
        ("赵大妈", "waiting", 1),
    ]
    with unit_of_work() as s:
        outbox.subscribe("outreach.sms", clinics.deliver_sms)
        outbox.deliver_pending(s)
    gateway = sms.gateway()
    assert isinstance(gateway, sms.ConsoleGateway)
    message = gateway.last_to(phone(3))
    assert message is not None and "候补" in message.text and "第2号" in message.text
    again = http.post(f"/api/v1/outreach/appointments/{first[1]['id']}/cancel", json={}, headers=site.auth("desk"))
    assert again.status_code == 409


def test_extra_numbers_go_to_the_patients_waiting_first(http, site) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        book(http, site, f"患者{i}", i)

    r = http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/extra",
        json={"day": str(site.day), "count": 3},
        headers=site.auth("desk"),
    )

    assert r.status_code == 200 and r.json() == {"added": 3, "promoted_from_waitlist": 2}
    day = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}", headers=site.auth("desk")).json()["days"][0]
    assert (day["quota"], day["extra"], day["booked"], day["free"], day["waiting"]) == (3, 3, 5, 1, 0)
    sixth = book(http, site, "患者5", 5)
    assert sixth.status_code == 201 and sixth.json()["appointment"]["number"] == 6


def test_numbers_are_released_only_on_the_booking_horizon(http, site) -> None:  # type: ignore[no-untyped-def]
    far = site.day + timedelta(days=20)
    with unit_of_work() as s:
        clinics.open_days(s, site.clinic_id, [far])

    r = book(http, site, "患者", 1, day=far)

    assert r.status_code == 409 and r.json()["field"] == "day"
    assert "released at" in r.json()["message"] and "7 days ahead" in r.json()["message"]
    public = http.get("/api/v1/outreach/public/clinics").json()[0]["days"]
    assert [(d["day"], d["open_for_booking"]) for d in public] == [(str(site.day), True), (str(far), False)]


def test_patients_book_themselves_with_the_code_sent_to_their_phone(http, site) -> None:  # type: ignore[no-untyped-def]
    mobile = phone(77)
    url = f"/api/v1/outreach/public/clinics/{site.clinic_id}/bookings"
    body = {"day": str(site.day), "patient": {"name": "刘女士", "phone": mobile, "id_card": "11010519491231002X"}}

    no_code_yet = http.post(url, json={**body, "code": "123456"})
    assert no_code_yet.status_code == 422 and no_code_yet.json()["field"] == "code"
    assert http.post("/api/v1/outreach/public/codes", json={"phone": mobile}).status_code == 202
    message = sms.gateway().last_to(mobile)  # type: ignore[attr-defined]
    code = "".join(c for c in message.text if c.isdigit())[:6]
    wrong = http.post(url, json={**body, "code": "000000" if code != "000000" else "111111"})
    booked = http.post(url, json={**body, "code": code})
    replay = http.post(url, json={**body, "code": code})

    assert wrong.status_code == 422 and wrong.json()["field"] == "code"
    assert booked.status_code == 201 and booked.json()["appointment"]["channel"] == "public"
    assert replay.status_code == 422, "a code is good for one booking"


def test_bad_input_is_refused_naming_the_field(http, site) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/outreach/clinics/{site.clinic_id}/bookings"
    bad_id = http.post(
        url,
        json={"day": str(site.day), "patient": {"name": "张", "id_card": "110105194912310021"}},
        headers=site.auth("township"),
    )
    bad_phone = http.post(
        url, json={"day": str(site.day), "patient": {"name": "张", "phone": "12345"}}, headers=site.auth("township")
    )
    nobody = http.post(url, json={"day": str(site.day), "patient": {"name": "张"}}, headers=site.auth("township"))
    no_clinic = http.post(
        "/api/v1/outreach/clinics/not-a-clinic/bookings",
        json={"day": str(site.day), "patient": {"name": "张", "phone": phone(1)}},
        headers=site.auth("township"),
    )
    no_day = book(http, site, "张", 1, day=site.day + timedelta(days=1))

    assert (bad_id.status_code, bad_id.json()["field"]) == (422, "id_card")
    assert (bad_phone.status_code, bad_phone.json()["field"]) == (422, "patient.phone")
    assert (nobody.status_code, nobody.json()["field"]) == (422, "id_card")
    assert (no_clinic.status_code, no_clinic.json()["field"]) == (404, "clinic")
    assert (no_day.status_code, no_day.json()["field"]) == (404, "day")
    twice = [book(http, site, "张", 9) for _ in range(2)]
    assert [r.status_code for r in twice] == [201, 409]


def test_only_clinicians_book_and_only_the_clinics_hospital_sees_the_patients(http, site) -> None:  # type: ignore[no-untyped-def]
    assert book(http, site, "张", 1, user="official").status_code == 403
    assert book(http, site, "张", 1, user="township").status_code == 201
    other_hospital = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}/days/{site.day}", headers=site.auth("tcm"))
    own = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}/days/{site.day}", headers=site.auth("desk"))
    assert other_hospital.status_code == 403
    assert own.status_code == 200 and own.json()["appointments"][0]["patient_name"] == "张"


def test_a_crowd_booking_the_last_five_numbers_gets_exactly_five(http, site, live_server) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        clinic = clinics.create_clinic(
            s,
            ClinicIn(practitioner_id=site.li, facility="LXZY", daily_quota=30, release_time="00:00", days=[site.day]),
        )
        clinic_id = str(clinic.id)
        for i in range(25):  # the early birds: 25 of the 30 numbers are gone
            clinics.book(s, clinic.id, site.day, PatientIn(name=f"早到{i}", phone=phone(1000 + i)))

    def attempt(i: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            return c.post(
                f"/api/v1/outreach/clinics/{clinic_id}/bookings",
                json={"day": str(site.day), "patient": {"name": f"抢号{i}", "phone": phone(i)}, "waitlist": False},
                headers=site.auth("township"),
            ).status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(attempt, range(100)))

    assert sorted(set(statuses)) == [201, 409], statuses
    assert statuses.count(201) == 5
    with read_session() as s:
        busy = s.scalar(select(func.count(Slot.id)).where(Slot.clinic_id == clinic.id, Slot.status == "busy"))
        numbers = s.scalars(
            select(Slot.number)
            .join(Appointment, Appointment.slot_id == Slot.id)
            .where(Appointment.clinic_id == clinic.id)
        ).all()
    assert busy == 30
    assert sorted(numbers) == list(range(1, 31)), "every number sold exactly once"


def test_a_patient_who_leaves_the_waitlist_is_skipped_when_a_number_frees(site) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        booked = [
            clinics.book(s, site.clinic_id, site.day, PatientIn(name=f"患者{i}", phone=phone(i))) for i in range(3)
        ]
        first = clinics.book(s, site.clinic_id, site.day, PatientIn(name="王大爷", phone=phone(3)))
        clinics.book(s, site.clinic_id, site.day, PatientIn(name="赵大妈", phone=phone(4)))
    assert first.waitlist is not None
    with pytest.raises(NotFound), unit_of_work() as s:
        clinics.withdraw(s, first.waitlist.id, phone=phone(4))  # someone else's place
    with unit_of_work() as s:
        left = clinics.withdraw(s, first.waitlist.id, phone=phone(3))
    assert left.status == "withdrawn"
    with unit_of_work() as s:
        assert booked[0].appointment is not None
        clinics.cancel(s, booked[0].appointment.id, phone=phone(0))
    with unit_of_work() as s:
        appointments, waiting = clinics.day_list(s, site.clinic_id, site.day, actor=SYSTEM)
    assert {a.patient_name for a in appointments if a.status == "booked"} == {"赵大妈", "患者1", "患者2"}
    assert [(w.patient_name, w.status) for w in waiting] == [("王大爷", "withdrawn"), ("赵大妈", "promoted")]


def test_the_same_patient_pressing_book_many_times_at_once_gets_one_number(http, site, live_server) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        clinic = clinics.create_clinic(
            s,
            ClinicIn(practitioner_id=site.li, facility="LXZY", daily_quota=30, release_time="00:00", days=[site.day]),
        )
        clinic_id = str(clinic.id)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            return c.post(
                f"/api/v1/outreach/clinics/{clinic_id}/bookings",
                json={"day": str(site.day), "patient": {"name": "心急的王先生", "phone": phone(555)}},
                headers=site.auth("township"),
            ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, range(30)))

    assert sorted(statuses) == [201] + [409] * 29, statuses
    with read_session() as s:
        held = s.scalars(
            select(Appointment.status).where(Appointment.clinic_id == clinic.id, Appointment.phone == phone(555))
        ).all()
        busy = s.scalar(select(func.count(Slot.id)).where(Slot.clinic_id == clinic.id, Slot.status == "busy"))
    assert held == ["booked"] and busy == 1, "no second number, and no number left taken by a refused request"


def test_the_same_patient_joins_a_full_days_waitlist_once_even_at_once(http, site, live_server) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):  # the day's three numbers are gone
        assert book(http, site, f"患者{i}", i).status_code == 201

    def attempt(_: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            return c.post(
                f"/api/v1/outreach/clinics/{site.clinic_id}/bookings",
                json={"day": str(site.day), "patient": {"name": "王大爷", "phone": phone(556)}},
                headers=site.auth("township"),
            ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))

    assert sorted(statuses) == [202] + [409] * 19, statuses
    day = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}", headers=site.auth("desk")).json()["days"][0]
    assert day["waiting"] == 1
    booked_again = book(http, site, "王大爷", 556)
    assert booked_again.status_code == 409 and "already on the waitlist" in booked_again.json()["message"]


def test_numbers_open_at_eight_oclock_seven_days_before_the_clinic(site) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from yilian.errors import Conflict

    day = site.day + timedelta(days=10)
    with unit_of_work() as s:
        clinic = clinics.create_clinic(s, ClinicIn(practitioner_id=site.li, facility="LXZY", days=[day]))
        clinic_id = clinic.id
    release = day - timedelta(days=7)
    just_before = datetime(release.year, release.month, release.day, 7, 59, tzinfo=ZoneInfo("Asia/Shanghai"))
    at_eight = just_before + timedelta(minutes=1)

    with pytest.raises(Conflict) as early, unit_of_work() as s:
        clinics.book(s, clinic_id, day, PatientIn(name="早起的人", phone=phone(600)), now=just_before)
    with unit_of_work() as s:
        out = clinics.book(s, clinic_id, day, PatientIn(name="早起的人", phone=phone(600)), now=at_eight)

    assert early.value.field == "day" and f"released at {release} 08:00" in early.value.message
    assert out.appointment is not None and out.appointment.number == 1


def test_an_extra_session_gives_its_numbers_to_the_patients_waiting_for_the_full_day(http, site) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):  # 3 numbers, then 3 waiting
        book(http, site, f"患者{i}", i)
    extra_day = site.day + timedelta(days=1)

    r = http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/days",
        json={"days": [str(extra_day)], "waitlist_of": str(site.day)},
        headers=site.auth("desk"),
    )

    assert r.status_code == 201, r.text
    days = {d["day"]: (d["booked"], d["free"], d["waiting"]) for d in r.json()}
    assert days[str(site.day)] == (3, 0, 0) and days[str(extra_day)] == (3, 0, 0)
    moved = http.get(f"/api/v1/outreach/clinics/{site.clinic_id}/days/{extra_day}", headers=site.auth("desk")).json()
    assert [(a["patient_name"], a["number"], a["channel"]) for a in moved["appointments"]] == [
        ("患者3", 1, "waitlist"),
        ("患者4", 2, "waitlist"),
        ("患者5", 3, "waitlist"),
    ]
    with unit_of_work() as s:
        outbox.subscribe("outreach.sms", clinics.deliver_sms)
        outbox.deliver_pending(s)
    told = sms.gateway().last_to(phone(4))  # type: ignore[attr-defined]
    assert told is not None and str(extra_day) in told.text and "第2号" in told.text
    again = http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/days",
        json={"days": [str(extra_day)], "waitlist_of": str(site.day)},
        headers=site.auth("desk"),
    )
    assert again.status_code == 409 and again.json()["field"] == "days"
    outsider = http.post(
        f"/api/v1/outreach/clinics/{site.clinic_id}/days",
        json={"days": [str(extra_day + timedelta(days=1))], "waitlist_of": str(site.day)},
        headers=site.auth("far_coord"),
    )
    assert outsider.status_code == 403
