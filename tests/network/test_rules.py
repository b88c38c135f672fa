"""The registry's pure rules, with plain values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.errors import Invalid
from yilian.network import rules
from yilian.network.rules import Level


def test_it_sends_an_up_referral_one_level_up_and_stops_at_the_national_centre() -> None:
    assert rules.next_level_up("village_clinic") == Level.TOWNSHIP_CENTRE
    assert rules.next_level_up("township_centre") == Level.COUNTY_HOSPITAL
    assert rules.next_level_up("county_hospital") == Level.TERTIARY
    assert rules.next_level_up("tertiary") == Level.NATIONAL_REGIONAL_CENTRE
    assert rules.next_level_up("national_regional_centre") is None
    assert rules.next_level_down("village_clinic") is None
    assert rules.is_above("county_hospital", "township_centre")
    assert not rules.is_above("village_clinic", "township_centre")


@given(st.integers(min_value=0, max_value=10_000_000), st.lists(st.floats(0, 1e6), min_size=1, max_size=60))
def test_it_allocates_beds_that_sum_exactly_to_the_target(total: int, weights: list[float]) -> None:
    parts = rules.allocate(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    wsum = sum(weights)
    if wsum > 0:
        for p, w in zip(parts, weights, strict=True):
            assert abs(p - total * w / wsum) < 1 + 1e-6


def test_it_targets_7_23_beds_per_thousand_residents() -> None:
    assert rules.beds_target(3_976_481) == round(3_976_481 * 7.23 / 1000)
    assert math.isclose(rules.beds_per_1000(7230, 1_000_000), 7.23)
    assert rules.beds_per_1000(10, 0) == 0.0


def test_it_names_townships_claimed_by_two_grids_and_the_ones_left_out() -> None:
    grids = {"第1网格": ["141002001", "141002002"], "第2网格": ["141002002", "141002003"]}
    assert rules.grid_overlaps(grids) == {"141002002": ["第1网格", "第2网格"]}
    assert rules.grid_gaps(["141002001", "141002002", "141002003", "141002004"], grids) == ["141002004"]


def test_it_refuses_a_consortium_whose_lead_is_not_a_member() -> None:
    rules.require_lead_is_member("a", ["a", "b"])
    with pytest.raises(Invalid) as info:
        rules.require_lead_is_member("c", ["a", "b"])
    assert info.value.field == "lead_facility_id"


def test_it_finds_county_community_members_outside_their_county() -> None:
    members = {"county": "141024", "town": "141024100", "elsewhere": "141021100"}
    assert rules.outside_county("141024", members) == ["elsewhere"]


def test_it_reads_division_levels_from_the_code_length_and_accepts_padded_codes() -> None:
    assert rules.division_level("14") == "province"
    assert rules.division_level("1410") == "city"
    assert rules.division_level("141024") == "county"
    assert rules.division_level("141024100") == "township"
    assert rules.normalise_division_code("141000") == "1410"
    assert rules.normalise_division_code("140000") == "14"
    assert rules.normalise_division_code("141024100000") == "141024100"
    with pytest.raises(Invalid):
        rules.division_level("14102")
    with pytest.raises(Invalid):
        rules.normalise_division_code("14a0")


def test_it_places_points_around_a_centre_deterministically_and_inside_the_radius() -> None:
    points = [rules.place_around(111.5, 36.0, i, 20, 0.1) for i in range(20)]
    assert points == [rules.place_around(111.5, 36.0, i, 20, 0.1) for i in range(20)]
    assert len(set(points)) == 20
    for lon, lat in points:
        dx = (lon - 111.5) * math.cos(math.radians(36.0))
        assert math.hypot(dx, lat - 36.0) <= 0.1 + 1e-6


def test_it_tells_streets_from_towns() -> None:
    assert rules.is_street("鼓楼街道")
    assert not rules.is_street("大槐树镇")
    assert not rules.is_street("刘村乡")
