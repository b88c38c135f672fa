"""Loading divisions, census and centroids: idempotent, and nothing that fails to join is dropped silently."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from yilian.db import unit_of_work
from yilian.errors import NotFound
from yilian.network import service
from yilian.network.models import Division


def _csv_counts(province: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name, level in (("cities.csv", "city"), ("counties.csv", "county"), ("townships.csv", "township")):
        counts[level] = sum(1 for r in service.read_region_csv(name) if r["code"].startswith(province))
    counts["province"] = 1
    return counts


def test_it_loads_every_division_of_the_province_from_the_packaged_files(shanxi) -> None:
    expected = _csv_counts("14")
    assert shanxi.divisions_by_level == {k: expected[k] for k in ("province", "city", "county", "township")}
    with unit_of_work() as session:
        by_level = dict(session.execute(select(Division.level, func.count()).group_by(Division.level)).all())
        linfen = service.require_division(session, "141000")
        yaodu = service.require_division(session, "141002")
        townships = service.list_divisions(session, "141002")
    assert by_level == dict(expected)
    assert linfen.name == "临汾市" and linfen.population and linfen.population > 3_000_000
    assert yaodu.population and yaodu.urban and yaodu.rural and yaodu.census and "m_85_plus" in yaodu.census
    assert townships and all(t.position_approximate and t.lon is not None for t in townships)


def test_it_writes_nothing_the_second_time(shanxi) -> None:
    assert shanxi.inserted == sum(shanxi.divisions_by_level.values())
    with unit_of_work() as session:
        again = service.load_divisions(session, "14")
    assert again.inserted == 0 and again.updated == 0
    assert again.unchanged == shanxi.inserted
    assert again.lines() == [
        line.replace(f"{shanxi.inserted} new, 0 updated, 0 unchanged", f"0 new, 0 updated, {shanxi.inserted} unchanged")
        for line in shanxi.lines()
    ]


def test_it_accounts_for_every_county_and_every_census_row(shanxi) -> None:
    counties = [
        r for r in service.read_region_csv("counties.csv") if r["code"].startswith("14") and r["name"] != "市辖区"
    ]
    joined = shanxi.census_joined + len(shanxi.census_joined_by_name)
    assert joined + len(shanxi.counties_without_census) == len(counties)
    census_counties = {
        r["code"]
        for r in service.read_region_csv("census_county_2020.csv")
        if r["code"].startswith("14") and not r["code"].endswith("00") and r["county"] != "市辖区"
    }
    assert len(census_counties) == joined + len(shanxi.census_rows_unjoined)
    assert shanxi.centroids_joined + len(shanxi.counties_without_centroid) == len(counties) + sum(
        1 for r in service.read_region_csv("counties.csv") if r["code"].startswith("14") and r["name"] == "市辖区"
    )
    text = "\n".join(shanxi.lines())
    for code, name in shanxi.counties_without_census:
        assert f"no census: {code} {name}" in text


def test_it_names_the_field_when_a_division_is_unknown(shanxi) -> None:
    with unit_of_work() as session:
        for code in ("149999", "abc", ""):
            try:
                service.require_division(session, code)
            except NotFound as exc:
                assert exc.field == "division"
            else:
                raise AssertionError(f"{code!r} was accepted")
