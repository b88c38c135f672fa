"""Parameters, facilities and the travel geometry the engine runs on.

Facilities come from a synthetic set per county (one county hospital, one 'other county hospitals' aggregate for TCM,
maternal-and-child and private hospitals, a township centre per township, a clinic per village) plus a city hospital per
city and a provincial/national top hospital outside the region. `facilities_from_registry` is the adapter for the real
registry of the network domain; both return the same `Facilities` arrays.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from yilian.errors import Invalid, Unavailable
from yilian.twin.population import BAND_LOWER, N_BANDS, Region, counties_of

KINDS = ("village_clinic", "township_centre", "county_hospital", "county_other", "city_hospital", "top_hospital")
VILLAGE, TOWNSHIP, COUNTY, OTHER, CITY, TOP = range(6)
PRIMARY = (VILLAGE, TOWNSHIP)
CHRONIC = ("hypertension", "diabetes", "copd", "chd")
ACUTE = ("mi", "stroke", "trauma", "obstetric")
GREEN = ("pci", "thrombolysis", "trauma", "obstetric")
PARAMETERS_FILE = Path(__file__).with_name("parameters.yaml")


def default_parameters() -> dict[str, Any]:
    with PARAMETERS_FILE.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def set_parameter(params: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path that must already exist: a typo in a scenario is an error, not a silently ignored knob."""
    node: Any = params
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(node, dict) or k not in node:
            raise Invalid(f"unknown parameter {path!r} (no {k!r})", field=path)
        node = node[k]
    if not isinstance(node, dict) or keys[-1] not in node:
        raise Invalid(f"unknown parameter {path!r}", field=path)
    old = node[keys[-1]]
    if isinstance(old, int | float) and not isinstance(value, int | float):
        raise Invalid(f"parameter {path!r} takes a number", field=path)
    node[keys[-1]] = value


def merge_parameters(base: dict[str, Any], overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Deep-merge scenario overrides into the parameters; every key must already exist."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in out:
            raise Invalid(f"unknown parameter {path!r}", field=path)
        if isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = merge_parameters(out[key], value, prefix=f"{path}.")
        else:
            out[key] = value
    return out


def by_age(spec: dict[str, Any]) -> np.ndarray:
    """(2, N_BANDS) array from an {ages, male, female} table."""
    ages = list(spec["ages"])
    out = np.zeros((2, N_BANDS))
    for b, lower in enumerate(BAND_LOWER):
        i = max(k for k, a in enumerate(ages) if a <= lower)
        out[0, b] = spec["male"][i]
        out[1, b] = spec["female"][i]
    return out


def chronic_prevalence(params: dict[str, Any]) -> list[np.ndarray]:
    return [by_age(params["chronic"][c]) for c in CHRONIC]


@dataclass
class Facilities:
    kind: np.ndarray  # int8 index into KINDS
    county: np.ndarray  # int32 index into region.county_codes, -1 outside the region
    township: np.ndarray  # int32, -1 for hospitals
    xy: np.ndarray  # (n, 2) km
    capability: np.ndarray
    reputation: np.ndarray
    outpatient_capacity: np.ndarray  # visits a weekday
    beds: np.ndarray
    open: np.ndarray  # bool
    green: np.ndarray  # (n, len(GREEN)) bool
    names: list[str]
    expert_quota: np.ndarray = field(default_factory=lambda: np.zeros(0))  # extra visits a day from resident experts
    monthly_clinic_quota: np.ndarray = field(default_factory=lambda: np.zeros(0))  # extra visits on clinic days
    monthly_clinic_gain: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ct_days: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))  # (n, 31): truck on day-of-month

    def __post_init__(self) -> None:
        n = self.kind.size
        if self.expert_quota.size != n:
            self.expert_quota = np.zeros(n)
        if self.monthly_clinic_quota.size != n:
            self.monthly_clinic_quota = np.zeros(n)
        if self.monthly_clinic_gain.size != n:
            self.monthly_clinic_gain = np.zeros(n)
        if self.ct_days.shape[0] != n:
            self.ct_days = np.zeros((n, 31), dtype=bool)

    @property
    def size(self) -> int:
        return int(self.kind.size)

    def append(
        self,
        *,
        kind: int,
        county: int,
        township: int,
        xy: tuple[float, float],
        params: dict[str, Any],
        served: float,
        name: str,
    ) -> int:
        spec = params["facilities"][KINDS[kind]]
        self.kind = np.append(self.kind, np.int8(kind))
        self.county = np.append(self.county, np.int32(county))
        self.township = np.append(self.township, np.int32(township))
        self.xy = np.vstack([self.xy, np.array(xy)[None, :]])
        self.capability = np.append(self.capability, spec["capability"])
        self.reputation = np.append(self.reputation, spec["reputation"])
        self.outpatient_capacity = np.append(
            self.outpatient_capacity, served * spec["outpatient_per_1000_per_day"] / 1000
        )
        self.beds = np.append(self.beds, np.ceil(served * spec["beds_per_1000"] / 1000))
        self.open = np.append(self.open, True)
        self.green = np.vstack([self.green, np.array([g in spec["green"] for g in GREEN])[None, :]])
        self.expert_quota = np.append(self.expert_quota, 0.0)
        self.monthly_clinic_quota = np.append(self.monthly_clinic_quota, 0.0)
        self.monthly_clinic_gain = np.append(self.monthly_clinic_gain, 0.0)
        self.ct_days = np.vstack([self.ct_days, np.zeros((1, 31), dtype=bool)])
        self.names.append(name)
        return self.size - 1


