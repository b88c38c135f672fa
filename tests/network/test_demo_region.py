"""The demo region as a newcomer gets it from `yilian demo --no-serve`: real divisions, plausible facilities, the four
consortium forms, and the contract other parts rely on (FHIR search with paging, tokens, clear 4xx on bad input)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from yilian.network.models import Consortium, Division, Facility, Grid, GridTownship

LINFEN = "1410"


@pytest.fixture(scope="module")
def demo_db(demo_site) -> Engine:  # type: ignore[no-untyped-def]
    eng = create_engine(demo_site.db_url.replace("postgresql://", "postgresql+psycopg://"))
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def token(demo_site) -> str:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-m", "yilian", "token", "--user", "official"],
        env=demo_site.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_it_builds_every_county_and_township_of_linfen_with_a_plausible_network(demo_db: Engine) -> None:
    with Session(demo_db) as s:
        counties = s.scalars(select(Division).where(Division.parent_code == LINFEN)).all()
        townships = s.scalars(select(Division).where(Division.parent_code.in_([c.code for c in counties]))).all()
        facilities = s.execute(
            select(Facility.level, Facility.kind, Facility.division_code, Facility.beds).where(
                Facility.division_code.like(f"{LINFEN}%")
            )
        ).all()
        national = s.scalars(select(Facility.division_code).where(Facility.level == "national_regional_centre")).all()
    assert len(counties) == 17 and {"尧都区", "洪洞县", "侯马市", "霍州市"} <= {c.name for c in counties}
    # one health centre per township, at least one county hospital per county (general, TCM, maternal & child)
    centres = Counter(d[:9] for lv, _, d, _ in facilities if lv == "township_centre")
    assert set(centres) == {t.code for t in townships} and set(centres.values()) == {1}
    county_kinds = {(d[:6], k) for lv, k, d, _ in facilities if lv == "county_hospital"}
    assert {c.code for c in counties} == {d for d, _ in county_kinds}
    assert {"general", "tcm", "maternal_child"} <= {k for _, k in county_kinds}
    # villages sized from the census rural population: about 800-1,000 residents per village clinic
    clinics = sum(1 for lv, *_ in facilities if lv == "village_clinic")
    rural = sum(c.rural or 0 for c in counties)
    assert 700 <= rural / clinics <= 1100
    # beds calibrated to the national ratio of 7.23 per 1,000 residents
    population = sum(c.population or 0 for c in counties)
    assert abs(sum(b for *_, b in facilities) / population * 1000 - 7.23) < 0.05
    # the province's regional medical centres sit in Taiyuan
    assert len(national) == 2 and all(code.startswith("1401") for code in national)


def test_it_links_the_network_in_the_four_consortium_forms(demo_db: Engine) -> None:
    with Session(demo_db) as s:
        forms = Counter(s.scalars(select(Consortium.form)))
        county_communities = s.scalars(
            select(Consortium.division_code).where(Consortium.form == "county_medical_community")
        ).all()
        grids = s.scalar(select(func.count()).select_from(Grid).where(Grid.city_code == LINFEN))
        counties = {d.code: d.name for d in s.scalars(select(Division).where(Division.parent_code == LINFEN))}
        gridded = set(s.scalars(select(GridTownship.township_code).where(GridTownship.city_code == LINFEN)))
        twice = s.execute(
            select(GridTownship.township_code).group_by(GridTownship.township_code).having(func.count() > 1)
        ).all()
    # every county and county-level city has its tight county medical community; the urban district (区) is served by
    # the city's urban medical groups instead, whose grids cover each of its townships and streets exactly once
    rural = {code for code, name in counties.items() if not name.endswith("区")}
    districts = set(counties) - rural
    assert sorted(county_communities) == sorted(rural) and districts
    assert forms["urban_medical_group"] >= 1 and grids >= 2 and twice == []
    assert {t[:6] for t in gridded} >= districts
    assert forms["telemedicine_network"] >= 1 and forms["specialist_alliance"] >= 1


def test_it_pages_through_linfen_organizations_on_fhir_with_a_token(demo_site, token: str) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=demo_site.url, timeout=30) as client:
        bare = client.get("/fhir/Organization", params={"address-city": "临汾市", "_count": 50})
        assert bare.status_code == 401 and bare.json()["resourceType"] == "OperationOutcome"
        auth = {"Authorization": f"Bearer {token}"}
        first = client.get("/fhir/Organization", params={"address-city": "临汾市", "_count": 50}, headers=auth)
        bundle = first.json()
        assert first.status_code == 200 and bundle["type"] == "searchset" and len(bundle["entry"]) == 50
        assert all(e["resource"]["address"][0]["city"] == "临汾市" for e in bundle["entry"])
        following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        second = client.get(following, headers=auth).json()
        ids = lambda b: {e["resource"]["id"] for e in b["entry"]}  # noqa: E731
        assert len(second["entry"]) == 50 and not ids(bundle) & ids(second)


def test_it_answers_bad_input_with_a_clear_4xx_naming_the_field(demo_site, token: str) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=demo_site.url, timeout=30, headers=auth) as client:
        search = client.get("/fhir/Organization", params={"_lastUpdated": "yesterday-ish"})
        assert search.status_code == 400 and search.json()["resourceType"] == "OperationOutcome"
        count = client.get("/fhir/Organization", params={"_count": "many"})
        assert count.status_code == 400 and "_count" in count.text
        unknown = client.get("/fhir/NoSuchType")
        assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
        division = client.get("/api/v1/network/divisions/999999")
        assert division.status_code == 404 and division.json()["field"] in {"code", "division"}


def test_the_same_builder_builds_an_operators_own_region(fuxin) -> None:  # type: ignore[no-untyped-def]
    """Liaoning with Fuxin (2109) in detail, as `yilian demo --province 21 --city 2109` builds it."""
    region = fuxin.region
    assert region.city_name == "阜新市" and region.counts_per_level["township_centre"] > 50
    assert region.counts_per_level["village_clinic"] > 500 and region.counts_per_level["national_regional_centre"] >= 1
    assert abs(region.beds_per_1000 - 7.23) < 0.05
    with Session(fuxin.engine) as s:
        communities = s.scalars(select(Consortium.division_code).where(Consortium.form == "county_medical_community"))
        assert {code[:4] for code in communities} == {"2109"}


def test_the_demo_has_referrals_all_along_the_loop(demo_db: Engine) -> None:
    """`yilian demo` drives the referral workflow as the server would (coordinators see their consortium's referrals)."""
    from yilian.referrals.models import Referral

    with Session(demo_db) as s:
        states = Counter(s.scalars(select(Referral.state)))
    assert {"submitted", "triaged", "offered", "booked", "in_treatment", "down_referred", "closed"} <= set(states)


def _compute_this_year(demo_site, set_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """`yilian indicators compute --set SET --period <this year>` on the demo, as a user runs it."""
    import datetime
    import json

    year = str(datetime.date.today().year)
    out = subprocess.run(
        [sys.executable, "-m", "yilian", "indicators", "compute", "--set", set_id, "--period", year],
        env=demo_site.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows: list[dict] = json.loads(out.stdout)
    return rows


def test_the_demo_fills_the_county_community_indicators_for_every_county(demo_site) -> None:  # type: ignore[no-untyped-def]
    """The demo's care activity (visits and admissions at real facilities, residents with a county of residence, the
    commission's yearly judgements) is what the indicators read: every Linfen county gets numbers, not "no data"."""
    rows = _compute_this_year(demo_site, "county-community")
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    counties = {r["scope"] for r in by_id["cc.primary_visit_share"]}
    assert len(counties) == 16  # the 14 counties and 2 county-level cities; 尧都区 is a city district
    for item in ("cc.primary_visit_share", "cc.unified_resource_management"):
        assert all(r["value"] is not None for r in by_id[item]), item
    shares = [r["value"] for r in by_id["cc.primary_visit_share"]]
    assert all(0 < v <= 100 for v in shares)
    admitted = [r for r in by_id["cc.in_county_inpatient_share"] if r["denominator"]]
    assert len(admitted) >= 8 and all(r["numerator"] <= r["denominator"] for r in admitted)
    # County-hospital doctors rotating down to township centres: every county has some, a few per 10,000 residents.
    posted = by_id["cc.lead_doctors_posted_per_10k"]
    assert all(r["numerator"] and r["numerator"] >= 1 for r in posted)
    assert all(0 < r["value"] < 5 for r in posted)


def test_the_demo_gives_the_referral_kpis_from_the_loop_itself(demo_site) -> None:  # type: ignore[no-untyped-def]
    """Acceptance against its own deadline, and the days until the patient went back down, come from the referrals'
    FHIR face (Task.executionPeriod, the acceptance-due extension, the down-referral CarePlan) as the demo recorded
    them over its 90 days."""
    rows = _compute_this_year(demo_site, "referrals")
    sla = [r for r in rows if r["id"] == "ref.accepted_within_sla" and r["denominator"]]
    assert sla and all(0 <= r["value"] <= 100 for r in sla)
    assert sum(r["numerator"] for r in sla) > 0  # most are accepted in time ...
    assert sum(r["numerator"] for r in sla) < sum(r["denominator"] for r in sla)  # ... not all
    back_down = [r for r in rows if r["id"] == "ref.median_days_to_down" and r["value"] is not None]
    assert back_down and all(0 < r["value"] < 90 for r in back_down)
    downs = sum(r["value"] or 0 for r in rows if r["id"] == "ref.down_referrals")
    assert downs >= len(back_down)  # the loops' own returns count as down-referrals
