from __future__ import annotations

import pytest

from yilian.errors import NotFound
from yilian.referrals.catalogue import insurance_rules
from yilian.referrals.insurance import before_and_after, estimate

YUAN = 100


def test_it_waives_the_second_deductible_and_keeps_the_county_rate_inside_the_chain() -> None:
    rules = insurance_rules("14")
    alone, chain = before_and_after(
        rules, cost=30000 * YUAN, level="tertiary", referred_from="county_hospital", deductible_paid=500 * YUAN
    )
    # Alone: 1,000 yuan deductible, 65 % - 20 points out of county = 45 % of 29,000 yuan.
    assert alone.deductible == 1000 * YUAN
    assert alone.fund_pays == round(29000 * YUAN * 0.45)
    # Chain: pays only the 500 yuan difference in deductible, county rate 80 % of 29,500 yuan.
    assert chain.deductible == 500 * YUAN
    assert chain.rate == 0.80
    assert chain.fund_pays == round(29500 * YUAN * 0.80)
    assert chain.out_of_pocket < alone.out_of_pocket
    assert any("second deductible waived" in r for r in chain.reasons)


def test_it_never_raises_the_rate_above_the_county_level_for_a_township_referral() -> None:
    rules = insurance_rules("14")
    chain = estimate(
        rules, cost=10000 * YUAN, level="tertiary", referred_from="township_centre", deductible_paid=200 * YUAN
    )
    assert chain.rate == 0.80


def test_it_stops_paying_at_the_annual_cap() -> None:
    rules = insurance_rules("14")
    result = estimate(rules, cost=100000 * YUAN, level="county_hospital", used_this_year=rules.annual_cap - 1000 * YUAN)
    assert result.fund_pays == 1000 * YUAN
    assert "annual cap reached" in result.reasons


def test_it_says_when_a_region_has_no_rules() -> None:
    with pytest.raises(NotFound) as info:
        insurance_rules("99")
    assert info.value.field == "province"
