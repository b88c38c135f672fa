"""A small real network in the session database for the referral workflow tests: a village clinic, its township
centre and county hospital in one county medical community, a city hospital with a chest-pain centre, and a regional
centre in another consortium; users at each; patients in the shared record (FHIR store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import Engine

from yilian import db, migrations
from yilian.db import unit_of_work
from yilian.fhir import store
from yilian.network import service as network
from yilian.network.models import Division
from yilian.network.schemas import ConsortiumIn, FacilityIn, MemberIn
from yilian.security import service as security
from yilian.security import tokens

PASSWORD = "yilian2026"


@dataclass
class Net:
    facilities: dict[str, uuid.UUID]
    consortia: dict[str, uuid.UUID]
    users: dict[str, str] = field(default_factory=dict)  # name -> token
    url: str = ""

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.users[user]}"})


def _divisions(session) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("14", "山西省", "province", None, 112.55, 37.87),
        ("1410", "临汾市", "city", "14", 111.52, 36.09),
        ("141002", "尧都区", "county", "1410", 111.58, 36.08),
        ("141023", "襄汾县", "county", "1410", 111.44, 35.88),
        ("141023100", "新城镇", "township", "141023", 111.40, 35.85),
        ("1401", "太原市", "city", "14", 112.55, 37.87),
        ("140105", "小店区", "county", "1401", 112.56, 37.74),
    ]
    for code, name, level, parent, lon, lat in rows:
        session.add(Division(code=code, name=name, level=level, parent_code=parent, lon=lon, lat=lat))
    session.flush()


def make_patient(name: str = "张建国", mrn: str | None = None) -> str:
    """A Patient in the shared record; returns Patient/<id>."""
    with unit_of_work() as session:
        pid = str(uuid.uuid4())
        store.create(
            session,
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"text": name}],
                "gender": "male",
                "birthDate": "1958-03-02",
                "identifier": [{"system": "urn:yilian:facility:T-village:mrn", "value": mrn or pid[:8]}],
            },
            keep_id=True,
        )
    return f"Patient/{pid}"


@pytest.fixture(scope="package")
def net(engine: Engine, live_server) -> Iterator[Net]:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        _divisions(session)
        f = {}

        def add(key: str, **kw) -> uuid.UUID:  # type: ignore[no-untyped-def]
            fac = network.create_facility(session, FacilityIn(code=f"T-{key}", **kw))
            f[key] = fac.id
            return fac.id

        regional = add(
            "regional",
            name="北京大学第一医院太原医院",
            level="national_regional_centre",
            division_code="140105",
            lon=112.56,
            lat=37.74,
            departments=["急诊科", "心血管内科", "神经内科"],
            capabilities=["chest_pain_centre", "stroke_centre", "trauma_centre"],
        )
        city = add(
            "city",
            name="临汾市中心医院",
            level="tertiary",
            division_code="141002",
            lon=111.52,
            lat=36.09,
            departments=["急诊科", "心血管内科", "神经内科", "内分泌科"],
            capabilities=["chest_pain_centre", "stroke_centre"],
        )
        county = add(
            "county",
            name="襄汾县人民医院",
            level="county_hospital",
            division_code="141023",
            lon=111.44,
            lat=35.88,
            departments=["急诊科", "心血管内科", "内分泌科", "呼吸内科"],
        )
        township = add(
            "township",
            name="新城镇卫生院",
            level="township_centre",
            division_code="141023100",
            lon=111.40,
            lat=35.85,
            departments=["全科医学科", "中医科"],
            parent_id=county,
        )
        add(
            "village",
            name="张家村卫生室",
            level="village_clinic",
            division_code="141023100",
            lon=111.38,
            lat=35.84,
            departments=["全科诊疗"],
            parent_id=township,
        )
        cmc = network.create_consortium(
            session,
            ConsortiumIn(
                name="襄汾县医共体",
                form="county_medical_community",
                lead_facility_id=str(county),
                division_code="141023",
                members=[
                    MemberIn(facility_id=str(county), role="lead"),
                    MemberIn(facility_id=str(township)),
                    MemberIn(facility_id=str(f["village"])),
                ],
            ),
        )
        group = network.create_consortium(
            session,
            ConsortiumIn(
                name="临汾市城市医疗集团",
                form="urban_medical_group",
                lead_facility_id=str(city),
                division_code="1410",
                members=[MemberIn(facility_id=str(city), role="lead")],
            ),
        )
        users = [
            ("village", "village_doctor", f["village"], None),
            ("township", "township_doctor", township, None),
            ("county", "county_doctor", county, None),
            ("coordinator", "referral_coordinator", county, None),
            ("citydoc", "specialist", city, None),
            ("citycoord", "referral_coordinator", city, None),
            ("expert", "specialist", regional, None),
            ("official", "commission_official", None, "1410"),
            ("admin", "system_admin", None, None),
        ]
        for name, role, fid, division in users:
            security.create_user(
                session, username=name, password=PASSWORD, role=role, facility_id=fid, division_code=division
            )
    net = Net(f, {"cmc": cmc.id, "group": group.id}, url=live_server.url)
    net.users = {name: tokens.issue(name) for name, *_ in users}
    yield net
    migrations.import_all_models()
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            conn.execute(table.delete())