def synthetic_facilities(region: Region, params: dict[str, Any]) -> Facilities:
    """Village clinics, township centres, two county-level hospitals per county, a city hospital per city, a top hospital."""
    n_v = region.village_township.size
    n_t = len(region.township_codes)
    n_c = len(region.county_codes)
    residents_v = region.village_residents.astype(float)
    residents_t = np.bincount(region.village_township, weights=residents_v, minlength=n_t)
    residents_c = np.bincount(region.village_county, weights=residents_v, minlength=n_c)
    cities = sorted(set(region.county_city))
    full_city = {c: set(counties_of(c)) <= set(region.county_codes) for c in cities}
    city_res = {c: float(residents_c[[i for i, cc in enumerate(region.county_city) if cc == c]].sum()) for c in cities}

    kinds: list[int] = []
    county: list[int] = []
    township: list[int] = []
    xy: list[np.ndarray] = []
    served: list[float] = []
    names: list[str] = []
    for v in range(n_v):
        kinds.append(VILLAGE)
        county.append(int(region.village_county[v]))
        township.append(int(region.village_township[v]))
        xy.append(region.village_xy[v])
        served.append(residents_v[v])
        names.append(f"{region.township_names[region.village_township[v]]}村卫生室{v}")
    for t in range(n_t):
        kinds.append(TOWNSHIP)
        county.append(int(region.township_county[t]))
        township.append(t)
        xy.append(region.township_xy[t])
        served.append(residents_t[t])
        suffix = "社区卫生服务中心" if region.township_is_street[t] else "卫生院"
        names.append(region.township_names[t] + suffix)
    for c in range(n_c):
        for kind, label in ((COUNTY, "人民医院"), (OTHER, "中医院等县级医院")):
            kinds.append(kind)
            county.append(c)
            township.append(-1)
            xy.append(region.county_xy[c])
            served.append(residents_c[c])
            names.append(region.county_names[c] + label)
    for city in cities:
        seat = region.city_seat_county[city]
        kinds.append(CITY)
        # The city hospital counts as 'in county' only for residents of the district that hosts it, and only when the run
        # covers the whole city (otherwise the host district is not known to be simulated).
        county.append(seat if full_city[city] else -1)
        township.append(-1)
        xy.append(region.county_xy[seat] if full_city[city] else region.county_xy.mean(axis=0) + np.array([45.0, 45.0]))
        served.append(city_res[city])
        names.append(f"{city} 市级三级医院")
    kinds.append(TOP)
    county.append(-1)
    township.append(-1)
    xy.append(region.top_xy)
    served.append(float(residents_c.sum()))
    names.append("省级/国家区域医疗中心")

    kind_arr = np.array(kinds, dtype=np.int8)
    spec = [params["facilities"][k] for k in KINDS]
    served_arr = np.array(served)
    per1000_op = np.array([s["outpatient_per_1000_per_day"] for s in spec])[kind_arr]
    per1000_beds = np.array([s["beds_per_1000"] for s in spec])[kind_arr]
    green = np.array([[g in s["green"] for g in GREEN] for s in spec])[kind_arr]
    return Facilities(
        kind=kind_arr,
        county=np.array(county, dtype=np.int32),
        township=np.array(township, dtype=np.int32),
        xy=np.array(xy, dtype=np.float64),
        capability=np.array([s["capability"] for s in spec])[kind_arr].astype(float),
        reputation=np.array([s["reputation"] for s in spec])[kind_arr].astype(float),
        outpatient_capacity=served_arr * per1000_op / 1000,
        beds=np.ceil(served_arr * per1000_beds / 1000),
        open=np.ones(kind_arr.size, dtype=bool),
        green=green,
        names=names,
    )


