"""A small real region for the shared-record tests: Hongtong county's medical community (county hospital + a village
clinic), a city hospital outside it, and one user per role. Built once per module; the index, the FHIR store and the
audit trail are emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from yilian import db, migrations
from yilian.db import unit_of_work
from yilian.network import service as network
from yilian.network.schemas import ConsortiumIn, FacilityIn, MemberIn
from yilian.patients import record
from yilian.security import service as security
from yilian.security import tokens

PASSWORD = "longenough"


@dataclass
class Region:
    county_hospital: Any
    village_clinic: Any
    city_hospital: Any
    tokens: dict[str, str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def _wipe(engine: Engine, prefixes: tuple[str, ...]) -> None:
    migrations.import_all_models()
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            if table.name.startswith(prefixes):
                conn.execute(table.delete())


@pytest.fixture(scope="module")
def region(engine: Engine) -> Iterator[Region]:
    record.forget_facilities()
    with unit_of_work() as session:
        network.load_divisions(session, "14")
        county = network.create_facility(
            session,
            FacilityIn(code="HT-CH", name="洪洞县人民医院", level="county_hospital", division_code="141024", beds=500),
        )
        village = network.create_facility(
            session, FacilityIn(code="HT-V01", name="贾村卫生室", level="village_clinic", division_code="141024")
        )
        city = network.create_facility(
            session, FacilityIn(code="YC-CH", name="运城市中心医院", level="tertiary", division_code="140802")
        )
        network.create_consortium(
            session,
            ConsortiumIn(
                name="洪洞县医疗集团",
                form="county_medical_community",
                lead_facility_id="HT-CH",
                members=[MemberIn(facility_id="HT-CH", role="lead"), MemberIn(facility_id="HT-V01")],
            ),
        )
        users = {
            "village": ("village_doctor", village.id, None),
            "county": ("county_doctor", county.id, None),
            "city": ("county_doctor", city.id, None),
            "consortium": ("consortium_admin", county.id, None),
            "official": ("commission_official", None, "141000"),
            "admin": ("system_admin", None, None),
        }
        for username, (role, facility_id, division) in users.items():
            security.create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                facility_id=facility_id,
                division_code=division,
            )
        ids = (county.id, village.id, city.id)
    yield Region(*ids, tokens={u: tokens.issue(u) for u in users})
    record.forget_facilities()
    _wipe(engine, ("",))


@pytest.fixture
def fresh(region: Region, engine: Engine) -> Iterator[Region]:
    """The region with an empty patient index, FHIR store and audit trail."""
    _wipe(engine, ("mpi_", "fhir_", "audit_event", "outbox"))
    yield region
