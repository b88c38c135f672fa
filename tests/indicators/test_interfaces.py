"""The command line, the JSON API, Excel and FHIR on a real database with the Shanxi divisions (census populations)
and no activity yet: every activity indicator says "no data", a recorded assessment is the one number."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from yilian.db import unit_of_work
from yilian.indicators import sources

QUWO = "141021"  # 曲沃县, Linfen


@pytest.fixture
def region(clean_db: Engine) -> Iterator[dict[str, str]]:
    from yilian.network import service as network
    from yilian.security import service as security
    from yilian.security import tokens

    with unit_of_work() as session:
        network.load_divisions(session, "14")
        security.create_user(
            session, username="official", password="pw-official-1", role="commission_official", division_code="1410"
        )
    yield {"official": tokens.issue("official")}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_official_records_an_assessment_and_reads_it_back_with_everything_else_missing(
    http: Any, region: dict[str, str]
) -> None:
    official = _auth(region["official"])
    body = {
        "indicator": "cc.unified_resource_management",
        "scope": QUWO,
        "year": 2026,
        "value": True,
        "evidence": "章程",
    }
    assert http.post("/api/v1/indicators/assessments", json=body, headers=official).status_code == 201
    with unit_of_work() as session:
        snap = sources.take(session)
    got = http.get(f"/api/v1/indicators/compute?set=county-community&period=2026&scope={QUWO}", headers=official)
    assert got.status_code == 200
    rows = {r["id"]: r for r in got.json()}
    assert rows["cc.unified_resource_management"]["value"] == 1.0
    assert rows["cc.unified_resource_management"]["snapshot"] == snap.id
    visits = rows["cc.primary_visit_share"]
    assert (visits["value"], visits["numerator"], visits["status"]) == (None, None, "no_data")
    # no encounters here (or, after other tests materialised views into the same data dir, none with a facility)
    assert visits["note"].startswith("no data: encounter")
    assert {"id", "name", "scope", "period", "value", "numerator", "denominator", "unit"} <= set(visits)
    assert (visits["scope"], visits["period"], visits["unit"]) == (QUWO, "2026", "percent")


def test_it_answers_bad_requests_with_the_field(http: Any, region: dict[str, str]) -> None:
    official = _auth(region["official"])
    with unit_of_work() as session:
        sources.take(session)
    bad = http.get("/api/v1/indicators/compute?set=county-community&period=2026-13", headers=official)
    assert bad.status_code == 422 and bad.json()["field"] == "period"
    outside = http.get("/api/v1/indicators/compute?set=county-community&period=2026&scope=1401", headers=official)
    assert outside.status_code == 403 and outside.json()["field"] == "scope"
    unknown = http.get("/api/v1/indicators/compute?set=nope&period=2026", headers=official)
    assert unknown.status_code == 404 and unknown.json()["field"] == "set"
    computed = {"indicator": "cc.primary_visit_share", "scope": QUWO, "year": 2026, "value": True}
    refused = http.post("/api/v1/indicators/assessments", json=computed, headers=official)
    assert refused.status_code == 422 and refused.json()["field"] == "indicator"
    assert http.get("/api/v1/indicators/compute?set=county-community&period=2026").status_code == 401


def test_it_exports_a_formatted_workbook_and_fhir_measure_reports(http: Any, region: dict[str, str]) -> None:
    from fhir.resources.R4B.measure import Measure
    from fhir.resources.R4B.measurereport import MeasureReport
    from openpyxl import load_workbook

    official = _auth(region["official"])
    with unit_of_work() as session:
        sources.take(session)
    xlsx = http.get(
        f"/api/v1/indicators/compute?set=county-community&period=2026&scope={QUWO}&format=xlsx", headers=official
    )
    assert xlsx.status_code == 200
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws["A1"].value == "紧密型县域医共体监测指标（2024年版）"
    assert ws["A5"].value == "指标编号" and ws["A5"].font.bold and ws["A5"].fill.fgColor.rgb.endswith("1F4E79")
    assert ws.max_row == 5 + 17 and ws["E6"].value == "无数据"
    bundle = http.get(
        f"/api/v1/indicators/compute?set=county-community&period=2026&scope={QUWO}&format=measure-report",
        headers=official,
    ).json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Measure") == 17 and kinds.count("MeasureReport") == 17
    for e in bundle["entry"]:
        (Measure if e["resource"]["resourceType"] == "Measure" else MeasureReport).model_validate(e["resource"])


def test_the_dashboard_shows_the_ranking_table(http: Any, region: dict[str, str]) -> None:
    official = _auth(region["official"])
    with unit_of_work() as session:
        sources.take(session)
    for view in ("ranking", "trend", "consortia", "definitions"):
        page = http.get(
            f"/indicators?set=county-community&period=2026&view={view}&indicator=cc.primary_visit_share",
            headers=official,
        )
        assert page.status_code == 200, view
    assert "曲沃县" in http.get("/indicators?period=2026", headers=official).text


def _yilian(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """`yilian ARGV` run by the console entry point itself (in-process: a fresh interpreter costs a minute here)."""
    from yilian import cli

    monkeypatch.setattr(sys, "argv", ["yilian", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_prints_the_json_contract_and_refuses_a_bad_period(
    region: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    compute = ["indicators", "compute", "--set", "county-community"]
    code, out, err = _yilian([*compute, "--period", "2026", "--scope", "1410", "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    rows = json.loads(out)
    assert len({r["scope"] for r in rows}) == 17  # every county-level division of Linfen
    assert {r["value"] for r in rows if r["status"] == "no_data"} == {None}
    assert {"id", "name", "scope", "period", "value", "numerator", "denominator", "unit"} <= set(rows[0])
    code, out, err = _yilian([*compute, "--period", "2026-13"], capsys, monkeypatch)
    assert code == 2 and "--period" in err and "Traceback" not in err
    code, out, err = _yilian([*compute, "--period", "2026", "--format", "pdf"], capsys, monkeypatch)
    assert code == 2 and "--format" in err
    # A province city by city, as its dashboard shows it.
    code, out, err = _yilian([*compute, "--period", "2026", "--scope", "14", "--by", "city"], capsys, monkeypatch)
    assert code == 0, err
    cities = {r["scope"] for r in json.loads(out)}
    assert "1410" in cities and all(len(c) == 4 and c.startswith("14") for c in cities)
    code, out, err = _yilian([*compute, "--period", "2026", "--by", "town"], capsys, monkeypatch)
    assert code == 2 and "--by" in err


def test_the_rows_behind_a_number_are_listed_and_each_patient_shown_is_audited(
    http: Any, region: dict[str, str]
) -> None:
    from datetime import datetime

    from sqlalchemy import select

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot
    from yilian.security.models import AuditEvent

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 2))  # type: ignore[arg-type]
    got = http.get(
        f"/api/v1/indicators/drill/cc.primary_visit_share?period=2026&scope={QUWO}&snapshot={snap.id}",
        headers=_auth(region["official"]),
    )
    assert got.status_code == 200
    body = got.json()
    assert (body["total"], [r["id"] for r in body["rows"]], body["snapshot"]) == (3, ["e1", "e2", "e5"], snap.id)
    with unit_of_work() as session:
        audited = session.scalars(select(AuditEvent.patient_ref).where(AuditEvent.action == "indicators.drill")).all()
    assert sorted(audited) == ["Patient/pa1", "Patient/pa2"]
    trend = http.get(
        f"/api/v1/indicators/trend/cc.primary_visit_share?period=2026-03..2026-04&scope={QUWO}&snapshot={snap.id}",
        headers=_auth(region["official"]),
    ).json()
    assert [(r["period"], r["value"]) for r in trend] == [("2026-03", 100.0), ("2026-04", 0.0)]


def test_the_ranking_page_shows_each_county_with_its_value_in_both_languages(http: Any, region: dict[str, str]) -> None:
    from datetime import datetime

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 3))  # type: ignore[arg-type]
    url = f"/indicators?set=county-community&period=2026&scope=1410&indicator=cc.primary_visit_share&snapshot={snap.id}"
    zh = http.get(url, headers=_auth(region["official"]))
    assert zh.status_code == 200
    assert "县域内基层医疗卫生机构门急诊人次占比" in zh.text and "排名" in zh.text and "A县" in zh.text
    assert '["A\\u53bf", "B\\u53bf"]' in zh.text  # the chart ranks A (60 %) before B (no value); C has no facility
    assert "[60.0, null]" in zh.text
    from yilian.web.auth import LANG_COOKIE

    en = http.get(url + "&view=trend", headers={**_auth(region["official"]), "Cookie": f"{LANG_COOKIE}=en"})
    assert en.status_code == 200 and "Trend by month" in en.text
    bad = http.get("/indicators?period=2026-13", headers=_auth(region["official"]))
    assert bad.status_code == 422


def test_the_function_guide_matrix_is_a_page_and_a_json_endpoint(http: Any, region: dict[str, str]) -> None:
    from datetime import datetime

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 4))  # type: ignore[arg-type]
    official = _auth(region["official"])
    got = http.get(f"/api/v1/indicators/functions?period=2026&scope=1410&snapshot={snap.id}", headers=official)
    assert got.status_code == 200
    body = got.json()
    assert (body["total"], body["snapshot"]) == (36, snap.id)
    used = {s["scope"]: s["used"] for s in body["scopes"]}
    assert used == {"141021": 15, "141022": 7}
    page = http.get(f"/indicators/functions?period=2026&scope=1410&snapshot={snap.id}", headers=official)
    assert page.status_code == 200
    assert "功能指南使用情况" in page.text and "15 / 36" in page.text and "医学影像中心（远程影像）" in page.text
    outside = http.get("/api/v1/indicators/functions?period=2026&scope=1401", headers=official)
    assert outside.status_code == 403 and outside.json()["field"] == "scope"


def test_an_official_drills_down_from_the_province_to_one_facilitys_own_figures(
    http: Any, region: dict[str, str]
) -> None:
    from datetime import datetime

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 5))  # type: ignore[arg-type]
    official = _auth(region["official"])
    base = f"/indicators?set=county-community&period=2026&indicator=cc.primary_visit_share&snapshot={snap.id}"
    province = http.get(base + "&scope=14", headers=official)
    assert province.status_code == 403  # the official's jurisdiction is Linfen (1410)
    city = http.get(base + "&scope=1410", headers=official).text
    # Linfen county by county, each county on the map at its seat and one click from its facilities
    assert 'data-testid="down-141021"' in city and "scope=141021&amp;view=facilities" in city
    assert '"name": "A\\u53bf"' in city and "[111.47, 35.64, 60.0]" in city
    county = http.get(base + "&scope=141021&view=facilities", headers=official).text
    assert "A县甲镇卫生院" in county and "/indicators/facility/A-T1?set=county-community" in county
    assert "临汾市" in county  # the trail back up
    page = http.get(f"/indicators/facility/A-T1?set=county-community&period=2026&snapshot={snap.id}", headers=official)
    assert page.status_code == 200
    assert "A县甲镇卫生院" in page.text and 'data-testid="row-cc.primary_visit_share"' in page.text
    # a facility's own share of primary visits (all of them: it is a township centre); residents' measures say why not
    assert "无数据：按县域居民统计，不按机构统计" in page.text  # the engine's note, in the page's language
    outside = http.get(f"/indicators/facility/RC?period=2026&snapshot={snap.id}", headers=official)
    assert outside.status_code == 403


def test_the_monthly_report_prints_one_county_per_page_and_comes_as_a_pdf(http: Any, region: dict[str, str]) -> None:
    from datetime import datetime

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 6))  # type: ignore[arg-type]
    official = _auth(region["official"])
    url = f"/indicators/report?set=referrals&period=2026-03&scope=1410&snapshot={snap.id}"
    page = http.get(url, headers=official)
    assert page.status_code == 200
    assert "@media print" in page.text and "双向转诊运行指标" in page.text
    assert page.text.count("<section>") == 2  # A县 and B县, each its own printed page
    pdf = http.get(url + "&format=pdf", headers=official)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and b"STSong-Light" in pdf.content


def test_a_consortiums_members_are_compared_facility_by_facility(http: Any, region: dict[str, str]) -> None:
    from datetime import datetime

    from indicators.conftest import region as fixture_region
    from yilian.indicators import snapshot

    snap = snapshot.write(fixture_region(), snapshot.default_root(), now=datetime(2026, 1, 7))  # type: ignore[arg-type]
    official = _auth(region["official"])
    url = (
        "/indicators?set=county-community&period=2026&indicator=cc.primary_visit_share&view=facilities"
        f"&scope=00000000-0000-0000-0000-00000000000a&snapshot={snap.id}"
    )
    page = http.get(url, headers=official)
    assert page.status_code == 200  # A's consortium lies in the official's Linfen
    # its members only: A's TCM hospital is in the county but not in the consortium
    assert "A县甲镇卫生院" in page.text and "A县中医医院" not in page.text
    consortia = http.get(
        f"/indicators?set=county-community&period=2026&scope=1410&view=consortia&snapshot={snap.id}", headers=official
    ).text
    assert "A县医共体" in consortia and "scope=00000000-0000-0000-0000-00000000000a&amp;view=facilities" in consortia