def facilities_from_registry(session: Any, region: Region, params: dict[str, Any]) -> Facilities:
    """Facilities of the simulated counties from the network registry (yilian.network.service.list_facilities).

    The registry gives real names, beds and green-channel centres; what it does not know (capability, reputation,
    clinic capacity) comes from the parameters of the facility's kind. Township centres are matched by township code,
    the general county hospital becomes the county hospital, other county-level hospitals (TCM, maternal-and-child)
    add their beds to the 'other county hospitals' aggregate, and a tertiary hospital of the city becomes its city
    hospital. Registry beds are scaled like the population.
    """
    try:
        network = importlib.import_module("yilian.network.service")
        list_facilities = network.list_facilities
    except (ImportError, AttributeError) as exc:
        raise Unavailable("the network registry is not available; run with synthetic facilities") from exc
    fac = synthetic_facilities(region, params)
    town_index = {code: i for i, code in enumerate(region.township_codes)}
    # The registry's centre columns as the referrals domain names them (chest_pain_centre …); imported here, not at
    # the top, because decisions.py imports this module.
    from yilian.referrals.registry import CENTRE_COLUMNS
    from yilian.twin.decisions import CHANNEL_OF_GREEN

    green_of = {CENTRE_COLUMNS[channel]: g for g, channel in CHANNEL_OF_GREEN.items()}
    other_beds: dict[int, float] = {}
    city_named = False  # the first general tertiary hospital of the city stands for its city hospitals
    prefixes = sorted({c for c in region.county_codes} | set(region.county_city))
    for prefix in prefixes:
        offset = 0
        while True:
            page = list_facilities(session, division_prefix=prefix, offset=offset, limit=500)
            for f in page.items:
                division = str(f.division_code)
                county = region.county_codes.index(division[:6]) if division[:6] in region.county_codes else -1
                if len(prefix) == 4 and f.level != "tertiary":
                    continue  # the city pass only looks for the city hospital
                if f.level == "township_centre" and division[:9] in town_index:
                    idx = np.flatnonzero((fac.kind == TOWNSHIP) & (fac.township == town_index[division[:9]]))
                elif f.level == "county_hospital" and county >= 0 and f.kind == "general":
                    idx = np.flatnonzero((fac.kind == COUNTY) & (fac.county == county))
                elif f.level == "county_hospital" and county >= 0:
                    other_beds[county] = other_beds.get(county, 0.0) + float(f.beds or 0)
                    continue
                elif f.level == "tertiary" and f.kind == "general" and not city_named:
                    idx = np.flatnonzero(fac.kind == CITY)
                    city_named = True
                else:
                    continue
                if idx.size == 0:
                    continue
                i = int(idx[0])
                fac.names[i] = str(f.name)
                if f.beds:
                    fac.beds[i] = max(1.0, round(float(f.beds) * region.scale))
                for cap in f.capabilities:
                    if cap in green_of:
                        fac.green[i, GREEN.index(green_of[cap])] = True
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
    for county, beds in other_beds.items():
        idx = np.flatnonzero((fac.kind == OTHER) & (fac.county == county))
        fac.beds[idx] = max(1.0, round(beds * region.scale))
    return fac


