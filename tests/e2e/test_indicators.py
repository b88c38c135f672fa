"""The indicator dashboards in the browser, on the real demo region: a city commission official reads the overview,
ranking, trend and map, drills from the province down to a facility, opens the function-guide matrix, the monthly
report and its PDF and the Excel export; a consortium administrator compares the members of their county medical
community; a county-hospital doctor opens their own facility's figures. Every number on a page is checked against
what the JSON API says for the same scope and period (never a hard-coded answer); a missing number reads "no data"."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from yilian.indicators.pages import _fmt
from yilian.indicators.rules import UNITS

SHOTS = Path(os.environ.get("YILIAN_SCREENSHOTS", "test-results/screenshots"))
NO_DATA = "无数据"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"indicators-{name}.png"), full_page=False)


def figure(value: float | None) -> str:
    """How a page writes a value: the page's own format, and "no data" (never 0) when there is none."""
    return NO_DATA if value is None else _fmt(value)


@pytest.fixture(scope="module")
def users(browser, demo_site):  # type: ignore[no-untyped-def]
    """One signed-in browser context per demo user, shared by the module (signing in is not what is tested)."""
    contexts: dict[str, Any] = {}

    def page_of(username: str) -> Any:
        if username not in contexts:
            context = browser.new_context(
                locale="zh-CN", viewport={"width": 1366, "height": 900}, accept_downloads=True
            )
            page = context.new_page()
            page.set_default_timeout(60000)  # a page computes its set on request: slow on a loaded 2-core machine
            page.goto(f"{demo_site.url}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", "yilian2026")
            page.click("button[type=submit]")
            page.wait_for_url(f"{demo_site.url}/")
            contexts[username] = (context, page)
        return contexts[username][1]

    yield page_of
    for context, _ in contexts.values():
        context.close()


def api(page: Any, base: str, path: str) -> Any:
    """The JSON API with the page's own session (what the same user would get)."""
    got = page.request.get(f"{base}{path}", timeout=120000)
    assert got.status == 200, got.text()
    return got.json()


def chart(page: Any, element_id: str) -> dict[str, Any]:
    """The ECharts instance drawn in an element: its category axis and its first series' data."""
    return page.evaluate(
        """id => { const c = echarts.getInstanceByDom(document.getElementById(id));
                   if (!c) return null;
                   const o = c.getOption();
                   return {x: o.xAxis[0].data || null, series: o.series.map(s => s.data), visualMap: !!(o.visualMap || []).length}; }""",
        element_id,
    )


def chart_ready(page: Any, element_id: str) -> None:
    """Wait until the page's chart is drawn. While a new page is still loading `echarts` may not be defined yet."""
    page.wait_for_function(
        "id => typeof echarts !== 'undefined' && !!echarts.getInstanceByDom(document.getElementById(id))",
        arg=element_id,
    )


def open_dashboard(page: Any, base: str, query: str) -> None:
    page.goto(f"{base}/indicators?{query}")
    page.wait_for_load_state()
    if page.locator("#ranking").count():
        chart_ready(page, "ranking")


