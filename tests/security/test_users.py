from __future__ import annotations

import time
import uuid

import jwt
import pytest

from yilian.db import unit_of_work
from yilian.errors import Conflict, Invalid, Unauthorized
from yilian.security import service, tokens
from yilian.security.models import AuditEvent


def test_it_stores_passwords_as_argon2_hashes_and_signs_in_with_them(clean_db) -> None:
    with unit_of_work() as session:
        user = service.create_user(session, username="wang", password="s3cret-pass", role="system_admin")
        assert user.password_hash.startswith("$argon2")
        assert "s3cret-pass" not in user.password_hash
    with unit_of_work() as session:
        assert service.authenticate(session, "wang", "s3cret-pass").username == "wang"
        with pytest.raises(Unauthorized):
            service.authenticate(session, "wang", "wrong-pass")


def test_it_names_the_field_when_a_user_is_incomplete(clean_db) -> None:
    cases = [
        ({"username": "Bad Name", "password": "longenough", "role": "system_admin"}, "username"),
        ({"username": "li", "password": "short", "role": "system_admin"}, "password"),
        ({"username": "li", "password": "longenough", "role": "surgeon"}, "role"),
        ({"username": "li", "password": "longenough", "role": "village_doctor"}, "facility_id"),
        ({"username": "li", "password": "longenough", "role": "commission_official"}, "division_code"),
    ]
    for kwargs, field in cases:
        with pytest.raises(Invalid) as info, unit_of_work() as session:
            service.create_user(session, **kwargs)
        assert info.value.field == field


def test_it_refuses_a_second_user_with_the_same_name_and_audits_creation(clean_db) -> None:
    with unit_of_work() as session:
        service.create_user(
            session, username="zhao", password="longenough", role="village_doctor", facility_id=uuid.uuid4()
        )
    with pytest.raises(Conflict), unit_of_work() as session:
        service.create_user(session, username="zhao", password="longenough", role="system_admin")
    with unit_of_work() as session:
        actions = [e.action for e in session.query(AuditEvent).all()]
    assert actions == ["user.create"]


def test_it_issues_tokens_that_name_the_user_and_rejects_tampered_ones(clean_db) -> None:
    token = tokens.issue("zhao")
    assert tokens.username_from(token) == "zhao"
    with pytest.raises(Unauthorized):
        tokens.username_from(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_a_token_that_verified_once_is_still_refused_when_it_expires_or_is_forged(clean_db) -> None:
    """Verified tokens are remembered (a client sends the same one on every request): the memory must not outlive
    the token, nor accept a token that differs from the one that verified."""
    now = int(time.time())
    token = jwt.encode({"sub": "qian", "kind": "api", "iat": now, "exp": now + 2}, tokens._secret(), "HS256")
    assert tokens.username_from(token) == "qian"
    assert tokens.username_from(token) == "qian"  # remembered
    forged = jwt.encode({"sub": "qian", "kind": "api", "iat": now, "exp": now + 2}, "another key", "HS256")
    with pytest.raises(Unauthorized):
        tokens.username_from(forged)
    time.sleep(max(0.0, now + 2 - time.time()) + 0.1)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.username_from(token)


def test_it_signs_a_user_in_through_the_login_page_and_out_again(http, clean_db) -> None:
    with unit_of_work() as session:
        service.create_user(
            session, username="admin2", password="longenough", role="system_admin", display_name="管理员"
        )
    bad = http.post("/login", data={"username": "admin2", "password": "nope-nope"})
    assert bad.status_code == 401
    assert "用户名或密码错误" in bad.text
    good = http.post("/login", data={"username": "admin2", "password": "longenough", "next": "https://evil.example/"})
    assert good.status_code == 303
    assert good.headers["location"] == "/"
    http.cookies.update(good.cookies)
    home = http.get("/")
    assert home.status_code == 200
    assert "管理员" in home.text
    http.cookies.set("yilian_lang", "en")
    assert "Sign out" in http.get("/").text
    out = http.post("/logout")
    assert out.status_code == 303
    http.cookies.delete("yilian_session")
    assert http.get("/").status_code == 303
