"""Synthetic population and geography of a region, from the 2020 census by county, age band and sex.

The census and the township list are the registry's package data (yilian/network/data/regions/); villages are generated
per township (about 900 residents each) because no national village list exists. Positions are approximate: county seats
from the published centroids when the registry ships them, townships and villages laid out deterministically around them.
Everything here is a pure function of (county codes, scale, seed): the same inputs give the same region.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from yilian.errors import Invalid, NotFound, Unavailable

# Census age bands (lower bound in years) in the column order of census_county_2020.csv.
BAND_LOWER = (0, 1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85)
BAND_SUFFIX = (
    "0",
    "1_4",
    "5_9",
    "10_14",
    "15_19",
    "20_24",
    "25_29",
    "30_34",
    "35_39",
    "40_44",
    "45_49",
    "50_54",
    "55_59",
    "60_64",
    "65_69",
    "70_74",
    "75_79",
    "80_84",
    "85_plus",
)
N_BANDS = len(BAND_LOWER)
MALE, FEMALE = 0, 1

REGIONS_DIR = Path(__file__).resolve().parent.parent / "network" / "data" / "regions"
RESIDENTS_PER_VILLAGE = 900


def _data_file(name: str) -> Path:
    path = REGIONS_DIR / name
    if not path.exists():
        raise Unavailable(
            f"region data file {name} is missing from the package (expected at {path}); the network registry ships it",
            field="region",
        )
    return path


@lru_cache(maxsize=1)
def census_rows() -> tuple[dict[str, str], ...]:
    """Rows of the 2020 census by county, as shipped in the registry's package data."""
    with _data_file("census_county_2020.csv").open(encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


@lru_cache(maxsize=1)
def township_rows() -> tuple[dict[str, str], ...]:
    with _data_file("townships.csv").open(encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


@lru_cache(maxsize=1)
def centroid_rows() -> dict[str, tuple[float, float]]:
    """County/city/province seats (lon, lat) when the registry ships them; empty otherwise (positions then synthetic)."""
    path = REGIONS_DIR / "centroids.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        return {r["code"]: (float(r["lon"]), float(r["lat"])) for r in csv.DictReader(f) if r["lon"] and r["lat"]}


def counties_of(area: str) -> list[str]:
    """County codes (6 digits) of a city (4 digits) or province (2 digits), or the county itself."""
    rows = census_rows()
    codes = [r["code"] for r in rows]
    if len(area) == 6:
        if area not in codes:
            raise NotFound(f"county {area} is not in the 2020 census", field="region")
        return [area]
    if len(area) not in (2, 4):
        raise Invalid("a region is a 2-digit province, 4-digit city or 6-digit county code", field="region")
    found = [c for c in codes if c.startswith(area) and not c.endswith("00")]
    if not found:
        raise NotFound(f"no census counties under {area}", field="region")
    return found


@dataclass
class Region:
    """Arrays describing residents, villages, townships and counties. Facilities live in model.Facilities."""

    seed: int
    scale: float
    county_codes: list[str]
    county_names: list[str]
    county_population: np.ndarray  # full census population (unscaled), per county
    county_xy: np.ndarray  # (n_counties, 2) km
    city_seat_county: dict[str, int]  # city code -> index of the county hosting its city hospital
    county_city: list[str]
    top_xy: np.ndarray  # (2,) provincial/national centre position, km
    township_codes: list[str]
    township_names: list[str]
    township_county: np.ndarray
    township_xy: np.ndarray
    township_is_street: np.ndarray
    village_township: np.ndarray
    village_county: np.ndarray
    village_xy: np.ndarray
    village_residents: np.ndarray
    resident_village: np.ndarray  # int32
    resident_band: np.ndarray  # int8
    resident_sex: np.ndarray  # int8
    resident_chronic: np.ndarray  # uint8 bit mask, see model.CHRONIC
    resident_insured: np.ndarray  # bool

    @property
    def n_residents(self) -> int:
        return int(self.resident_village.size)

    def county_residents(self) -> np.ndarray:
        return np.bincount(self.village_county[self.resident_village], minlength=len(self.county_codes))


def _stable_uniform(key: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by a name: layouts stay put when other counties are added to a run."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _lonlat_km(lon: float, lat: float) -> tuple[float, float]:
    return lon * 111.32 * math.cos(math.radians(36.0)), lat * 110.57


def band_counts(row: dict[str, str]) -> np.ndarray:
    """(2, N_BANDS) residents by sex and band from one census row."""
    out = np.zeros((2, N_BANDS), dtype=np.float64)
    for b, suffix in enumerate(BAND_SUFFIX):
        out[MALE, b] = float(row[f"m_{suffix}"] or 0)
        out[FEMALE, b] = float(row[f"f_{suffix}"] or 0)
    return out


def build_region(
    county_codes: Sequence[str],
    *,
    scale: float,
    seed: int,
    chronic_prevalence: Iterable[np.ndarray],
    insured_share: float = 0.95,
) -> Region:
    """Residents per county from the census age/sex structure, placed in townships and synthetic villages.

    chronic_prevalence: one (2, N_BANDS) array per chronic condition (bit i of resident_chronic).
    """
    if not 0 < scale <= 2:
        raise Invalid("scale must be in (0, 2]", field="scale")
    census = {r["code"]: r for r in census_rows()}
    missing = [c for c in county_codes if c not in census]
    if missing:
        raise NotFound(f"counties not in the 2020 census: {', '.join(missing)}", field="region")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20201101]))
    towns_by_county: dict[str, list[dict[str, str]]] = {}
    for t in township_rows():
        towns_by_county.setdefault(t["areaCode"], []).append(t)
    centroids = centroid_rows()

    n_c = len(county_codes)
    county_xy = np.zeros((n_c, 2))
    county_city = [c[:4] for c in county_codes]
    city_centre: dict[str, tuple[float, float]] = {}
    for city in sorted(set(county_city)):
        ll = centroids.get(city + "00")
        city_centre[city] = _lonlat_km(*ll) if ll else (0.0, 0.0)
    for i, code in enumerate(county_codes):
        ll = centroids.get(code)
        if ll:
            county_xy[i] = _lonlat_km(*ll)
        else:
            # No published seat: put it on a ring around the city seat, at a distance typical of a county seat.
            ang = 2 * math.pi * _stable_uniform(code, "county-angle")
            r = 25 + 45 * _stable_uniform(code, "county-radius")
            cx, cy = city_centre[county_city[i]]
            county_xy[i] = (cx + r * math.cos(ang), cy + r * math.sin(ang))
    # The city hospital stands in the most urban county of each city (the central district).
    city_seat_county: dict[str, int] = {}
    for i, code in enumerate(county_codes):
        city = county_city[i]
        urban = float(census[code]["urban"] or 0)
        best = city_seat_county.get(city)
        if best is None or urban > float(census[county_codes[best]]["urban"] or 0):
            city_seat_county[city] = i
    province = county_codes[0][:2]
    top_ll = centroids.get(province + "0100")
    if top_ll:
        top_xy = np.array(_lonlat_km(*top_ll))
    else:
        top_xy = county_xy.mean(axis=0) + np.array([0.0, 180.0])

    t_codes: list[str] = []
    t_names: list[str] = []
    t_county: list[int] = []
    t_xy: list[tuple[float, float]] = []
    t_street: list[bool] = []
    t_weight: list[float] = []
    for i, code in enumerate(county_codes):
        towns = sorted(towns_by_county.get(code, []), key=lambda t: t["code"])
        pop = float(census[code]["population"])
        if not towns:
            # Division codes changed since 2020 for a few hundred counties: synthesise townships rather than drop people.
            n = max(1, round(pop / 30000))
            towns = [{"code": f"{code}{k + 1:03d}", "name": f"{census[code]['county']}第{k + 1}乡镇"} for k in range(n)]
        radius = float(np.clip(math.sqrt(pop / (180.0 * math.pi)), 8.0, 40.0))
        cx, cy = county_xy[i]
        for t in towns:
            street = t["name"].endswith("街道")
            u = _stable_uniform(t["code"], "town-radius")
            r = (0.5 + 2.5 * u) if street else radius * (0.25 + 0.75 * math.sqrt(u))
            ang = 2 * math.pi * _stable_uniform(t["code"], "town-angle")
            t_codes.append(t["code"])
            t_names.append(t["name"])
            t_county.append(i)
            t_xy.append((cx + r * math.cos(ang), cy + r * math.sin(ang)))
            t_street.append(street)
            base = 2.0 if street else (1.2 if t["name"].endswith("镇") else 0.6)
            t_weight.append(base * math.exp(0.35 * (2 * _stable_uniform(t["code"], "town-size") - 1)))
    township_county = np.array(t_county, dtype=np.int32)
    township_xy = np.array(t_xy, dtype=np.float64)
    weights = np.array(t_weight)

    v_town: list[np.ndarray] = []
    v_counts: list[np.ndarray] = []
    res_village: list[np.ndarray] = []
    res_band: list[np.ndarray] = []
    res_sex: list[np.ndarray] = []
    village_offset = 0
    for i, code in enumerate(county_codes):
        towns_idx = np.flatnonzero(township_county == i)
        w = weights[towns_idx] / weights[towns_idx].sum()
        full_pop = float(census[code]["population"])
        town_full = w * full_pop
        n_villages = np.maximum(1, np.round(town_full / RESIDENTS_PER_VILLAGE)).astype(np.int64)
        village_town = np.repeat(towns_idx, n_villages)
        v_town.append(village_town)
        # Residents of this county, scaled, drawn from its census age/sex structure.
        counts = band_counts(census[code])
        n_res = round(full_pop * scale)
        cells = rng.multinomial(n_res, (counts / counts.sum()).ravel())
        sex = np.repeat(np.repeat([MALE, FEMALE], N_BANDS), cells).astype(np.int8)
        band = np.repeat(np.tile(np.arange(N_BANDS), 2), cells).astype(np.int8)
        # Each resident lives in a village; villages share their township's population equally (with noise).
        village_w = np.repeat(w / n_villages, n_villages) * rng.uniform(0.7, 1.3, village_town.size)
        village_w /= village_w.sum()
        vill = rng.choice(village_town.size, size=n_res, p=village_w).astype(np.int32) + village_offset
        res_village.append(vill)
        res_band.append(band)
        res_sex.append(sex)
        v_counts.append(n_villages)
        village_offset += village_town.size

    village_township = np.concatenate(v_town).astype(np.int32)
    village_county = township_county[village_township]
    # Villages sit within a few kilometres of their township seat (closer in town streets).
    is_street = np.array(t_street)
    vr = np.where(
        is_street[village_township],
        rng.uniform(0.2, 1.5, village_township.size),
        rng.uniform(0.8, 5.0, village_township.size),
    )
    va = rng.uniform(0, 2 * math.pi, village_township.size)
    village_xy = township_xy[village_township] + np.c_[vr * np.cos(va), vr * np.sin(va)]

    resident_village = np.concatenate(res_village)
    resident_band = np.concatenate(res_band)
    resident_sex = np.concatenate(res_sex)
    # Shuffle so that residents are not ordered by age: sampling by cumulative weights then touches memory evenly.
    order = rng.permutation(resident_village.size)
    resident_village, resident_band, resident_sex = resident_village[order], resident_band[order], resident_sex[order]
    chronic = np.zeros(resident_village.size, dtype=np.uint8)
    for bit, prev in enumerate(chronic_prevalence):
        p = prev[resident_sex, resident_band]
        chronic |= (rng.random(resident_village.size) < p).astype(np.uint8) << bit
    return Region(
        seed=seed,
        scale=scale,
        county_codes=list(county_codes),
        county_names=[census[c]["county"] for c in county_codes],
        county_population=np.array([float(census[c]["population"]) for c in county_codes]),
        county_xy=county_xy,
        city_seat_county=city_seat_county,
        county_city=county_city,
        top_xy=top_xy,
        township_codes=t_codes,
        township_names=t_names,
        township_county=township_county,
        township_xy=township_xy,
        township_is_street=is_street,
        village_township=village_township,
        village_county=village_county,
        village_xy=village_xy,
        village_residents=np.bincount(resident_village, minlength=village_township.size),
        resident_village=resident_village,
        resident_band=resident_band,
        resident_sex=resident_sex,
        resident_chronic=chronic,
        resident_insured=rng.random(resident_village.size) < insured_share,
    )