def test_a_commission_official_reads_ranking_map_trend_and_definitions(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("official")
    page.get_by_role("link", name="监测指标").first.click()  # the navigation, in Chinese by default
    page.wait_for_url(re.compile(r"/indicators"))
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    period = page.locator("input[name=period]").input_value()
    scope = page.locator("input[name=scope]").input_value()
    assert scope == "1410"  # the official's city
    # an indicator with numbers in some counties and none (zero denominator) in others
    page.locator("select[name=indicator]").select_option("cc.in_county_inpatient_share")
    page.get_by_role("button", name="查看").click()
    page.wait_for_url(re.compile(r"indicator=cc\.in_county_inpatient_share"))  # the new page, not the one before
    chart_ready(page, "ranking")
    shot(page, "ranking")

    expected = {
        r["scope_name"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope={scope}")
        if r["id"] == "cc.in_county_inpatient_share"
    }
    assert len(expected) == 17  # every county-level division of Linfen
    drawn = chart(page, "ranking")
    names = [re.sub(r"（无数据）$", "", x) for x in drawn["x"]]
    assert sorted(names) == sorted(expected)
    assert dict(zip(names, drawn["series"][0], strict=True)) == {n: r["value"] for n, r in expected.items()}
    assert any(v is not None and v > 0 for v in drawn["series"][0])
    missing = [n for n, r in expected.items() if r["value"] is None]
    assert missing  # the demo has counties with no inpatient stay of their residents
    for x in drawn["x"]:  # an area without a number is named so on the axis, not drawn as 0
        assert x.endswith("（无数据）") == (re.sub(r"（无数据）$", "", x) in missing)

    # the chart's table view, in the chart's order, with the same numbers
    rows = page.get_by_test_id("chart-table").locator("tr[data-testid^=chart-row-]")
    assert rows.count() == 17
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        name = cells.nth(1).inner_text().strip()
        assert name == names[i]
        assert cells.nth(2).inner_text().strip() == figure(expected[name]["value"])
        assert cells.nth(3).inner_text().strip() == "%"
    # the definition one click away
    definition = page.get_by_test_id("definition")
    assert definition.get_attribute("open") is None
    page.get_by_test_id("definition-link").first.click()
    assert definition.get_attribute("open") is not None
    assert "单位: %" in definition.inner_text() and "分子" in definition.inner_text()
    page.get_by_test_id("table-link").first.click()
    assert page.get_by_test_id("chart-table").is_visible()

    # the map: every county at its registry coordinates, coloured by the value, grey when there is none
    page.get_by_test_id("map-chart").scroll_into_view_if_needed()
    drawn_map = chart(page, "map")
    coloured, grey = drawn_map["series"]
    assert drawn_map["visualMap"]
    assert len(coloured) + len(grey) == 17
    assert {p["name"]: p["value"][2] for p in coloured} == {
        n: r["value"] for n, r in expected.items() if r["value"] is not None
    }
    assert sorted(p["name"] for p in grey) == sorted(missing)
    shot(page, "map")

    # the monthly trend of one county: the API's months, gaps where there is no data
    county = next(r["scope"] for r in expected.values() if r["value"])
    open_dashboard(page, base, f"set=county-community&period={period}&scope={county}&indicator=cc.primary_visit_share")
    page.get_by_test_id("view-trend").click()
    page.wait_for_url(re.compile(r"view=trend"))
    chart_ready(page, "trend")
    trend = api(page, base, f"/api/v1/indicators/trend/cc.primary_visit_share?period={period}&scope={county}")
    drawn_trend = chart(page, "trend")
    assert drawn_trend["x"] == [t["period"] for t in trend]
    assert drawn_trend["series"][0] == [t["value"] for t in trend]
    assert any(v is not None for v in drawn_trend["series"][0]) and None in drawn_trend["series"][0]
    table = page.get_by_test_id("trend-table").locator("tr")
    for i, t in enumerate(trend, start=1):
        cells = table.nth(i).locator("td")
        assert cells.nth(0).inner_text() == t["period"]
        assert cells.nth(2).inner_text().strip() == figure(t["value"])
        if t["value"] is None:  # the reason in Chinese, not the engine's English note
            assert cells.nth(3).inner_text().startswith("无数据：")
    shot(page, "trend")


def test_an_official_drills_from_the_province_to_a_facility(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("province")
    open_dashboard(page, base, "set=county-community&scope=14&indicator=cc.primary_visit_share")
    period = page.locator("input[name=period]").input_value()
    assert page.get_by_test_id("trail").inner_text().strip() == "范围: 山西省"
    by_city = {
        r["scope"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope=14&by=city")
        if r["id"] == "cc.primary_visit_share"
    }
    assert "1410" in by_city and by_city["1410"]["value"] is not None
    row = page.get_by_test_id("chart-row-1410")
    assert row.locator("td").nth(2).inner_text().strip() == figure(by_city["1410"]["value"])
    shot(page, "drill-province")

    # clicking Linfen's bar goes one level down: its counties
    index = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('ranking')).getOption().xAxis[0].data.indexOf('临汾市')"
    )
    x, y = page.evaluate(
        """i => { const c = echarts.getInstanceByDom(document.getElementById('ranking'));
                  const v = c.getOption().series[0].data[i];
                  return c.convertToPixel({seriesIndex: 0}, [i, v / 2]); }""",
        index,
    )
    box = page.get_by_test_id("ranking-chart").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(re.compile(r"scope=1410"))
    assert page.get_by_test_id("trail").inner_text().strip() == "范围: 山西省 › 临汾市"
    counties = {
        r["scope"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope=1410")
        if r["id"] == "cc.primary_visit_share"
    }
    county = max(counties, key=lambda k: counties[k]["numerator"] or 0)
    assert page.get_by_test_id(f"chart-row-{county}").locator("td").nth(2).inner_text().strip() == figure(
        counties[county]["value"]
    )

    # the county's facilities compared
    page.get_by_test_id(f"chart-row-{county}").locator("a").click()
    page.wait_for_url(re.compile(rf"scope={county}&view=facilities"))
    chart_ready(page, "ranking")
    trail = page.get_by_test_id("trail").inner_text()
    assert trail.startswith("范围: 山西省 › 临汾市 › ") and counties[county]["scope_name"] in trail
    shot(page, "drill-county")
    page.get_by_test_id("table-link").click()  # the county's many facilities: the table opens under the chart
    first = page.locator("[data-testid=chart-table] tr[data-testid^=chart-row-]").first
    facility_id = first.get_attribute("data-testid").removeprefix("chart-row-")
    shown = first.locator("td").nth(2).inner_text().strip()
    own = {
        r["id"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope={facility_id}")
    }
    assert shown == figure(own["cc.primary_visit_share"]["value"])

    # … and one facility's own page
    first.locator("a").click()
    page.wait_for_url(re.compile(rf"/indicators/facility/{facility_id}"))
    assert page.get_by_test_id("trail").inner_text().count("›") == 3
    row = page.get_by_test_id("row-cc.primary_visit_share")
    assert row.get_by_test_id("figure").inner_text().strip() == figure(own["cc.primary_visit_share"]["value"])
    shot(page, "drill-facility")


def test_a_consortium_administrator_compares_the_members_of_their_community(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("consortium")
    assert page.get_by_test_id("indicators-panel").is_visible()
    open_dashboard(page, base, "set=county-community&view=consortia&indicator=cc.primary_visit_share")
    period = page.locator("input[name=period]").input_value()
    rows = page.locator("[data-testid=chart-table] tr[data-testid^=chart-row-]")
    assert rows.count() >= 1
    consortium = rows.first.get_attribute("data-testid").removeprefix("chart-row-")
    mine = {
        r["id"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope={consortium}")
    }
    assert rows.first.locator("td").nth(2).inner_text().strip() == figure(mine["cc.primary_visit_share"]["value"])
    assert chart(page, "ranking")["series"][0][0] == mine["cc.primary_visit_share"]["value"]
    shot(page, "consortia")

    consortium_name = rows.first.locator("td").nth(1).inner_text().strip()
    rows.first.locator("a").click()  # its members compared, facility by facility
    page.wait_for_url(re.compile(rf"scope={consortium}&view=facilities"))
    chart_ready(page, "ranking")
    assert page.get_by_test_id("trail").inner_text().strip().endswith(f" › {consortium_name}")  # under its county
    page.get_by_test_id("table-link").click()  # a long table is folded under the chart: one click opens it
    assert page.get_by_test_id("chart-table").is_visible()
    members = page.locator("[data-testid=chart-table] tr[data-testid^=chart-row-]")
    drawn = chart(page, "ranking")
    assert members.count() == len(drawn["series"][0]) > 1
    assert any(v is not None for v in drawn["series"][0])
    member = members.first.get_attribute("data-testid").removeprefix("chart-row-")
    own = {
        r["id"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope={member}")
    }
    assert drawn["series"][0][0] == own["cc.primary_visit_share"]["value"]
    assert members.first.locator("td").nth(2).inner_text().strip() == figure(own["cc.primary_visit_share"]["value"])
    shot(page, "consortium-members")


def test_a_county_hospital_doctor_sees_their_own_figures_against_targets(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("county")
    assert page.get_by_role("link", name="监测指标").count() == 0  # no indicators menu for clinicians …
    page.get_by_test_id("own-facility-indicators").click()  # … but their own facility's page from the home page
    page.wait_for_url(re.compile(r"/indicators/facility/"))
    facility_id = page.url.split("/indicators/facility/")[1].split("?")[0]
    period = page.locator("input[name=period]").input_value()
    own = {
        r["id"]: r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope={facility_id}")
    }
    rows = page.locator("[data-testid=facility-results] tr[data-testid^=row-]")
    assert rows.count() == len(own) == 17
    for indicator, r in own.items():
        row = page.get_by_test_id(f"row-{indicator}")
        assert row.get_by_test_id("figure").inner_text().strip() == figure(r["value"])
        assert row.get_by_test_id("target").inner_text().strip() == _fmt(r["target"])
        assert row.get_by_test_id("meets").inner_text().strip() == (
            "—" if r["meets_target"] is None else ("✓" if r["meets_target"] else "✗")
        )
    # counted per county of residence: "no data" with the reason in Chinese, never 0
    in_county = page.get_by_test_id("row-cc.in_county_inpatient_share")
    assert in_county.get_by_test_id("figure").inner_text().strip() == NO_DATA
    assert "按县域居民统计" in in_county.inner_text()
    row = page.get_by_test_id("row-cc.primary_visit_share")
    row.locator("summary").click()  # the definition in the row, one click away
    assert "分子" in row.inner_text()
    if own["cc.primary_visit_share"]["numerator"]:  # the figure opens the rows behind it, for the facility's own staff
        rows_behind = api(page, base, row.get_by_test_id("figure").locator("a").get_attribute("href"))
        assert rows_behind["total"] == own["cc.primary_visit_share"]["numerator"]
    reached = [r for r in own.values() if r["value"] is not None and r["target"]]
    if reached:
        drawn = page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('reached')).getOption().series[0].data"
        )
        assert drawn == [round(r["value"] / r["target"] * 100, 1) for r in reached]
    shot(page, "facility")


def test_the_function_guide_matrix_shows_what_each_county_uses(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("official")
    page.goto(f"{base}/indicators?set=county-community&view=definitions")  # the definitions: nothing to compute
    page.get_by_test_id("functions-link").click()
    page.wait_for_url(re.compile(r"/indicators/functions"))
    period = page.locator("input[name=period]").input_value()
    m = api(page, base, f"/api/v1/indicators/functions?period={period}&scope=1410")
    assert m["total"] == 36
    assert page.locator("[data-testid=function-matrix] tr[data-testid^=function-]").count() == 36
    assert page.locator("[data-testid=function-matrix] th[data-testid^=class-]").count() == 5
    for s in m["scopes"]:
        assert page.get_by_test_id(f"used-{s['scope']}").inner_text() == f"{s['used']} / 36"
    shown = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-testid^="cell-"]')]
                   .map(td => [td.dataset.testid, td.innerText.trim()]))"""
    )
    assert len(shown) == 36 * len(m["scopes"])
    for f in m["functions"]:
        for scope, c in f["cells"].items():
            text = shown[f"cell-{f['id']}-{scope}"]
            if c["state"] == "used":
                assert text == f"✓ {_fmt(c['count'])}"
            elif c["state"] == "not_used":
                assert text == "✗ 0"
            else:
                assert text == NO_DATA
    # a function no domain records says "no data", never "not used"
    assert {
        c["state"] for c in next(f for f in m["functions"] if f["id"] == "fn.sterile_supply")["cells"].values()
    } == {"no_data"}
    assert any(c["state"] == "used" for f in m["functions"] for c in f["cells"].values())
    shot(page, "functions")


def test_the_monthly_report_prints_and_comes_as_a_pdf_and_the_excel_export_can_be_forwarded(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook
    from pypdf import PdfReader

    base = demo_site.url
    page = users("official")
    open_dashboard(page, base, "set=county-community&indicator=cc.primary_visit_share")
    period = page.locator("input[name=period]").input_value()

    # Excel: the download a user gets from the page
    with page.expect_download() as download:
        page.get_by_role("link", name="导出 Excel").click()
    assert download.value.suggested_filename == f"county-community-{period}.xlsx"
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    sheet = book.active
    assert sheet["A1"].value == "紧密型县域医共体监测指标（2024年版）"
    assert str(sheet["A2"].value).startswith(f"统计期：{period}")
    assert str(sheet["A3"].value).startswith("来源：") and "国家卫生健康委" in sheet["A3"].value
    rows = list(sheet.iter_rows(min_row=5, values_only=True))
    head = list(rows[0])
    assert head[:13] == [
        "指标编号",
        "指标名称",
        "维度",
        "范围",
        "数值",
        "分子",
        "分母",
        "单位",
        "方向",
        "目标值",
        "是否达标",
        "状态",
        "说明",
    ]
    assert sheet["A5"].font.bold and sheet["A5"].fill.fgColor.rgb.endswith("1F4E79")
    expected = {
        (r["id"], r["scope_name"]): r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={period}&scope=1410")
    }
    data = [dict(zip(head, row, strict=False)) for row in rows[1:]]
    assert len(data) == len(expected) == 17 * 17
    for d in data:
        r = expected[d["指标编号"], d["范围"]]
        assert d["数值"] == (r["value"] if r["value"] is not None else NO_DATA)
        assert d["单位"] == UNITS[r["unit"]][1]  # every figure with its unit, in words
        assert not re.search(r"[a-z]{4}", d["说明"] or "")  # the notes in Chinese, like the pages
        assert d["状态"] in {"正常", "无数据", "分母为0", "数据不完整"}
    units = {d["指标编号"]: d["单位"] for d in data}
    assert units["cc.primary_visit_share"] == "%" and units["cc.lead_doctors_posted_per_10k"] == "每万人"

    # the monthly report: from the page, the latest month of the year, one county per printed page
    page.get_by_test_id("report-link").click()
    page.wait_for_url(re.compile(r"/indicators/report"))
    month = page.locator("input[name=period]").input_value()
    assert re.fullmatch(rf"{period}-\d\d", month) and month != f"{period}-01"
    sections = page.locator("[data-testid=report] section")
    assert sections.count() == 17
    monthly = {
        (r["id"], r["scope_name"]): r
        for r in api(page, base, f"/api/v1/indicators/compute?set=county-community&period={month}&scope=1410")
    }
    first = sections.first
    county = first.locator("h2").inner_text().strip()
    for indicator in ("cc.primary_visit_share", "cc.fund_in_county_share"):
        assert first.get_by_test_id(f"figure-{indicator}").inner_text().strip() == figure(
            monthly[indicator, county]["value"]
        )
    page.emulate_media(media="print")
    assert not page.locator("header").first.is_visible() and not page.get_by_test_id("pdf").is_visible()
    assert first.evaluate("s => getComputedStyle(s).breakAfter") == "page"
    shot(page, "report-print")
    page.emulate_media(media="screen")

    pdf = page.request.get(base + page.get_by_test_id("pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.body()))
    assert len(reader.pages) >= 17  # one county per page (at least)
    text = reader.pages[0].extract_text()
    assert "紧密型县域医共体监测指标" in text and county in text and "无数据" in text


def test_the_pages_speak_english_when_asked(users, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = demo_site.url
    page = users("official")
    page.goto(f"{base}/")
    page.get_by_role("link", name="English").click()
    try:
        open_dashboard(page, base, "set=county-community&indicator=cc.in_county_inpatient_share")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_role("heading", name="Ranking").is_visible()
        assert (
            "Tight county medical communities" in page.locator("h1").inner_text()
            or "county" in page.locator("h1").inner_text().lower()
        )
        table = page.get_by_test_id("chart-table").inner_text()
        assert "no data" in table and NO_DATA not in table
        assert page.get_by_test_id("view-trend").inner_text() == "Trend"
        page.goto(f"{base}/indicators/functions")
        assert page.get_by_test_id("class-fg_regional").inner_text() == "Regional service coordination"
        assert "no data" in page.get_by_test_id("function-matrix").inner_text()
        shot(page, "english")
    finally:
        page.goto(f"{base}/lang/zh?next=/")  # the shared context goes back to Chinese for the other tests
