"""The actor of a bearer token is remembered between requests; a change to the user must still take effect."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from yilian.db import unit_of_work
from yilian.errors import Invalid
from yilian.security import actor_cache, service, tokens
from yilian.security.models import AuditEvent

PASSWORD = "longenough"


def _auth(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(username)}", "Accept": "application/fhir+json"}


def test_a_disabled_users_token_stops_working_on_the_next_request(http, clean_db) -> None:
    with unit_of_work() as session:
        service.create_user(session, username="li.admin", password=PASSWORD, role="system_admin")
    headers = _auth("li.admin")
    assert http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers).status_code == 200
    assert http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers).status_code == 200  # cached now

    with unit_of_work() as session:
        service.update_user(session, "li.admin", active=False)
    refused = http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["resourceType"] == "OperationOutcome"

    with unit_of_work() as session:
        service.update_user(session, "li.admin", active=True)
    assert http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers).status_code == 200
    with unit_of_work() as session:
        actions = [e.action for e in session.query(AuditEvent).filter(AuditEvent.action == "user.update")]
    assert actions == ["user.update", "user.update"]


def test_a_role_change_applies_to_the_next_request(http, clean_db) -> None:
    with unit_of_work() as session:
        service.create_user(
            session, username="sun.official", password=PASSWORD, role="commission_official", division_code="141000"
        )
    headers = _auth("sun.official")
    search = {"patient": "Patient/p1", "code": "http://loinc.org|8480-6"}
    denied = http.get("/fhir/Observation", params=search, headers=headers)
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"

    with unit_of_work() as session:
        service.update_user(session, "sun.official", role="system_admin")
    assert http.get("/fhir/Observation", params=search, headers=headers).status_code == 200

    with unit_of_work() as session:
        service.update_user(session, "sun.official", role="commission_official")
    assert http.get("/fhir/Observation", params=search, headers=headers).status_code == 403


def test_a_role_change_is_checked_like_a_new_user(clean_db) -> None:
    with unit_of_work() as session:
        service.create_user(session, username="qian", password=PASSWORD, role="system_admin")
    with pytest.raises(Invalid) as info, unit_of_work() as session:
        service.update_user(session, "qian", role="village_doctor")
    assert info.value.field == "facility_id"
    with pytest.raises(Invalid) as info, unit_of_work() as session:
        service.update_user(session, "qian", role="surgeon")
    assert info.value.field == "role"


def test_a_user_disabled_by_another_process_is_refused_here_within_the_cache_lifetime(
    http, clean_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a second uvicorn worker, a script) cannot clear this process's memory: the short lifetime of
    a remembered actor bounds how long the token keeps working."""
    monkeypatch.setattr(actor_cache, "ACTOR_TTL_S", 0.5)
    with unit_of_work() as session:
        service.create_user(session, username="zhou.admin", password=PASSWORD, role="system_admin")
    headers = _auth("zhou.admin")
    assert http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers).status_code == 200

    script = (
        "from yilian.db import unit_of_work\n"
        "from yilian.security import service\n"
        "with unit_of_work() as session:\n"
        "    service.update_user(session, 'zhou.admin', active=False)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ))
    deadline = time.monotonic() + 10
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers).status_code
        time.sleep(0.1)
    assert status == 401
