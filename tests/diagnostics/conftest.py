"""A small county medical community in Linfen with a county reading centre, its township and village members, a
hospital of another county that reads ECGs too (but not for them), users on each side, and patients in the record."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from yilian.db import unit_of_work
from yilian.fhir import store
from yilian.network import service as network
from yilian.network.schemas import ConsortiumIn, FacilityIn, MemberIn
from yilian.security import service as users
from yilian.security import tokens
from yilian.security.actor import Actor
from yilian.security.models import User
from yilian.security.passwords import hash_password


@dataclass
class Region:
    county_hospital: uuid.UUID
    township: uuid.UUID
    village: uuid.UUID
    other_county: uuid.UUID
    consortium: uuid.UUID
    patients: dict[str, str] = field(default_factory=dict)  # key → "Patient/<id>"

    def actor(self, username: str) -> Actor:
        with unit_of_work() as session:
            return users.actor_for(session, username)


USERS = {
    # username: (role, facility key or None, division)
    "village": ("village_doctor", "village", None),
    "township": ("township_doctor", "township", None),
    "reader": ("county_doctor", "county_hospital", None),
    "reader2": ("county_doctor", "county_hospital", None),
    "coordinator": ("referral_coordinator", "county_hospital", None),
    "expert": ("specialist", "county_hospital", None),
    "expert2": ("specialist", "county_hospital", None),
    "outsider": ("county_doctor", "other_county", None),
    "official": ("commission_official", None, "1410"),
}


@functools.cache
def password_hash() -> str:
    return hash_password("yilian2026")


def new_patient(name: str, birth: str = "1958-03-02", gender: str = "male") -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"text": name}], "gender": gender, "birthDate": birth}


@pytest.fixture
def region(clean_db: Engine) -> Iterator[Region]:
    with unit_of_work() as session:
        network.load_divisions(session, "14")
        counties = [d for d in network.list_divisions(session, "1410") if not d.name.endswith("区")]
        home, away = counties[0], counties[1]
        town = network.list_divisions(session, home.code)[0]

        def facility(code: str, name: str, level: str, division: str, caps: list[str]) -> uuid.UUID:
            data = FacilityIn(code=code, name=name, level=level, division_code=division, capabilities=caps)  # type: ignore[arg-type]
            return network.create_facility(session, data).id

        centre_caps = ["ecg_reading_centre", "imaging_reading_centre", "lab_centre"]
        hospital = facility("T-H01", f"{home.name}人民医院", "county_hospital", home.code, centre_caps)
        township = facility("T-T01", f"{town.name}卫生院", "township_centre", town.code, [])
        village = facility("T-V01", "东庄村卫生室", "village_clinic", town.code, [])
        other = facility("T-H02", f"{away.name}人民医院", "county_hospital", away.code, centre_caps)
        consortium = network.create_consortium(
            session,
            ConsortiumIn(
                name=f"{home.name}医疗集团",
                form="county_medical_community",  # type: ignore[arg-type]
                lead_facility_id=str(hospital),
                division_code=home.code,
                members=[
                    MemberIn(facility_id=str(hospital), role="lead"),  # type: ignore[arg-type]
                    MemberIn(facility_id=str(township)),
                    MemberIn(facility_id=str(village)),
                ],
            ),
        ).id
        places = {"county_hospital": hospital, "township": township, "village": village, "other_county": other}
        for username, (role, key, division) in USERS.items():
            # The same argon2 hash for everyone: hashing takes most of a second, nine times over.
            session.add(
                User(
                    username=username,
                    password_hash=password_hash(),
                    role=role,
                    display_name=username.title(),
                    facility_id=places[key] if key else None,
                    division_code=division,
                )
            )
        patients = {
            "wang": "Patient/" + store.create(session, new_patient("王建国"))["id"],
            "li": "Patient/" + store.create(session, new_patient("李秀英", "1965-07-19", "female"))["id"],
        }
    yield Region(hospital, township, village, other, consortium, patients)


class Api:
    """The JSON API as one user sees it."""

    def __init__(self, http: httpx.Client, username: str):
        self.http = http
        self.headers = {"Authorization": f"Bearer {tokens.issue(username)}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, headers=self.headers, **kw)


@pytest.fixture
def as_user(http: httpx.Client, region: Region) -> Any:
    return lambda username: Api(http, username)


# A minimal but real PDF (what an ECG machine prints), and a PNG header.
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
