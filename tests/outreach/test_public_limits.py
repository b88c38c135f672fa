"""The public booking page cannot be used to flood phones with texts or to guess codes: codes are limited per
address and per phone each hour, every wrong code counts, and a phone is locked after too many — each refusal a 429
with a message in the patient's language and Retry-After."""

from __future__ import annotations

import httpx
import pytest

from yilian.outreach import sms

CODES = "/api/v1/outreach/public/codes"


def phone(i: int) -> str:
    return f"138{i:08d}"


def ask(http: httpx.Client, number: str, lang: str = "zh") -> httpx.Response:
    return http.post(CODES, json={"phone": number}, headers={"Accept-Language": lang})


def last_code(number: str) -> str:
    message = sms.gateway().last_to(number)  # type: ignore[attr-defined]
    return "".join(c for c in message.text if c.isdigit())[:6]


def book(http: httpx.Client, site, number: str, code: str, lang: str = "zh") -> httpx.Response:  # type: ignore[no-untyped-def]
    return http.post(
        f"/api/v1/outreach/public/clinics/{site.clinic_id}/bookings",
        json={"day": str(site.day), "patient": {"name": "刘女士", "phone": number}, "code": code},
        headers={"Accept-Language": lang},
    )


def test_one_address_asking_for_too_many_codes_is_told_to_wait(http, site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YILIAN_OUTREACH_CODES_PER_IP_PER_HOUR", "3")

    accepted = [ask(http, phone(i)).status_code for i in range(3)]
    refused = ask(http, phone(3))
    in_english = ask(http, phone(4), lang="en")

    assert accepted == [202, 202, 202]
    assert refused.status_code == 429 and refused.json()["field"] == "phone"
    wait = int(refused.headers["Retry-After"])
    assert 3500 < wait <= 3600 and refused.json()["retry_after"] == wait
    assert refused.json()["message"] == "您所在网络请求验证码过于频繁，请 60 分钟后再试"
    assert in_english.status_code == 429
    assert in_english.json()["message"] == (
        "too many verification codes asked for from your network: try again in 60 minutes"
    )
    assert sms.gateway().last_to(phone(3)) is None, "no text went out"  # type: ignore[attr-defined]


def test_one_phone_gets_at_most_five_codes_an_hour(http, site) -> None:  # type: ignore[no-untyped-def]
    statuses = [ask(http, phone(10)).status_code for _ in range(6)]

    assert statuses == [202] * 5 + [429]
    sixth = ask(http, phone(10))
    assert sixth.json()["field"] == "phone" and "该手机号一小时内获取验证码次数过多" in sixth.json()["message"]
    assert int(sixth.headers["Retry-After"]) > 0
    assert ask(http, phone(11)).status_code == 202, "another phone is not held up"


def test_wrong_codes_void_the_code_and_then_lock_the_phone(http, site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YILIAN_OUTREACH_WRONG_CODES_PER_PHONE_PER_HOUR", "7")
    number = phone(20)
    assert ask(http, number).status_code == 202
    code = last_code(number)
    wrong = "000000" if code != "000000" else "111111"

    guesses = [book(http, site, number, wrong) for _ in range(5)]
    right_too_late = book(http, site, number, code)

    assert [g.status_code for g in guesses] == [422] * 5, "each wrong code is refused naming the field"
    assert all(g.json()["field"] == "code" for g in guesses)
    assert right_too_late.status_code == 422 and "too many wrong codes" in right_too_late.json()["message"]

    assert ask(http, number).status_code == 202  # a new code; two more wrong ones reach the phone's limit of 7
    code = last_code(number)
    wrong = "000000" if code != "000000" else "111111"
    assert [book(http, site, number, wrong).status_code for _ in range(2)] == [422, 422]
    locked = book(http, site, number, code, lang="en")
    no_more_codes = ask(http, number)

    assert locked.status_code == 429 and locked.json()["field"] == "code"
    assert locked.json()["message"].startswith("too many wrong codes for this phone: it is locked")
    assert int(locked.headers["Retry-After"]) > 0
    assert no_more_codes.status_code == 429 and "已暂时锁定" in no_more_codes.json()["message"]


def test_the_public_page_says_when_to_come_back(http, site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YILIAN_OUTREACH_CODES_PER_IP_PER_HOUR", "1")
    form = {"action": "code", "name": "刘女士", "phone": phone(30)}

    first = http.post(f"/book/{site.clinic_id}/{site.day}", data=form)
    second = http.post(f"/book/{site.clinic_id}/{site.day}", data={**form, "phone": phone(31)})

    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
    assert "您所在网络请求验证码过于频繁，请 60 分钟后再试" in second.text
    assert 'data-field="phone"' in second.text, "the phone field is marked"
