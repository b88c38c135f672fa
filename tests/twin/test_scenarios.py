from __future__ import annotations

import json

import pytest

from yilian.errors import Invalid, NotFound
from yilian.twin import scenarios

HONGDONG = "141024"
YANDI = "141024200"  # 淹底乡, whose centre the close-township scenario shuts


def _no_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["high"] < b["low"] or b["high"] < a["low"]


def test_it_ships_a_baseline_and_the_reform_scenarios() -> None:
    names = [p.name for p in scenarios.shipped()]
    assert any("baseline" in n for n in names)
    for prefix in ("resident-experts-", "close-township-", "capitation-"):
        assert any(n.startswith(prefix) for n in names), prefix
    for path in scenarios.shipped():
        sc = scenarios.load(path)
        assert sc.region, path.name
        for i, ch in enumerate(sc.changes):
            assert ch["type"] in scenarios.CHANGES, (path.name, i)


def test_it_keeps_patients_in_the_county_when_resident_experts_come(baseline: scenarios.Scenario) -> None:
    experts = scenarios.load("resident-experts-hongdong")
    doc = scenarios.compare(
        baseline, experts, years=0.5, replications=10, seed=11, scale=0.05, region=[HONGDONG], workers=2
    )
    before, after = doc["base_results"]["counties"][HONGDONG], doc["new_results"]["counties"][HONGDONG]
    assert after["in_county_admission_share"]["mean"] > before["in_county_admission_share"]["mean"]
    assert _no_overlap(after["in_county_admission_share"], before["in_county_admission_share"])
    assert after["up_referrals"]["mean"] < before["up_referrals"]["mean"]
    assert _no_overlap(after["up_referrals"], before["up_referrals"])
    diff = doc["difference"]["counties"][HONGDONG]["county_hospital_up_referrals"]
    assert diff["high"] < 0


def test_it_makes_the_villages_of_a_closed_township_centre_travel_longer(baseline: scenarios.Scenario) -> None:
    closed = scenarios.load("close-township-hongdong-yandi")
    doc = scenarios.compare(
        baseline, closed, years=0.25, replications=4, seed=5, scale=0.05, region=[HONGDONG], workers=2
    )
    before = doc["base_results"]["townships"][YANDI]["travel_minutes_per_visit"]["mean"]
    after = doc["new_results"]["townships"][YANDI]["travel_minutes_per_visit"]["mean"]
    assert after > before + 2, (before, after)
    assert doc["difference"]["townships"][YANDI]["travel_minutes_per_visit"]["low"] > 0


def test_it_reports_the_capitation_balance_of_the_county_group(baseline: scenarios.Scenario) -> None:
    cap = scenarios.load("capitation-hongdong")
    _world, per_rep, _ = scenarios.run(
        cap, years=0.25, replications=1, seed=2, scale=0.02, region=[HONGDONG], workers=1
    )
    county = per_rep[0]["counties"][HONGDONG]
    assert "capitation_balance_yuan" in county
    assert county["fund_per_insured_yuan"] > 0
    _, base_rep, _ = scenarios.run(
        baseline, years=0.25, replications=1, seed=2, scale=0.02, region=[HONGDONG], workers=1
    )
    assert county["primary_share_of_visits"] > base_rep[0]["counties"][HONGDONG]["primary_share_of_visits"]


def test_it_gives_the_same_output_for_the_same_seed(baseline: scenarios.Scenario) -> None:
    runs = [
        scenarios.run(baseline, years=0.1, replications=2, seed=42, scale=0.01, region=[HONGDONG], workers=w)[1]
        for w in (1, 2)
    ]
    # JSON text, because an indicator without events is NaN and NaN != NaN.
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)
    other = scenarios.run(baseline, years=0.1, replications=2, seed=43, scale=0.01, region=[HONGDONG], workers=1)[1]
    assert json.dumps(other, sort_keys=True) != json.dumps(runs[0], sort_keys=True)


def test_it_names_the_field_of_a_bad_change() -> None:
    with pytest.raises(Invalid) as exc:
        scenarios.from_dict({"baseline": "baseline-linfen.yaml", "changes": [{"type": "build_a_spaceport"}]})
    assert exc.value.field == "changes[0].type"
    with pytest.raises(Invalid) as exc:
        scenarios.from_dict(
            {"baseline": "baseline-linfen.yaml", "parameters": {"referral": {"up_inpatient": {"moon": 1}}}}
        )
    assert exc.value.field == "referral.up_inpatient.moon"
    sc = scenarios.from_dict(
        {"baseline": "baseline-linfen.yaml", "changes": [{"type": "close_township_centre", "township": "999999999"}]}
    )
    with pytest.raises(NotFound) as nf:
        scenarios.build_world(sc, seed=1, scale=0.01, region=[HONGDONG])
    assert nf.value.field == "changes[0].township"
