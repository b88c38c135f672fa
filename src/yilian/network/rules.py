"""Pure decisions of the registry: levels and their order, consortium and grid checks, bed allocation, placement.

No database, no clock, no files: services gather the facts and ask.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TypeVar

from yilian.errors import Invalid

K = TypeVar("K")


class DivisionLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"


class Level(StrEnum):
    """The five levels of the tiered network, top to bottom."""

    NATIONAL_REGIONAL_CENTRE = "national_regional_centre"
    TERTIARY = "tertiary"
    COUNTY_HOSPITAL = "county_hospital"
    TOWNSHIP_CENTRE = "township_centre"
    VILLAGE_CLINIC = "village_clinic"


class Kind(StrEnum):
    GENERAL = "general"
    TCM = "tcm"
    MATERNAL_CHILD = "maternal_child"
    SPECIALIST = "specialist"


class Ownership(StrEnum):
    PUBLIC = "public"
    COLLECTIVE = "collective"
    PRIVATE = "private"


class ConsortiumForm(StrEnum):
    URBAN_MEDICAL_GROUP = "urban_medical_group"
    COUNTY_MEDICAL_COMMUNITY = "county_medical_community"
    SPECIALIST_ALLIANCE = "specialist_alliance"
    TELEMEDICINE_NETWORK = "telemedicine_network"


class Membership(StrEnum):
    TIGHT = "tight"
    LOOSE = "loose"


class MemberRole(StrEnum):
    LEAD = "lead"
    MEMBER = "member"
    IMAGING_PARTNER = "imaging_partner"
    ECG_PARTNER = "ecg_partner"
    PATHOLOGY_PARTNER = "pathology_partner"
    LAB_PARTNER = "lab_partner"


class Title(StrEnum):
    RESIDENT = "resident"
    ATTENDING = "attending"
    ASSOCIATE_CHIEF = "associate_chief"
    CHIEF = "chief"
    VILLAGE_DOCTOR = "village_doctor"  # 乡村医生: licensed for village practice, no hospital title


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class PostingKind(StrEnum):
    HOME = "home"
    POSTING = "posting"  # a role at another facility: expert outreach, resident expert, honorary chief


# Capability flags, in the order pages show them. Each is a boolean column on Facility.
CAPABILITIES: tuple[str, ...] = (
    "fourth_level_surgery",
    "chest_pain_centre",
    "stroke_centre",
    "trauma_centre",
    "critical_maternal_centre",
    "critical_neonatal_centre",
    "imaging_reading_centre",
    "ecg_reading_centre",
    "lab_centre",
    "pathology_centre",
    "sterile_supply",
)
GREEN_CHANNELS: tuple[str, ...] = CAPABILITIES[1:6]

LEVEL_ORDER: tuple[Level, ...] = (
    Level.VILLAGE_CLINIC,
    Level.TOWNSHIP_CENTRE,
    Level.COUNTY_HOSPITAL,
    Level.TERTIARY,
    Level.NATIONAL_REGIONAL_CENTRE,
)

# National calibration (DOMAIN.md): 7.23 hospital beds per 1,000 residents.
BEDS_PER_1000 = 7.23


def level_rank(level: str) -> int:
    """0 for a village clinic up to 4 for a national regional medical centre."""
    return LEVEL_ORDER.index(Level(level))


def next_level_up(level: str) -> Level | None:
    """Where an up-referral goes next: village → township → county → tertiary → national centre → none."""
    rank = level_rank(level)
    return LEVEL_ORDER[rank + 1] if rank + 1 < len(LEVEL_ORDER) else None


def next_level_down(level: str) -> Level | None:
    rank = level_rank(level)
    return LEVEL_ORDER[rank - 1] if rank > 0 else None


def is_above(level: str, other: str) -> bool:
    return level_rank(level) > level_rank(other)


def division_level(code: str) -> DivisionLevel:
    """GB/T 2260 codes by length: 2 province, 4 city, 6 county, 9 township."""
    try:
        return {
            2: DivisionLevel.PROVINCE,
            4: DivisionLevel.CITY,
            6: DivisionLevel.COUNTY,
            9: DivisionLevel.TOWNSHIP,
        }[len(code)]
    except KeyError:
        raise Invalid(
            f"division code {code!r}: expected 2 (province), 4 (city), 6 (county) or 9 (township) digits",
            field="division_code",
        ) from None


def parent_code(code: str) -> str | None:
    return {2: None, 4: code[:2], 6: code[:4], 9: code[:6]}.get(len(code))


def normalise_division_code(code: str) -> str:
    """Accept the padded 6-digit forms (140000 Shanxi, 141000 Linfen) as well as the short ones (14, 1410)."""
    code = code.strip()
    if not code.isdigit():
        raise Invalid(f"division code {code!r} must be digits", field="division_code")
    if len(code) == 6 and code.endswith("0000"):
        return code[:2]
    if len(code) == 6 and code.endswith("00"):
        return code[:4]
    if len(code) == 12 and code.endswith("000"):  # 12-digit statistical code of a township
        return code[:9]
    return code


def is_street(township_name: str) -> bool:
    """街道 (an urban street) has a community health centre; 镇/乡 a township health centre."""
    return township_name.endswith("街道") or township_name.endswith("办事处")


def require_lead_is_member(lead_facility_id: object, member_facility_ids: Iterable[object]) -> None:
    if lead_facility_id not in set(member_facility_ids):
        raise Invalid("the lead facility of a consortium must be one of its members", field="lead_facility_id")


def outside_county(county_code: str, members: Mapping[K, str]) -> list[K]:
    """Members of a county medical community whose division is not in its county (facility id → division code)."""
    return [fid for fid, code in members.items() if not code.startswith(county_code)]


def grid_overlaps(grids: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Townships claimed by more than one grid: township code → the grids claiming it (sorted)."""
    seen: dict[str, list[str]] = {}
    for grid, codes in grids.items():
        for code in set(codes):
            seen.setdefault(code, []).append(grid)
    return {code: sorted(names) for code, names in seen.items() if len(names) > 1}


