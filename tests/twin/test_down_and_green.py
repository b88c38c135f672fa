"""Down-referrals and green channels come from the referrals domain: its down criteria, its SLA, its router."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from yilian.referrals import catalogue, registry, service
from yilian.twin import decisions, engine, scenarios
from yilian.twin.model import ACUTE, CHRONIC, CITY, COUNTY, GREEN

HONGDONG = "141024"
HYPERTENSION = 1 << CHRONIC.index("hypertension")
NONE = len(ACUTE)


def _without(criterion_id: str) -> tuple:
    return tuple(c for c in catalogue.load_criteria() if c.id != criterion_id)


def test_down_referrals_follow_the_referral_criteria(baseline: scenarios.Scenario) -> None:
    meets, met = decisions.compile_down_criteria(baseline.parameters)
    assert "htn-down-controlled" in met["hypertension"] and "stroke-down-rehab" in met["stroke"]
    assert meets[HYPERTENSION, NONE] > 0 and meets[0, NONE] == 0  # a case with no down criterion is not sent down
    assert meets[0, ACUTE.index("trauma")] == 0  # no down criterion for trauma in the referrals domain

    # Without the hypertension criterion a hypertensive inpatient no longer meets a down criterion.
    fewer, met_fewer = decisions.compile_down_criteria(baseline.parameters, _without("htn-down-controlled"))
    assert fewer[HYPERTENSION, NONE] == 0 and "hypertension" not in met_fewer
    # A stricter threshold in the criterion (< 130 instead of < 140 mmHg) excludes the 132/82 discharge.
    stricter = []
    for c in catalogue.load_criteria():
        if c.id == "htn-down-controlled":
            when = copy.deepcopy(dict(c.when))
            for node in when["all"]:
                if "obs" in node and node["obs"]["code"] == "8480-6":
                    node["obs"]["value"] = 130
            c = dataclasses.replace(c, when=when)
        stricter.append(c)
    strict, _ = decisions.compile_down_criteria(baseline.parameters, tuple(stricter))
    assert strict[HYPERTENSION, NONE] == 0


def test_a_change_to_the_down_criteria_changes_the_twins_down_referrals(baseline: scenarios.Scenario) -> None:
    world = scenarios.build_world(baseline, seed=1, scale=0.01, region=[HONGDONG])
    without = dataclasses.replace(
        world,
        decisions=decisions.compile_decisions(
            world.region, world.fac, world.geo, world.params, _without("htn-down-controlled")
        ),
    )
    prep = engine.prepare(world)
    base = engine.simulate(world, prep, years=0.2, seed=5)
    fewer = engine.simulate(without, prep, years=0.2, seed=5)
    assert fewer["down_referrals"].sum() < base["down_referrals"].sum()
    # Patients go back to the facility that referred them up, else down the ladder: never up, never to a clinic.
    received = np.flatnonzero(base["fac_down_received"])
    assert received.size and (world.fac.kind[received] >= 1).all()


def test_green_channels_take_the_referral_domains_targets_and_centres(baseline: scenarios.Scenario) -> None:
    world = scenarios.build_world(baseline, seed=1, scale=0.005, region=[HONGDONG])
    dec, fac = world.decisions, world.fac
    terms = service.sla_config()["green_channels"]
    assert dec.green_chain_minutes is not None and dec.green_door_minutes is not None
    assert dec.green_chain_minutes[ACUTE.index("mi")] == terms["chest_pain"]["chain"]
    assert dec.green_door_minutes[ACUTE.index("stroke")] == terms["stroke"]["door_to_treatment"]
    assert set(decisions.CHANNEL_OF_GREEN.values()) <= set(registry.CENTRE_COLUMNS)

    # In the baseline Hongdong county hospital is no chest-pain centre: the router sends MI on to a city centre.
    mi = ACUTE.index("mi")
    assert dec.green_destination is not None
    assert (fac.kind[dec.green_destination[:, mi]] == CITY).all()
    assert "chest_pain" in decisions.centres(fac, int(dec.green_destination[0, mi]))
    # Stroke: the county hospital is a stroke centre and treats its own.
    assert (fac.kind[dec.green_destination[:, ACUTE.index("stroke")]] == COUNTY).all()

    # Upgraded to a chest-pain centre (the scenario's upgrade), it keeps its MI patients and the chain gets shorter.
    upgraded = scenarios.build_world(
        scenarios.load("chest-pain-centre-hongdong"), seed=1, scale=0.005, region=[HONGDONG]
    )
    hospital = int(np.flatnonzero((upgraded.fac.kind == COUNTY) & (upgraded.fac.county == 0))[0])
    assert upgraded.fac.green[hospital, GREEN.index("pci")]
    assert upgraded.decisions.green_destination is not None
    assert (upgraded.decisions.green_destination[:, mi] == hospital).all()


def test_the_router_picks_the_nearest_chest_pain_centre_when_the_city_has_none(baseline: scenarios.Scenario) -> None:
    world = scenarios.build_world(baseline, seed=1, scale=0.005, region=[HONGDONG])
    fac = copy.deepcopy(world.fac)
    fac.green[fac.kind == CITY, GREEN.index("pci")] = False  # the city hospital loses its chest-pain centre
    dec = decisions.compile_decisions(world.region, fac, world.geo, world.params)
    assert dec.green_destination is not None
    receivers = dec.green_destination[:, ACUTE.index("mi")]
    assert (fac.kind[receivers] != CITY).all()
    assert all("chest_pain" in decisions.centres(fac, int(f)) for f in receivers)
