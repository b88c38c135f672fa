"""Users with bearer tokens for driving /fhir/ViewDefinition and the views page through the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from yilian.db import unit_of_work
from yilian.security import service, tokens


class Client:
    """The `http` client with one user's bearer token."""

    def __init__(self, http: Any, token: str):
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.http.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, json: Any = None, **kw: Any) -> Any:
        return self.http.post(url, json=json, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def put(self, url: str, json: Any = None, **kw: Any) -> Any:
        return self.http.put(url, json=json, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def _user(username: str, role: str) -> str:
    with unit_of_work() as session:
        facility = uuid.uuid4() if role not in ("system_admin", "insurance_officer", "commission_official") else None
        division = "140000" if role in ("insurance_officer", "commission_official") else None
        service.create_user(
            session, username=username, password="longenough", role=role, facility_id=facility, division_code=division
        )
    return tokens.issue(username)


@pytest.fixture
def admin(http: Any, clean_db: Any) -> Iterator[Client]:
    yield Client(http, _user("admin.views", "system_admin"))


@pytest.fixture
def doctor(http: Any, clean_db: Any) -> Iterator[Client]:
    yield Client(http, _user("dr.views", "county_doctor"))


@pytest.fixture
def official(http: Any, clean_db: Any) -> Iterator[Client]:
    yield Client(http, _user("wjw.views", "commission_official"))
