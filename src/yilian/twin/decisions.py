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
  is the consortium; outside it only with a reason, as the router requires);
- `down_meets[chronic_mask, acute]`: the share of inpatients with those chronic conditions (bit mask over CHRONIC)
  and that acute event (index into ACUTE, or len(ACUTE) for none) who meet a down-referral criterion ("stable") at
  discharge, from the discharge presentations in parameters.yaml (`referral.stable_presentations`). Deleting
  `htn-down-controlled` from the criteria stops down-referrals that only it allowed.

Green channels are the referrals domain's too: each acute event's channel (mi → chest_pain, stroke → stroke, trauma →
trauma, obstetric → critical_maternal) takes its whole-chain limit and door-to-treatment target from the domain's
`service.sla_config()` (sla.yaml), and `green_destination[combo, event]` is where `routing.rank` sends the patient
from the county hospital the ambulance brings them to: the hospital itself when it is a centre of that channel, else
the centre the router ranks first (emergency, green channel, any consortium). Upgrading a county hospital to a
chest-pain centre therefore keeps its MI patients, as it would change the real router's choice.

The receiver of a down-referral follows the referrals domain's `service.down_refer`: the facility that referred the
patient up (its family-doctor team; a village clinic's patients go to its township centre). The domain does not rank
down-referral receivers, so neither does the twin; a patient who came without a referral goes down the ladder (city
or provincial → the county hospital of their county, county hospital → their township centre), as the sender names
the facility in the domain.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from yilian.referrals import catalogue, registry, routing, service
from yilian.referrals import rules as referral_rules
from yilian.twin.model import (
    ACUTE,
    CHRONIC,
    CITY,
    COUNTY,
    GREEN,
    OTHER,
    TOP,
    TOWNSHIP,
    VILLAGE,
    Facilities,
    Geometry,
)
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
# The twin's green-channel treatments as the referrals domain's channels (registry.CENTRE_COLUMNS: chest_pain_centre …).
CHANNEL_OF_GREEN = {"pci": "chest_pain", "thrombolysis": "stroke", "trauma": "trauma", "obstetric": "critical_maternal"}
assert set(CHANNEL_OF_GREEN) == set(GREEN) and set(CHANNEL_OF_GREEN.values()) <= set(registry.CENTRE_COLUMNS)
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
    # (2 ** len(CHRONIC), len(ACUTE) + 1) share of inpatients meeting a down criterion at discharge
    down_meets: np.ndarray | None = None
    down_criteria: dict[str, list[str]] | None = None  # case (condition or acute event) -> ids of down criteria met
    green_destination: np.ndarray | None = None  # (n_combos, len(ACUTE)) facility treating the event
    green_chain_minutes: np.ndarray | None = None  # (len(ACUTE),) whole-chain limit of the event's channel
    green_door_minutes: np.ndarray | None = None  # (len(ACUTE),) door-to-treatment target of the event's channel


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


Criteria = tuple[referral_rules.Criterion, ...]


def compile_criteria(
    params: dict[str, Any], criteria: Criteria | None = None
) -> tuple[bool, np.ndarray, dict[str, list[str]]]:
    """Ask the referral criteria about every kind of case the twin produces; return the answers as arrays."""
    criteria = catalogue.load_criteria() if criteria is None else criteria
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


DOWN_CASES = (*CHRONIC, *ACUTE)  # the kinds of case a discharged inpatient can be, as parameters.yaml names them


def compile_down_criteria(
    params: dict[str, Any], criteria: Criteria | None = None
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Ask the referral criteria's down-referral ("stable") tests about every kind of discharged inpatient.

    Returns `down_meets[chronic_mask, acute]`: the share of such inpatients meeting a down criterion, taking each of
    their conditions as an independent chance (1 − Π(1 − share)); and the criteria met per kind of case.
    """
    criteria = catalogue.load_criteria() if criteria is None else criteria
    presentations = params["referral"].get("stable_presentations") or {}
    unknown = set(presentations) - set(DOWN_CASES)
    if unknown:
        raise ValueError(f"referral.stable_presentations: unknown case {sorted(unknown)[0]!r}")
    share = np.zeros(len(DOWN_CASES))
    met: dict[str, list[str]] = {}
    for k, case in enumerate(DOWN_CASES):
        for p in presentations.get(case, []):
            matches = referral_rules.matching_criteria(_facts(p), criteria, direction="down")
            if matches:
                share[k] += float(p["share"])
                met.setdefault(case, []).extend(m.criterion.id for m in matches)
    share = np.clip(share, 0.0, 1.0)
    n_ch = len(CHRONIC)
    stay = np.ones((2**n_ch, len(ACUTE) + 1))
    for mask in range(2**n_ch):
        for bit in range(n_ch):
            if (mask >> bit) & 1:
                stay[mask, :] *= 1.0 - share[bit]
        for a in range(len(ACUTE)):
            stay[mask, a] *= 1.0 - share[n_ch + a]
    return 1.0 - stay, met


def _lonlat(xy: np.ndarray) -> tuple[float, float]:
    return float(xy[0]) / _KM_PER_DEG_LON, float(xy[1]) / _KM_PER_DEG_LAT


def green_channels(params: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each acute event's channel and its targets (whole chain, door-to-treatment) from the referrals domain's SLA."""
    terms = service.sla_config()["green_channels"]
    channels = [CHANNEL_OF_GREEN[str(params["acute"][k]["needs"])] for k in ACUTE]
    chain = np.array([float(terms[ch]["chain"]) for ch in channels])
    door = np.array([float(terms[ch]["door_to_treatment"]) for ch in channels])
    return channels, chain, door


def centres(fac: Facilities, f: int) -> frozenset[str]:
    """The green-channel centres facility f is, in the referrals domain's names."""
    return frozenset(CHANNEL_OF_GREEN[g] for j, g in enumerate(GREEN) if fac.green[f, j])


def compile_routes(
    region: Region, fac: Facilities, geo: Geometry, channels: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the referrals router sends an up-referral from each kind of facility a village uses, and each acute
    event from the county hospital the ambulance brings it to (`channels`: the event's green channel)."""
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
            centres=centres(fac, f),
            consortium_ids=frozenset({consortium[county]}) if member else frozenset(),
        )

    cache: dict[int, routing.Candidate] = {}
    dest = np.full((combos.shape[0], 6), -1, dtype=np.int32)
    channels = channels or []
    green = np.full((combos.shape[0], len(channels)), -1, dtype=np.int32)
    for i, row in enumerate(combos):
        first = int(row[COUNTY])
        lon, lat = _lonlat(fac.xy[first])
        own = int(fac.county[first])
        above = [
            int(f)
            for k, f in enumerate(row)
            if f >= 0 and fac.open[f] and routing.LEVEL_RANK[ROUTER_LEVEL[k]] > routing.LEVEL_RANK["county_hospital"]
        ]
        for a, channel in enumerate(channels):
            if channel in centres(fac, first):
                green[i, a] = first  # a centre treats its own patients: nothing to route
                continue
            req = routing.RoutingRequest(
                from_level="county_hospital",
                lon=lon,
                lat=lat,
                service=None,
                urgency="emergency",
                green_channel=channel,
                consortium_ids=frozenset({consortium[own]}) if own >= 0 else frozenset(),
                outside_reason="green channel",  # as the referral service: the nearest capable centre, any consortium
            )
            ranked = routing.rank(req, [cache.setdefault(f, candidate(f)) for f in above])
            green[i, a] = ranked[0].candidate.facility_id.int - 1 if ranked else int(row[TOP])
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
    return village_combo.astype(np.int32).ravel(), dest, green


def compile_decisions(
    region: Region, fac: Facilities, geo: Geometry, params: dict[str, Any], criteria: Criteria | None = None
) -> Decisions:
    """All referral decisions of a run; `criteria` replaces the referrals domain's shipped criteria (tests, what-ifs)."""
    beyond, shares, met = compile_criteria(params, criteria)
    down_meets, down_met = compile_down_criteria(params, criteria)
    channels, chain, door = green_channels(params)
    combo, dest, green = compile_routes(region, fac, geo, channels)
    return Decisions(
        refers_beyond=beyond,
        chronic_up=shares,
        chronic_criteria=met,
        village_combo=combo,
        up_destination=dest,
        down_meets=down_meets,
        down_criteria=down_met,
        green_destination=green,
        green_chain_minutes=chain,
        green_door_minutes=door,
    )
