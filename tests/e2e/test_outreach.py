"""A patient books an expert's last number on the public page from a phone; the next patient is put on the waitlist
by the quota; the first cancels and the number goes to the second — in Debian's Chromium."""

from __future__ import annotations

import re

from support.roster_region import build_site
from yilian.db import unit_of_work
from yilian.outreach import clinics
from yilian.outreach.schemas import PatientIn

PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "zh-CN", "is_mobile": True, "has_touch": True}


def book_on_the_public_page(page, url: str, clinic_id: str, day: str, name: str, mobile: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/book")
    page.click(f'a[href="/book/{clinic_id}/{day}"]')
    page.fill('input[name="name"]', name)
    page.fill('input[name="phone"]', mobile)
    page.click('[data-testid="send-code"]')
    code = page.inner_text('[data-testid="demo-code"] strong')  # the demo's console gateway shows what it "sent"
    assert re.fullmatch(r"\d{6}", code)
    page.fill('input[name="code"]', code)
    page.click('[data-testid="confirm"]')


def test_the_31st_booking_waits_and_a_cancellation_promotes_it(browser, live_server, clean_db, shot) -> None:  # type: ignore[no-untyped-def]
    site = build_site(quota=30)
    with unit_of_work() as s:
        for i in range(29):
            clinics.book(s, site.clinic_id, site.day, PatientIn(name=f"患者{i}", phone=f"1360000{i:04d}"))
    first = browser.new_context(**PHONE)
    second = browser.new_context(**PHONE)
    try:
        a, b = first.new_page(), second.new_page()
        for p in (a, b):
            p.set_default_timeout(15000)

        book_on_the_public_page(a, live_server.url, site.clinic_id, str(site.day), "刘女士", "13912345678")
        assert "预约成功" in a.inner_text('[data-testid="booking-result"]')
        assert "第 30 号" in a.inner_text('[data-testid="booking-result"]')
        shot("outreach-public-booked")

        book_on_the_public_page(b, live_server.url, site.clinic_id, str(site.day), "王先生", "13987654321")
        assert "候补第 1 位" in b.inner_text('[data-testid="waitlist-position"]')

        a.goto(f"{live_server.url}/book/mine")
        a.click('[data-testid="cancel"]')
        assert "已取消" in a.inner_text('[data-testid="my-appointments"]')

        b.goto(f"{live_server.url}/book/mine")
        mine = b.inner_text('[data-testid="my-appointments"]')
        assert "第 30 号" in mine and "预约成功" in mine
        shot("outreach-public-promoted")
    finally:
        first.close()
        second.close()


def test_in_the_demo_the_quota_sends_a_patient_to_the_waitlist_and_cancellations_promote_them(
    browser, demo_site
) -> None:  # type: ignore[no-untyped-def]
    import httpx

    days = [
        (c["id"], d)
        for c in httpx.get(f"{demo_site.url}/api/v1/outreach/public/clinics", timeout=30).json()
        for d in c["days"]
        if d["open_for_booking"]
    ]
    full_clinic, full = next((cid, d) for cid, d in days if d["free"] == 0 and d["waiting"] > 0)
    open_clinic, free = next((cid, d) for cid, d in days if d["free"] > 0)
    assert full["booked"] >= 30, "the demo's full day holds its quota of 30"
    first, second = browser.new_context(**PHONE), browser.new_context(**PHONE)
    desk = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    try:
        a, b, staff = first.new_page(), second.new_page(), desk.new_page()
        for p in (a, b, staff):
            p.set_default_timeout(20000)

        book_on_the_public_page(a, demo_site.url, open_clinic, free["day"], "刘女士", "13912340001")
        assert "预约成功" in a.inner_text('[data-testid="booking-result"]')

        book_on_the_public_page(b, demo_site.url, full_clinic, full["day"], "王先生", "13912340002")
        position = full["waiting"] + 1
        assert f"候补第 {position} 位" in b.inner_text('[data-testid="waitlist-position"]')

        staff.goto(f"{demo_site.url}/login")
        staff.fill("input[name=username]", "coordinator")
        staff.fill("input[name=password]", "yilian2026")
        staff.click("button[type=submit]")
        staff.wait_for_url(f"{demo_site.url}/")
        staff.goto(f"{demo_site.url}/outreach/clinics/{full_clinic}?day={full['day']}")
        for _ in range(position):  # each cancellation gives the number to the first patient waiting
            staff.locator('[data-testid="appointments"] button[type="submit"]').first.click()
            staff.wait_for_load_state()
        assert "王先生" in staff.inner_text('[data-testid="appointments"]')

        b.goto(f"{demo_site.url}/book/mine")
        mine = b.inner_text('[data-testid="my-appointments"]')
        assert "预约成功" in mine and full["day"] in mine
        assert b.locator('[data-testid="my-waitlist"]').count() == 0
    finally:
        for context in (first, second, desk):
            context.close()