@dataclass
class Geometry:
    """For every village: the facility a resident would use at each of the six kinds, and the travel minutes to it."""

    slot_facility: np.ndarray  # (n_villages, 6) int32
    slot_minutes: np.ndarray  # (n_villages, 6) float32
    ambulance_minutes: np.ndarray  # (n_villages, 6) float32: village to each slot by ambulance
    transfer_minutes: np.ndarray  # (n_facilities, n_facilities) only for hospitals, filled lazily by engine


def travel_minutes(kind: int, dist_km: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    t = params["travel"]
    name = KINDS[kind]
    return t["access_minutes"][name] + 60.0 * dist_km * t["detour"] / t["kmh"][name]


def geometry(region: Region, fac: Facilities, params: dict[str, Any]) -> Geometry:
    n_v = region.village_township.size
    slot = np.full((n_v, 6), -1, dtype=np.int32)
    slot[:, VILLAGE] = np.flatnonzero(fac.kind == VILLAGE)[:n_v]
    vxy = region.village_xy
    # Township centre: the village's own if open, else the nearest open one of the same county (closures move people).
    towns = np.flatnonzero((fac.kind == TOWNSHIP) & fac.open)
    for c in range(len(region.county_codes)):
        rows = np.flatnonzero(region.village_county == c)
        cands = towns[fac.county[towns] == c]
        if cands.size == 0:
            cands = towns
        d = np.linalg.norm(vxy[rows, None, :] - fac.xy[None, cands, :], axis=2)
        own = fac.township[cands][None, :] == region.village_township[rows][:, None]
        d = np.where(own, -1.0, d)  # the own township's centre wins when open, whatever the geometry says
        slot[rows, TOWNSHIP] = cands[np.argmin(d, axis=1)]
        for kind in (COUNTY, OTHER):
            hosp = np.flatnonzero((fac.kind == kind) & fac.open & (fac.county == c))
            if hosp.size == 0:
                hosp = np.flatnonzero((fac.kind == kind) & fac.open)
            dh = np.linalg.norm(vxy[rows, None, :] - fac.xy[None, hosp, :], axis=2)
            slot[rows, kind] = hosp[np.argmin(dh, axis=1)]
    cities = np.flatnonzero((fac.kind == CITY) & fac.open)
    d = np.linalg.norm(vxy[:, None, :] - fac.xy[None, cities, :], axis=2)
    slot[:, CITY] = cities[np.argmin(d, axis=1)]
    tops = np.flatnonzero((fac.kind == TOP) & fac.open)
    d = np.linalg.norm(vxy[:, None, :] - fac.xy[None, tops, :], axis=2)
    slot[:, TOP] = tops[np.argmin(d, axis=1)]

    minutes = np.zeros((n_v, 6), dtype=np.float32)
    ambulance = np.zeros((n_v, 6), dtype=np.float32)
    t = params["travel"]
    for k in range(6):
        dist = np.linalg.norm(vxy - fac.xy[slot[:, k]], axis=1)
        if k == VILLAGE:
            dist = np.zeros(n_v)
        minutes[:, k] = travel_minutes(k, dist, params)
        ambulance[:, k] = 15.0 + 60.0 * dist * t["detour"] / t["ambulance_kmh"]
    return Geometry(
        slot_facility=slot, slot_minutes=minutes, ambulance_minutes=ambulance, transfer_minutes=np.zeros((0, 0))
    )


def hospital_transfer_minutes(fac: Facilities, a: np.ndarray, b: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    t = params["travel"]
    dist = np.linalg.norm(fac.xy[a] - fac.xy[b], axis=1)
    return 60.0 * dist * t["detour"] / t["ambulance_kmh"]
