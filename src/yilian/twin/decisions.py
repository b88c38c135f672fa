"""Referral decisions of the twin, taken by the referrals domain's own criteria and router, compiled into arrays.

The referrals domain decides one patient at a time: `rules.matching_criteria` reads a patient's clinical facts against
the criteria YAML, `routing.rank` scores the receivers. The twin makes millions of such decisions a simulated year, so
it asks the same two functions once per run about every *kind* of case it can produce and keeps the answers as
arrays the day-step indexes:

- `refers_beyond`: does a case the facility cannot handle meet an up-referral criterion? (the criteria's
  `not_capable` test, e.g. `beyond-capability`);
- `chronic_up[k]`: the share of visits of a patient with chronic condition k that meet an up-referral criterion,
  from the presentations in parameters.yaml (`referral.chronic_presentations`) — a change to a threshold in the
  criteria file (say 180 → 170 mmHg) changes the twin's referrals;
- `up_destination[combo, kind]`: where the router sends an up-referral from a facility of that kind, for every
  distinct set of facilities a village can reach (closed facilities are not candidates; the county medical community
  is the consortium; outside it only with a reason, as the router requires).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from yilian.referrals import catalogue, routing
from yilian.referrals import rules as referral_rules
from yilian.twin.model import CHRONIC, CITY, COUNTY, OTHER, TOP, TOWNSHIP, VILLAGE, Facilities, Geometry
from yilian.twin.population import Region

# The twin's six kinds as the router's levels.
ROUTER_LEVEL = {
    VILLAGE: "village_clinic",
    TOWNSHIP: "township_centre",
    COUNTY: "county_hospital",
    OTHER: "county_hospital",
    CITY: "tertiary",
    TOP: "national_regional_centre",
}
UP_NEXT = np.array([TOWNSHIP, COUNTY, CITY, CITY, TOP, TOP])
_KM_PER_DEG_LON = 111.32 * math.cos(math.radians(36.0))  # the projection population.py lays the region out with
_KM_PER_DEG_LAT = 110.57


@dataclass
class Decisions:
    refers_beyond: bool
    chronic_up: np.ndarray  # (len(CHRONIC),) share of a chronic patient's visits meeting an up criterion
    chronic_criteria: dict[str, list[str]]  # condition -> ids of the up criteria its presentations meet
    village_combo: np.ndarray  # (n_villages,) index into up_destination
    up_destination: np.ndarray  # (n_combos, 6) facility index, -1 where nobody is referred up (top level)


def _facts(p: dict[str, Any], *, capable: bool | None = None) -> referral_rules.ClinicalFacts:
    obs = tuple(
        referral_rules.Observation(code=str(c), value=float(v)) for c, v in (p.get("observations") or {}).items()
    )
    services = None if capable is None else frozenset({"primary_care"} | ({"specialist_care"} if capable else set()))
    return referral_rules.ClinicalFacts(
        conditions=frozenset(str(c) for c in p.get("conditions") or []),
        observations=obs,
        flags=frozenset(str(f) for f in p.get("flags") or []),
        facility_services=services,
        needed_services=frozenset({"specialist_care"}) if capable is not None else frozenset(),
    )


def compile_criteria(params: dict[str, Any]) -> tuple[bool, np.ndarray, dict[str, list[str]]]:
    """Ask the referral criteria about every kind of case the twin produces; return the answers as arrays."""
    criteria = catalogue.load_criteria()
    beyond = bool(referral_rules.matching_criteria(_facts({}, capable=False), criteria, direction="up"))
    within = bool(referral_rules.matching_criteria(_facts({}, capable=True), criteria, direction="up"))
    # A case the facility can handle meets no criterion by itself: otherwise every visit would be referred.
    beyond = beyond and not within
    shares = np.zeros(len(CHRONIC))
    met: dict[str, list[str]] = {}
    presentations = params["referral"].get("chronic_presentations") or {}
    for k, condition in enumerate(CHRONIC):
        for p in presentations.get(condition, []):
            matches = referral_rules.matching_criteria(_facts(p), criteria, direction="up")
            if matches:
                shares[k] += float(p["share"])
                met.setdefault(condition, []).extend(m.criterion.id for m in matches)
    return beyond, shares, met


def _lonlat(xy: np.ndarray) -> tuple[float, float]:
    return float(xy[0]) / _KM_PER_DEG_LON, float(xy[1]) / _KM_PER_DEG_LAT


def compile_routes(region: Region, fac: Facilities, geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Where the referrals router sends an up-referral from each kind of facility a village uses."""
    # Villages differ only by their own clinic; the receivers above it are shared by whole townships.
    slots = geo.slot_facility.copy()
    slots[:, VILLAGE] = -1
    combos, village_combo = np.unique(slots, axis=0, return_inverse=True)
    consortium = {
        c: uuid.uuid5(uuid.NAMESPACE_URL, f"yilian:twin:county:{code}") for c, code in enumerate(region.county_codes)
    }

    def candidate(f: int) -> routing.Candidate:
        lon, lat = _lonlat(fac.xy[f])
        county = int(fac.county[f])
        member = fac.kind[f] in (VILLAGE, TOWNSHIP, COUNTY, OTHER) and county >= 0
        return routing.Candidate(
            facility_id=uuid.UUID(int=f + 1),
            name=fac.names[f],
            level=ROUTER_LEVEL[int(fac.kind[f])],
            lon=lon,
            lat=lat,
            services=frozenset({"specialist_care"}),
            consortium_ids=frozenset({consortium[county]}) if member else frozenset(),
        )

    cache: dict[int, routing.Candidate] = {}
    dest = np.full((combos.shape[0], 6), -1, dtype=np.int32)
    for i, row in enumerate(combos):
        for kind in (VILLAGE, TOWNSHIP, COUNTY, OTHER, CITY):
            # A village clinic sends from where its township's centre stands (a few km off; the level decides).
            origin = int(row[TOWNSHIP] if kind == VILLAGE else row[kind])
            level = ROUTER_LEVEL[kind]
            options = [
                int(f)
                for k, f in enumerate(row)
                if f >= 0
                and fac.open[f]
                and routing.LEVEL_RANK[ROUTER_LEVEL[k]] > routing.LEVEL_RANK[level]
                and not (k == OTHER and kind == TOWNSHIP)  # TCM/maternal hospitals take their own, not referrals
            ]
            if not options:
                continue
            lon, lat = _lonlat(fac.xy[origin])
            own = int(fac.county[origin])
            req = routing.RoutingRequest(
                from_level=level,
                lon=lon,
                lat=lat,
                service="specialist_care",
                consortium_ids=frozenset({consortium[own]}) if own >= 0 else frozenset(),
                outside_reason="needs a level the county medical community does not have",
            )
            ranked = routing.rank(req, [cache.setdefault(f, candidate(f)) for f in options])
            dest[i, kind] = ranked[0].candidate.facility_id.int - 1 if ranked else int(row[UP_NEXT[kind]])
    return village_combo.astype(np.int32).ravel(), dest


def compile_decisions(region: Region, fac: Facilities, geo: Geometry, params: dict[str, Any]) -> Decisions:
    beyond, shares, met = compile_criteria(params)
    combo, dest = compile_routes(region, fac, geo)
    return Decisions(
        refers_beyond=beyond, chronic_up=shares, chronic_criteria=met, village_combo=combo, up_destination=dest
    )
