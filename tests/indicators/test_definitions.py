"""Definitions are data checked at start-up; periods, targets and missing data are pure rules."""

from __future__ import annotations

from datetime import date

import pytest

from yilian.errors import Invalid
from yilian.indicators import definitions, rules

COUNTY_COMMUNITY = {
    "cc.lead_doctors_posted_per_10k",
    "cc.imaging_primary_coverage",
    "cc.ecg_primary_coverage",
    "cc.village_ecg_coverage",
    "cc.primary_lead_income_ratio",
    "cc.primary_visit_share",
    "cc.fund_in_county_share",
    "cc.fund_primary_share",
    "cc.inpatient_cost_per_case",
    "cc.inpatient_cost_growth",
    "cc.in_county_inpatient_share",
    "cc.tcm_visit_share",
    "cc.chronic_managed_admission_rate",
    "cc.premature_ncd_mortality",
    "cc.unified_resource_management",
    "cc.democratic_decision_making",
    "cc.service_coordination",
}


def test_it_ships_the_county_community_set_with_the_official_items() -> None:
    s = definitions.get_set("county-community")
    assert {i.id for i in s.indicators} == COUNTY_COMMUNITY
    assert definitions.get_indicator("cc.fund_in_county_share").name.zh == "医保基金县域内支出率（不含药店）"
    assert definitions.get_indicator("cc.in_county_inpatient_share").rule_targets()[0].value == 90
    assert [i.id for i in s.indicators if i.assessment] == [
        "cc.unified_resource_management",
        "cc.democratic_decision_making",
        "cc.service_coordination",
    ]
    assert set(definitions.load_all()) == {
        "county-community",
        "referrals",
        "regional-centre",
        "diagnostics",
        "outreach",
        "function-guide",
    }
    guide = definitions.get_set("function-guide")
    assert len(guide.indicators) == 36  # the 36 functions of the 2025 guide, in 5 classes
    assert len({i.aspect for i in guide.indicators}) == 5


BAD = """
id: broken
name: {zh: 坏, en: Broken}
source: {document: test, year: 2026}
indicators:
  - id: x.visits
    name: {zh: 门诊, en: Visits}
    aspect: volume
    unit: count
    direction: higher
    numerator: {from: encounter, date: period_start, where: {klass: AMB}, count: rows}
    scope_by: {facility: facility_id}
"""


def test_it_refuses_a_definition_naming_a_column_that_does_not_exist() -> None:
    with pytest.raises(Invalid) as exc:
        definitions.parse_set(BAD, "broken.yaml")
    assert exc.value.field == "broken.yaml"
    assert "x.visits.numerator: table encounter has no column 'klass'" in exc.value.message


def test_it_refuses_an_unknown_unit_and_a_growth_of_nothing() -> None:
    with pytest.raises(Invalid, match="unknown unit 'furlongs'"):
        definitions.parse_set(BAD.replace("unit: count", "unit: furlongs"), "u.yaml")
    growth = BAD.replace(
        "    numerator: {from: encounter, date: period_start, where: {klass: AMB}, count: rows}\n",
        "    growth_of: x.nothing\n",
    )
    with pytest.raises(Invalid, match=r"growth_of 'x\.nothing' is not in the set"):
        definitions.parse_set(growth, "g.yaml")


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("2026-10", date(2026, 10, 1), date(2026, 11, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-01..2026-06", date(2026, 1, 1), date(2026, 7, 1)),
        ("2025..2026", date(2025, 1, 1), date(2027, 1, 1)),
    ],
)
def test_it_reads_years_months_and_ranges(text: str, start: date, end: date) -> None:
    p = rules.parse_period(text)
    assert (p.start, p.end, p.label) == (start, end, text)


@pytest.mark.parametrize("text", ["", "26", "2026-13", "2026-00", "2026-06..2026-01", "last year"])
def test_it_refuses_what_is_not_a_period(text: str) -> None:
    with pytest.raises(Invalid) as exc:
        rules.parse_period(text)
    assert exc.value.field == "period"


def test_the_most_specific_target_wins() -> None:
    targets = [rules.Target(60), rules.Target(70, scope="1410"), rules.Target(75, period="2027", scope="1410")]
    assert rules.target_for(targets, 2026, "141021").value == 70  # type: ignore[union-attr]
    assert rules.target_for(targets, 2027, "141021").value == 75  # type: ignore[union-attr]
    assert rules.target_for(targets, 2026, "140105").value == 60  # type: ignore[union-attr]
    assert rules.meets(59.9, rules.Target(60)) is False
    assert rules.meets(None, rules.Target(60)) is None
    assert rules.meets(8.4, rules.Target(8.5, comparison="lt")) is True


def test_zero_and_unknown_never_become_a_number() -> None:
    assert rules.ratio_value(0, 0, "percent").value is None
    assert rules.ratio_value(0, 5, "percent").value == 0.0
    assert rules.ratio_value(1, 3, "percent").value == 33.3333
    assert rules.ratio_value(2, 20000, "per_10000").value == 1.0
    assert rules.growth_value(8000, 6400).value == 25.0
    assert rules.growth_value(8000, 0).status == "zero_denominator"
    assert rules.missing_data("claim", None, rules.parse_period("2026"), date(2026, 11, 23)) == rules.Missing(
        "no_data", "no data: claim is not recorded yet"
    )
    cov = rules.Coverage(10, date(2026, 1, 3), date(2026, 6, 30))
    assert rules.missing_data("encounter", cov, rules.parse_period("2026-07"), date(2026, 11, 23)).status == "no_data"  # type: ignore[union-attr]
    assert rules.missing_data("encounter", cov, rules.parse_period("2026-06"), date(2026, 11, 23)) is None
