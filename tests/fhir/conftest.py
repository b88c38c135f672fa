"""Users with tokens for driving /fhir through the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from yilian.db import unit_of_work
from yilian.security import service, tokens


class FhirClient:
    """The `http` client with one user's bearer token and the FHIR content type."""

    def __init__(self, http: Any, token: str):
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    def _h(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.headers, **(extra or {})}

    def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.http.get(url, headers=self._h(headers), **kw)

    def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.http.post(url, json=json, headers=self._h(headers), **kw)

    def put(self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.http.put(url, json=json, headers=self._h(headers), **kw)

    def delete(self, url: str, headers: dict[str, str] | None = None) -> Any:
        return self.http.delete(url, headers=self._h(headers))


def _user(username: str, role: str) -> str:
    with unit_of_work() as session:
        facility = uuid.uuid4() if role not in ("system_admin", "insurance_officer", "commission_official") else None
        division = "140000" if role in ("insurance_officer", "commission_official") else None
        service.create_user(
            session, username=username, password="longenough", role=role, facility_id=facility, division_code=division
        )
    return tokens.issue(username)


@pytest.fixture
def doctor(http: Any, clean_db: Any) -> Iterator[FhirClient]:
    yield FhirClient(http, _user("dr.li", "county_doctor"))


@pytest.fixture
def admin(http: Any, clean_db: Any) -> Iterator[FhirClient]:
    yield FhirClient(http, _user("admin.wang", "system_admin"))


@pytest.fixture
def insurer(http: Any, clean_db: Any) -> Iterator[FhirClient]:
    yield FhirClient(http, _user("ins.zhao", "insurance_officer"))


@pytest.fixture
def new_patient() -> Any:
    return patient


@pytest.fixture
def new_observation() -> Any:
    return observation


def patient(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "张", "given": ["三丰"]}],
        "gender": "male",
        "birthDate": "1949-12-31",
        "identifier": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
                "system": "urn:yilian:sid:cn-resident-id",
                "value": "11010519491231002X",
            }
        ],
    }
    body.update(extra)
    return body


def observation(
    patient_id: str, code: str = "8480-6", value: float = 150, when: str = "2026-10-05T10:00:00+08:00"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


@pytest.fixture(autouse=True)
def _fresh_subscription_cache() -> Iterator[None]:
    """Tests empty the tables behind the store's back (clean_db): drop the process's copy of active Subscriptions,
    which a real deployment refreshes by its periodic check."""
    from yilian.fhir import subscriptions

    subscriptions.clear_cache()
    yield
    subscriptions.clear_cache()