def grid_gaps(all_townships: Iterable[str], grids: Mapping[str, Iterable[str]]) -> list[str]:
    """Townships of the area that no grid covers, sorted."""
    covered = {code for codes in grids.values() for code in codes}
    return sorted(set(all_townships) - covered)


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split an integer total in proportion to weights so that the parts sum exactly to total (largest remainder)."""
    if total < 0:
        raise ValueError("total must be >= 0")
    if not weights:
        return []
    wsum = float(sum(weights))
    if wsum <= 0:
        weights = [1.0] * len(weights)
        wsum = float(len(weights))
    exact = [total * w / wsum for w in weights]
    parts = [math.floor(x) for x in exact]
    short = total - sum(parts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def beds_target(population: int, per_1000: float = BEDS_PER_1000) -> int:
    return round(population * per_1000 / 1000)


def beds_per_1000(beds: int, population: int) -> float:
    return 0.0 if population <= 0 else beds * 1000 / population


def place_around(lon: float, lat: float, index: int, count: int, radius_deg: float) -> tuple[float, float]:
    """A deterministic position for the index-th of count points around a centre (sunflower / golden-angle spiral).

    Used for townships (no coordinates in the data) around their county seat and villages around their township.
    The spiral spreads points evenly over a disc, so a scatter map shows a plausible cloud rather than a line.
    """
    golden = math.pi * (3 - math.sqrt(5))
    r = radius_deg * math.sqrt((index + 0.5) / max(count, 1))
    theta = index * golden
    # A degree of longitude shrinks with latitude; keep the cloud round on the map.
    return (
        round(lon + r * math.cos(theta) / max(math.cos(math.radians(lat)), 0.2), 6),
        round(lat + r * math.sin(theta), 6),
    )
