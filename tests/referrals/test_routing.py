from __future__ import annotations

import random
import uuid
from dataclasses import replace

from yilian.referrals import catalogue
from yilian.referrals.routing import (
    Candidate,
    RoutingRequest,
    haversine_km,
    lowest_capable_level,
    rank,
    shortlist,
)

GROUP, OTHER = uuid.uuid4(), uuid.uuid4()
# A township in Linfen's Yaodu district and facilities around it (real coordinates of Linfen city and Taiyuan).
TOWNSHIP = (111.52, 36.08)


def facility(name: str, level: str, lon: float, lat: float, **kw) -> Candidate:  # type: ignore[no-untyped-def]
    kw.setdefault("services", frozenset({"cardiology", "internal_medicine"}))
    kw.setdefault("consortium_ids", frozenset({GROUP}))
    kw.setdefault("free_capacity", 5)
    return Candidate(facility_id=uuid.uuid4(), name=name, level=level, lon=lon, lat=lat, **kw)


COUNTY = facility("县人民医院", "county_hospital", 111.55, 36.10)
CITY = facility(
    "临汾市中心医院",
    "tertiary",
    111.51,
    36.09,
    consortium_ids=frozenset({GROUP}),
    centres=frozenset({"chest_pain", "stroke"}),
)
REGIONAL = facility(
    "北京大学第一医院太原医院",
    "national_regional_centre",
    112.55,
    37.87,
    consortium_ids=frozenset({OTHER}),
    centres=frozenset({"chest_pain", "stroke", "trauma"}),
)
NO_CARDIO = facility("某中医院", "county_hospital", 111.53, 36.09, services=frozenset({"tcm"}))


def request(**kw) -> RoutingRequest:  # type: ignore[no-untyped-def]
    kw.setdefault("service", "cardiology")
    return RoutingRequest(
        from_level="village_clinic", lon=TOWNSHIP[0], lat=TOWNSHIP[1], consortium_ids=frozenset({GROUP}), **kw
    )


def test_it_measures_distance_on_the_sphere() -> None:
    assert 215 < haversine_km(111.52, 36.08, 112.55, 37.87) < 225  # Linfen → Taiyuan, about 220 km


def test_it_proposes_the_county_hospital_first_for_a_routine_village_referral_and_explains_why() -> None:
    ranked = rank(request(), [CITY, COUNTY, NO_CARDIO])
    assert [r.candidate.name for r in ranked] == ["县人民医院", "临汾市中心医院"]
    top = ranked[0]
    assert "next level up that offers the service" in top.reasons
    assert "skips 1 capable level(s)" in ranked[1].reasons
    assert set(top.factors) == {"capacity", "level", "consortium", "travel", "choice"}
    assert top.score == round(sum(top.factors.values()), 3)


def test_it_never_routes_outside_the_consortium_without_a_reason_or_the_patients_choice() -> None:
    assert rank(request(service=None, green_channel="trauma"), [REGIONAL]) == []
    with_reason = rank(request(service=None, green_channel="trauma", outside_reason="无本医联体创伤中心"), [REGIONAL])
    assert [r.candidate.name for r in with_reason] == [REGIONAL.name]
    chosen = rank(request(patient_choice=REGIONAL.facility_id), [COUNTY, REGIONAL])
    by_name = {r.candidate.name: r for r in chosen}
    assert "patient's choice" in by_name[REGIONAL.name].reasons
    assert by_name[REGIONAL.name].factors["consortium"] == 0


def test_it_sends_a_chest_pain_emergency_to_a_chest_pain_centre_skipping_levels() -> None:
    ranked = rank(request(service=None, urgency="emergency", green_channel="chest_pain"), [COUNTY, CITY])
    assert [r.candidate.name for r in ranked] == ["临汾市中心医院"]
    assert any("skip" in reason for reason in ranked[0].reasons)


def test_it_prefers_free_capacity_and_says_when_a_place_is_full() -> None:
    full = facility("县医院（满床）", "county_hospital", 111.55, 36.10, free_capacity=0)
    ranked = rank(request(), [full, COUNTY])
    assert ranked[0].candidate is COUNTY
    assert "no free capacity now: would wait" in ranked[1].reasons


def test_the_fast_shortlist_picks_exactly_what_the_full_ranking_picks() -> None:
    # On a national registry the router scores a few hundred candidates at once with NumPy and explains only the
    # best: the answer a coordinator sees must be the same as ranking every candidate one by one.
    rng = random.Random(5)
    levels = ["township_centre", "county_hospital", "tertiary", "national_regional_centre"]
    groups = [uuid.uuid4() for _ in range(6)]
    for trial in range(60):
        pool = [
            Candidate(
                facility_id=uuid.uuid4(),
                name=f"f{trial}-{n}",
                level=rng.choice(levels),
                lon=TOWNSHIP[0] + rng.uniform(-2.5, 2.5),
                lat=TOWNSHIP[1] + rng.uniform(-2.5, 2.5),
                services=frozenset(rng.sample(["cardiology", "neurology", "tcm"], rng.randint(1, 3))),
                centres=frozenset(rng.sample(["chest_pain", "stroke"], rng.randint(0, 2))),
                consortium_ids=frozenset(rng.sample(groups, rng.randint(0, 2))),
                road_factor=rng.choice([1.3, 1.6]),
            )
            for n in range(rng.randint(0, 300))
        ]
        chosen = rng.choice(pool).facility_id if pool and rng.random() < 0.3 else None
        req = RoutingRequest(
            from_level=rng.choice(["village_clinic", "township_centre"]),
            lon=TOWNSHIP[0],
            lat=TOWNSHIP[1],
            service=rng.choice(["cardiology", "neurology", None]),
            urgency=rng.choice(["routine", "urgent", "emergency"]),
            green_channel=rng.choice([None, None, "chest_pain"]),
            consortium_ids=frozenset(rng.sample(groups, rng.randint(0, 2))),
            patient_choice=chosen,
            outside_reason=rng.choice([None, None, "患者要求"]),
            road_factor=rng.choice([1.0, 1.6]),
        )
        k = rng.choice([1, 5, 10])
        fast, lowest = shortlist(req, pool, k)
        full = rank(req, pool)[:k]
        assert [(r.candidate.facility_id, r.score, r.reasons) for r in fast] == [
            (r.candidate.facility_id, r.score, r.reasons) for r in full
        ]
        assert lowest == lowest_capable_level(req, pool)


def test_it_counts_mountain_roads_as_longer_from_the_terrain_of_either_end() -> None:
    travel = catalogue.travel_model()
    assert travel.road_factor("141123") == 1.6  # a county of Lüliang: the mountains (routing.yaml)
    assert travel.road_factor("141023") == travel.default_road_factor
    km = haversine_km(TOWNSHIP[0], TOWNSHIP[1], COUNTY.lon, COUNTY.lat)
    assert rank(request(), [COUNTY])[0].travel_minutes == round(km * 1.3 / 50 * 60, 1)
    from_the_mountains = rank(replace(request(), road_factor=1.6), [COUNTY])[0].travel_minutes
    into_the_mountains = rank(request(), [replace(COUNTY, road_factor=1.6)])[0].travel_minutes
    assert from_the_mountains == into_the_mountains == round(km * 1.6 / 50 * 60, 1)
