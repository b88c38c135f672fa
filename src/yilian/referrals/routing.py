"""How the referral centre ranks receivers: pure scoring with an explanation per factor. No database, no clock.

A candidate must be able to do the work (service or green-channel centre) — that is a filter, not a score. Among the
capable ones the score weighs capacity now, the level step, the consortium, travel time and the patient's choice.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np

# Levels from the bottom: village clinic 1 … national regional medical centre 5.
LEVEL_RANK = {
    "village_clinic": 1,
    "township_centre": 2,
    "county_hospital": 3,
    "tertiary": 4,
    "national_regional_centre": 5,
}


@dataclass(frozen=True)
class Candidate:
    facility_id: uuid.UUID
    name: str
    level: str
    lon: float
    lat: float
    services: frozenset[str]  # departments/services offered, e.g. cardiology
    centres: frozenset[str] = frozenset()  # green-channel centres: chest_pain, stroke, trauma, ...
    consortium_ids: frozenset[uuid.UUID] = frozenset()
    free_capacity: int | None = None  # free beds or slots in the window; None = unknown
    road_factor: float = 1.3  # road distance / straight-line distance for the terrain (mountains ≈ 1.6)


@dataclass(frozen=True)
class RoutingRequest:
    from_level: str
    lon: float
    lat: float
    service: str | None  # what the patient needs, e.g. "cardiology"
    urgency: str = "routine"  # routine | urgent | emergency
    green_channel: str | None = None  # chest_pain | stroke | trauma | critical_maternal | critical_neonatal
    consortium_ids: frozenset[uuid.UUID] = frozenset()
    patient_choice: uuid.UUID | None = None
    outside_reason: str | None = None  # required to route outside the own consortium
    road_factor: float = 1.0  # of the sender's terrain; a transfer uses the larger of the two ends'


@dataclass(frozen=True)
class Weights:
    capacity: float = 2.0
    level: float = 2.0
    consortium: float = 3.0
    travel: float = 3.0
    choice: float = 2.5
    speed_kmh: float = 50.0  # average road speed of a transfer


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    factors: dict[str, float] = field(default_factory=dict)  # factor -> weighted contribution
    reasons: tuple[str, ...] = ()
    travel_minutes: float = 0.0


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def travel_minutes(req: RoutingRequest, c: Candidate, weights: Weights) -> float:
    return haversine_km(req.lon, req.lat, c.lon, c.lat) * max(req.road_factor, c.road_factor) / weights.speed_kmh * 60


def capable(req: RoutingRequest, c: Candidate) -> bool:
    if req.green_channel:
        return req.green_channel in c.centres
    return req.service is None or req.service in c.services


def _level_score(req: RoutingRequest, c: Candidate, lowest_capable: int) -> tuple[float, str]:
    """The next level up that can do the work scores best: a village patient needing cardiology goes to the county
    hospital when no township centre offers cardiology. Emergencies may skip levels."""
    step = LEVEL_RANK[c.level] - LEVEL_RANK[req.from_level]
    if step <= 0:
        return 0.0, "same or lower level"
    if req.green_channel or req.urgency == "emergency":
        return 0.6 + 0.1 * min(step, 4), f"{step} level(s) up (green channel may skip levels)"
    skipped = LEVEL_RANK[c.level] - lowest_capable
    if skipped <= 0:
        return 1.0, "next level up that offers the service"
    return max(0.2, 1.0 - 0.4 * skipped), f"skips {skipped} capable level(s)"


def lowest_capable_level(req: RoutingRequest, candidates: list[Candidate]) -> int:
    above = [
        LEVEL_RANK[c.level] for c in candidates if capable(req, c) and LEVEL_RANK[c.level] > LEVEL_RANK[req.from_level]
    ]
    return min(above, default=LEVEL_RANK[req.from_level] + 1)


def rank(
    req: RoutingRequest,
    candidates: list[Candidate],
    weights: Weights = Weights(),
    *,
    lowest_capable: int | None = None,
) -> list[Ranked]:
    """Capable candidates, best first; each with its score per factor and the reasons in words.

    `lowest_capable` is the lowest level above the sender that can do the work; it defaults to the lowest among
    `candidates`, and is passed in when ranking a shortlist so that "next level up" keeps meaning the whole network.
    """
    out: list[Ranked] = []
    if lowest_capable is None:
        lowest_capable = lowest_capable_level(req, candidates)
    for c in candidates:
        if not capable(req, c):
            continue
        in_own = bool(req.consortium_ids & c.consortium_ids)
        if not in_own and req.consortium_ids and not req.outside_reason and req.patient_choice != c.facility_id:
            continue  # outside the own consortium only with a stated reason or by the patient's choice
        minutes = travel_minutes(req, c, weights)
        level, level_why = _level_score(req, c, lowest_capable)
        if c.free_capacity is None:
            capacity, capacity_why = 0.5, "capacity unknown"
        else:
            capacity = min(c.free_capacity, 10) / 10
            capacity_why = f"{c.free_capacity} free"
        # Travel counts more when time matters; 0 minutes → 1.0, 120 minutes → ~0.37.
        horizon = 60.0 if req.urgency == "emergency" else 120.0
        travel = math.exp(-minutes / horizon)
        factors = {
            "capacity": weights.capacity * capacity,
            "level": weights.level * level,
            "consortium": weights.consortium * (1.0 if in_own else 0.0),
            "travel": weights.travel * travel * (2.0 if req.urgency == "emergency" else 1.0),
            "choice": weights.choice * (1.0 if req.patient_choice == c.facility_id else 0.0),
        }
        reasons = [
            level_why,
            capacity_why,
            "own consortium" if in_own else f"outside the consortium ({req.outside_reason or 'patient choice'})",
            f"≈ {minutes:.0f} min by road",
        ]
        if req.patient_choice == c.facility_id:
            reasons.append("patient's choice")
        if c.free_capacity == 0:
            reasons.append("no free capacity now: would wait")
        out.append(
            Ranked(
                c,
                round(sum(factors.values()), 3),
                {k: round(v, 3) for k, v in factors.items()},
                tuple(reasons),
                round(minutes, 1),
            )
        )
    return sorted(out, key=lambda r: (-r.score, r.travel_minutes, str(r.candidate.facility_id)))


def shortlist(
    req: RoutingRequest, candidates: list[Candidate], k: int, weights: Weights = Weights()
) -> tuple[list[Ranked], int]:
    """The k best of `candidates` exactly as `rank` orders them (capacity unknown), and the lowest capable level.

    `rank` explains every candidate in words, which costs ≈ 10 µs each; a national registry puts a few hundred
    capable facilities inside the search box. Here the same score is computed for all of them at once with NumPy,
    and only those that can still reach the top k after `rank` rounds its scores (within 0.002 of the k-th) are
    ranked in full.
    """
    lowest = lowest_capable_level(req, candidates)
    pool = [c for c in candidates if capable(req, c)]
    if len(pool) <= k:
        return rank(req, pool, weights, lowest_capable=lowest)[:k], lowest
    n = len(pool)
    level = np.fromiter((LEVEL_RANK[c.level] for c in pool), dtype=np.float64, count=n)
    lon = np.fromiter((c.lon for c in pool), dtype=np.float64, count=n)
    lat = np.fromiter((c.lat for c in pool), dtype=np.float64, count=n)
    road = np.fromiter((c.road_factor for c in pool), dtype=np.float64, count=n)
    in_own = np.fromiter((bool(req.consortium_ids & c.consortium_ids) for c in pool), dtype=bool, count=n)
    chosen = np.fromiter((req.patient_choice == c.facility_id for c in pool), dtype=bool, count=n)
    allowed = in_own | chosen | (not req.consortium_ids) | bool(req.outside_reason)
    # haversine_km, vectorised
    p1, p2 = np.radians(req.lat), np.radians(lat)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon - req.lon) / 2) ** 2
    minutes = 2 * 6371.0 * np.arcsin(np.sqrt(a)) * np.maximum(road, req.road_factor) / weights.speed_kmh * 60
    step = level - LEVEL_RANK[req.from_level]
    if req.green_channel or req.urgency == "emergency":
        level_score = 0.6 + 0.1 * np.minimum(step, 4)
    else:
        skipped = level - lowest
        level_score = np.where(skipped <= 0, 1.0, np.maximum(0.2, 1.0 - 0.4 * skipped))
    level_score = np.where(step <= 0, 0.0, level_score)
    horizon = 60.0 if req.urgency == "emergency" else 120.0
    score = (
        weights.capacity * 0.5
        + weights.level * level_score
        + weights.consortium * in_own
        + weights.travel * np.exp(-minutes / horizon) * (2.0 if req.urgency == "emergency" else 1.0)
        + weights.choice * chosen
    )
    score = np.where(allowed, score, -np.inf)
    kth = np.partition(score, n - k)[n - k]
    if not np.isfinite(kth):
        keep = np.flatnonzero(np.isfinite(score))
    else:
        keep = np.flatnonzero(score >= kth - 0.002)
    return rank(req, [pool[i] for i in keep], weights, lowest_capable=lowest)[:k], lowest
