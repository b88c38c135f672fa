"""The twin refers by the referrals domain's criteria and router, and reports the indicators domain's definitions."""

from __future__ import annotations

import copy
import math

import numpy as np

from yilian.indicators import definitions
from yilian.twin import decisions, scenarios
from yilian.twin.model import CITY, COUNTY, TOWNSHIP, VILLAGE

HONGDONG = "141024"
YANDI = "141024200"


def test_it_refers_chronic_patients_by_the_referral_criteria(baseline: scenarios.Scenario) -> None:
    beyond, shares, met = decisions.compile_criteria(baseline.parameters)
    assert beyond  # the criteria's capability test sends up what a facility cannot do
    assert "htn-up-severe" in met["hypertension"] and "t2dm-up-hba1c" in met["diabetes"]
    # A first reading of 172/104 is below the criteria's 180/110: that presentation no longer meets a criterion.
    milder = copy.deepcopy(baseline.parameters)
    milder["referral"]["chronic_presentations"]["hypertension"][0]["observations"] = {"8480-6": 172, "8462-4": 104}
    _, fewer, met_milder = decisions.compile_criteria(milder)
    assert fewer[0] < shares[0]
    assert "htn-up-severe" not in met_milder["hypertension"]


def test_it_routes_up_referrals_with_the_referral_router(baseline: scenarios.Scenario) -> None:
    world = scenarios.build_world(baseline, seed=1, scale=0.005, region=[HONGDONG])
    fac, dec, slot = world.fac, world.decisions, world.geo.slot_facility
    routes = dec.up_destination[dec.village_combo]
    assert (fac.kind[routes[:, VILLAGE]] == TOWNSHIP).all()  # village clinic → its township centre
    assert (fac.kind[routes[:, TOWNSHIP]] == COUNTY).all()  # township centre → the county hospital (own community)
    assert (fac.kind[routes[:, COUNTY]] == CITY).all()  # county hospital → the city's tertiary hospital
    assert (routes[:, TOWNSHIP] == slot[:, COUNTY]).all()

    closed = scenarios.build_world(
        scenarios.load("close-township-hongdong-yandi"), seed=1, scale=0.005, region=[HONGDONG]
    )
    t = closed.region.township_codes.index(YANDI)
    villages = np.flatnonzero(closed.region.village_township == t)
    receivers = closed.decisions.up_destination[closed.decisions.village_combo[villages], VILLAGE]
    assert closed.fac.open[receivers].all() and (closed.fac.township[receivers] != t).all()


def test_it_reports_the_indicator_definitions_in_their_units(baseline: scenarios.Scenario) -> None:
    _, per_rep, _ = scenarios.run(baseline, years=0.1, replications=1, seed=4, scale=0.02, region=[HONGDONG], workers=1)
    area = per_rep[0]["counties"][HONGDONG]
    share = definitions.get_indicator("cc.primary_visit_share")
    assert share.unit == "percent"
    assert math.isclose(area["cc.primary_visit_share"], 100 * area["primary_share_of_visits"], abs_tol=1e-3)
    assert math.isclose(area["cc.in_county_inpatient_share"], 100 * area["in_county_admission_share"], abs_tol=1e-3)
    assert math.isclose(area["ref.up_referrals"], area["up_referrals"], rel_tol=1e-9)
    assert 0 <= area["ref.out_of_county_share"] <= 100
