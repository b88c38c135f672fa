"""Account administration on the accounts page: who sees and changes which accounts, new accounts with errors that
name the field, linking a clinician's account to their practitioner record, disabling an account."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from yilian.db import read_session, unit_of_work
from yilian.network import service
from yilian.network.models import Division
from yilian.network.schemas import ConsortiumIn, FacilityIn, PractitionerIn
from yilian.security import service as users
from yilian.security import tokens
from yilian.security.models import AuditEvent, User


@pytest.fixture
def county(shanxi):  # type: ignore[no-untyped-def]
    """洪洞: a county hospital leading a township centre; a township in another county; five accounts."""
    with unit_of_work() as s:
        towns = {
            county: s.scalars(
                select(Division.code).where(Division.parent_code == county).order_by(Division.code)
            ).first()
            for county in ("141024", "141021")
        }
        for code, division, level in [
            ("L1", "141024", "county_hospital"),
            ("T1", towns["141024"], "township_centre"),
            ("F1", towns["141021"], "township_centre"),
        ]:
            service.create_facility(s, FacilityIn(code=code, name=f"测试{code}", level=level, division_code=division))
        service.create_consortium(
            s,
            ConsortiumIn(
                name="洪洞县医疗集团",
                form="county_medical_community",
                lead_facility_id="L1",
                members=[{"facility_id": "L1"}, {"facility_id": "T1"}],
            ),
        )
        ids = {code: service.resolve_facility_id(s, code) for code in ("L1", "T1", "F1")}
        doctors = {
            name: str(
                service.create_practitioner(
                    s, PractitionerIn(name=name, gender="female", title="attending", home_facility_id="T1")
                ).id
            )
            for name in ("李梅", "王芳")
        }
        s.add_all(
            User(username=u, display_name=u, role=role, facility_id=fid, division_code=div, password_hash="!")
            for u, role, fid, div in [
                ("root", "system_admin", None, None),
                ("office", "consortium_admin", ids["L1"], None),
                ("sun", "commission_official", None, "141000"),
                ("li", "township_doctor", ids["T1"], None),
                ("far", "township_doctor", ids["F1"], None),
            ]
        )
    return {"facilities": ids, "doctors": doctors, "auth": lambda u: {"Authorization": f"Bearer {tokens.issue(u)}"}}


def _listed(http, county, user: str) -> set[str] | int:  # type: ignore[no-untyped-def]
    r = http.get("/network/accounts", headers=county["auth"](user))
    if r.status_code != 200:
        return r.status_code
    return {u for u in ("root", "office", "sun", "li", "far") if f'href="/network/accounts/{u}"' in r.text}


def test_each_administrator_sees_the_accounts_of_the_facilities_they_administer(http, county) -> None:  # type: ignore[no-untyped-def]
    assert _listed(http, county, "root") == {"root", "office", "sun", "li", "far"}
    assert _listed(http, county, "office") == {"office", "li"}  # the consortium's members, not the other county
    assert _listed(http, county, "sun") == {"office", "sun", "li", "far"}  # the city: both counties
    assert _listed(http, county, "li") == 403  # a township doctor administers nobody
    # An account outside one's reach is not even confirmed to exist.
    assert http.get("/network/accounts/far", headers=county["auth"]("office")).status_code == 404


def test_a_new_account_is_created_from_the_form_and_bad_input_names_the_field(http, county) -> None:  # type: ignore[no-untyped-def]
    form = {
        "username": "zhao",
        "display_name": "赵医生",
        "role": "township_doctor",
        "facility": "T1",
        "password": "s3cret-pass",
    }
    bad = [
        ({**form, "password": "short"}, "password"),
        ({**form, "role": "surgeon"}, "role"),
        ({**form, "facility": "NOPE"}, "facility"),
        ({**form, "facility": ""}, "facility"),  # a township doctor works at a facility
        ({**form, "facility": "F1"}, "facility"),  # outside the consortium office's reach
    ]
    for data, field in bad:
        r = http.post("/network/accounts", data=data, headers=county["auth"]("office"))
        assert 400 <= r.status_code < 500 and field in r.text, (field, r.status_code, r.text[:300])
    with read_session() as s:
        assert s.scalar(select(User).where(User.username == "zhao")) is None  # nothing half-written

    r = http.post("/network/accounts", data=form, headers=county["auth"]("office"))
    assert r.status_code == 303 and r.headers["location"] == "/network/accounts/zhao"
    page = http.get("/network/accounts/zhao", headers=county["auth"]("office"))
    assert page.status_code == 200 and "赵医生" in page.text and "测试T1" in page.text
    signed_in = http.post("/login", data={"username": "zhao", "password": "s3cret-pass"})
    assert signed_in.status_code == 303  # the new account signs in with its initial password


def test_an_account_is_linked_to_a_practitioner_of_its_facility_and_unlinked(http, county) -> None:  # type: ignore[no-untyped-def]
    auth = county["auth"]("office")
    page = http.get("/network/accounts/li", headers=auth)
    assert "李梅" in page.text and "王芳" in page.text  # both candidates: home T1, no account yet

    r = http.post(
        "/network/accounts/li/practitioner", data={"practitioner_id": county["doctors"]["李梅"]}, headers=auth
    )
    assert r.status_code == 303
    with read_session() as s:
        assert s.scalar(select(User.practitioner_id).where(User.username == "li")) == uuid.UUID(
            county["doctors"]["李梅"]
        )
    listed = http.get("/network/accounts?q=li", headers=auth).text
    assert "李梅" in listed

    # The far township's doctor cannot be made 王芳 (not their facility), not even by the system administrator.
    wrong = http.post(
        "/network/accounts/far/practitioner",
        data={"practitioner_id": county["doctors"]["王芳"]},
        headers=county["auth"]("root"),
    )
    assert wrong.status_code == 422 and "practitioner_id" in wrong.text

    assert http.post("/network/accounts/li/practitioner", data={}, headers=auth).status_code == 303
    with read_session() as s:
        assert s.scalar(select(User.practitioner_id).where(User.username == "li")) is None
        actions = s.scalars(select(AuditEvent.username).where(AuditEvent.action == "user.link_practitioner")).all()
    assert actions == ["office", "office"]


def test_a_disabled_account_is_refused_at_once_and_nobody_disables_themselves(http, county) -> None:  # type: ignore[no-untyped-def]
    li = county["auth"]("li")
    assert http.get("/network/facilities", headers=li).status_code == 200
    r = http.post("/network/accounts/li/active", data={"active": "false"}, headers=county["auth"]("office"))
    assert r.status_code == 303
    refused = http.get("/network/facilities", headers=li)  # a page sends a refused caller to sign in
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert "已停用" in http.get("/network/accounts/li", headers=county["auth"]("office")).text

    own = http.post("/network/accounts/office/active", data={"active": "false"}, headers=county["auth"]("office"))
    assert own.status_code == 422 and "active" in own.text
    far = http.post("/network/accounts/far/active", data={"active": "false"}, headers=county["auth"]("office"))
    assert far.status_code == 403


def test_everybody_changes_their_own_password_and_administrators_reset_others(http, county) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        users.set_password(s, "li", "first-pass-1")
    li = county["auth"]("li")
    own = http.get("/network/accounts/me", headers=li)  # the header's link: a township doctor sees their own account
    assert own.status_code == 200 and "修改密码" in own.text and "停用账户" not in own.text

    change = {"new_password": "second-pass-2", "confirm_password": "second-pass-2"}
    wrong = http.post("/network/accounts/li/password", data={**change, "current_password": "nope"}, headers=li)
    assert wrong.status_code == 422 and "current_password" in wrong.text
    differ = http.post(
        "/network/accounts/li/password",
        data={**change, "confirm_password": "other-pass-3", "current_password": "first-pass-1"},
        headers=li,
    )
    assert differ.status_code == 422 and "confirm_password" in differ.text
    assert http.post("/login", data={"username": "li", "password": "first-pass-1"}).status_code == 303  # unchanged

    done = http.post("/network/accounts/li/password", data={**change, "current_password": "first-pass-1"}, headers=li)
    assert done.status_code == 303 and done.headers["location"].endswith("changed=password")
    assert http.post("/login", data={"username": "li", "password": "second-pass-2"}).status_code == 303

    # The consortium office resets li's password without knowing it; li may not touch anybody else's.
    reset = {"new_password": "reset-pass-4", "confirm_password": "reset-pass-4"}
    assert http.post("/network/accounts/li/password", data=reset, headers=county["auth"]("office")).status_code == 303
    assert http.post("/login", data={"username": "li", "password": "reset-pass-4"}).status_code == 303
    assert http.post("/network/accounts/far/password", data=reset, headers=li).status_code == 403
    with read_session() as s:
        audited = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "user.password").order_by(AuditEvent.at)
        ).all()
    assert [d["own"] for d in audited] == [False, True, False]  # the set-up, li's change, the office's reset
    assert all("pass" not in str(d) for d in audited)  # never the password itself
