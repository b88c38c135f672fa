from __future__ import annotations

import json

from typer.testing import CliRunner

from yilian.twin.cli import app


def test_it_prints_one_json_document_with_intervals_per_county_and_region() -> None:
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--scenario",
            "baseline-linfen",
            "--years",
            "0.1",
            "--replications",
            "2",
            "--seed",
            "1",
            "--scale",
            "0.01",
            "--region",
            "141024,141025",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["replications"] == 2
    assert set(doc["counties"]) == {"141024", "141025"}
    for area in (doc["region"], doc["counties"]["141024"]):
        for name in (
            "visits_per_person_year",
            "in_county_admission_share",
            "primary_share_of_visits",
            "up_referrals",
            "down_referrals",
            "travel_minutes_per_visit",
            "wait_minutes_per_visit",
            "cost_per_inpatient_case_yuan",
            "fund_spent_in_county_share",
        ):
            v = area[name]
            assert v["low"] <= v["mean"] <= v["high"], name
    assert doc["counties"]["141024"]["name"] == "洪洞县"
    assert doc["performance"]["events_per_s"] > 0


def test_it_compares_two_scenarios_and_explains_a_bad_format() -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "compare",
            "baseline-linfen",
            "close-township-hongdong-yandi",
            "--years",
            "0.1",
            "--replications",
            "2",
            "--scale",
            "0.01",
            "--region",
            "141024",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["difference"]["townships"]["141024200"]["travel_minutes_per_visit"]["mean"] > 0
    bad = runner.invoke(app, ["run", "--scenario", "baseline-linfen", "--format", "xml"])
    assert bad.exit_code != 0
