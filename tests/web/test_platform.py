from __future__ import annotations

import pytest
from sqlalchemy import Engine

from yilian import db, migrations
from yilian.errors import Unavailable


def test_it_reports_a_healthy_migrated_database(http) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["database"]["migration"] == body["database"]["expected"]


def test_it_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path) -> None:
    empty = db.get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(Unavailable) as info:
        migrations.require_current(empty)
    assert "yilian db upgrade" in info.value.message


def test_it_sends_a_signed_out_visitor_to_the_login_page(http) -> None:
    response = http.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    page = http.get("/login")
    assert page.status_code == 200
    assert "登录" in page.text


def test_it_answers_api_callers_without_a_token_with_json_401(http, engine: Engine) -> None:
    response = http.get("/api/v1/network/facilities")
    assert response.status_code in (401, 404)
    assert response.headers["content-type"].startswith("application/json")
