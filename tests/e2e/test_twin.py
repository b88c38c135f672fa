"""An official of Linfen builds a scenario on the twin page — clicks Hongdong county hospital on the map, posts 70
resident experts there — runs it with a progress bar and reads baseline and scenario side by side (Debian Chromium)."""

from __future__ import annotations

import re

HONGDONG = "141024"


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "yilian2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def click_facility_on_the_map(page, county: str, kind: str) -> str:  # type: ignore[no-untyped-def]
    """Click the map's point for the facility of that kind in that county, as a person would (at its pixel)."""
    page.wait_for_function("window.twinMap !== undefined")
    x, y, name = page.evaluate(
        """([county, kind]) => {
          const chart = window.twinMap, series = chart.getOption().series;
          for (let i = 0; i < series.length; i++) {
            const j = series[i].data.findIndex(d => d[3] === county && d[5] === kind);
            if (j >= 0) { const p = chart.convertToPixel({seriesIndex: i}, series[i].data[j].slice(0, 2));
                          return [p[0], p[1], series[i].data[j][2]]; }
          }
          return [null, null, null];
        }""",
        [county, kind],
    )
    assert name, f"no {kind} of {county} on the map"
    box = page.get_by_test_id("twin-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    return str(name)


def test_an_official_builds_a_scenario_on_the_map_runs_it_and_compares(page, demo_site, shot) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site.url, "official")
    page.get_by_role("link", name="数字孪生").click()
    page.wait_for_url(re.compile(r".*/twin$"))
    page.wait_for_function("document.querySelector('[data-testid=twin-map] canvas') !== null")

    # A mistake first: closing a township centre without saying which one names the field.
    page.get_by_test_id("change-type").select_option("close_township_centre")
    page.get_by_test_id("field-township").wait_for()
    page.get_by_test_id("add-change").click()
    assert "township" in page.get_by_test_id("draft-error").inner_text()

    page.get_by_test_id("change-type").select_option("add_resident_experts")
    page.get_by_test_id("field-experts").wait_for()
    name = click_facility_on_the_map(page, HONGDONG, "county_hospital")
    assert page.get_by_test_id("field-county").input_value() == HONGDONG
    assert name in page.inner_text("#picked")
    page.get_by_test_id("field-experts").fill("70")
    page.get_by_test_id("add-change").click()
    assert "派驻常驻专家" in page.get_by_test_id("draft-changes").inner_text()
    assert "洪洞县" in page.get_by_test_id("draft-changes").inner_text()

    page.get_by_test_id("scenario-name").fill("洪洞县医院70名常驻专家")
    page.fill("input[name=replications]", "3")
    page.fill("input[name=years]", "0.5")
    page.get_by_test_id("run").click()
    page.get_by_test_id("progress").wait_for()  # the bar is shown while the run goes on in the background
    shot("twin-running")
    page.get_by_test_id("comparison").wait_for(timeout=180_000)
    table = page.get_by_test_id("comparison-table-region").inner_text()
    assert "县域内住院率" in table and "基线" in table and "差值" in table
    page.wait_for_function("document.querySelector('[data-testid=chart-in_county_admission_share] canvas') !== null")
    shot("twin-comparison")
    assert page.get_by_test_id("download-yaml").get_attribute("href").endswith("/scenario.yaml")
