"""The simulation engine: vectorised NumPy day-steps over a synthetic population.

Each simulated day draws the day's outpatient visits, admissions and acute events for the whole population at once
(Poisson totals, residents picked by their individual rates), lets every patient choose a facility with a multinomial
logit (level, travel time, capability, reputation, waiting, out-of-pocket cost), applies capacity (clinic quotas with a
queue that carries over, beds with a discharge calendar), referral decisions, green-channel time chains, costs and
insurance. Yesterday's queues feed today's choices, which is why the step is a day and not the whole year at once.

Up-referrals are decided by the referrals domain's criteria and routed by its router, down-referrals by its
down-referral ("stable") criteria and returned to the sender as its `down_refer` does, all compiled once per run into
arrays (twin/decisions.py); the indicator set carries the indicators domain's definitions (twin/measures.py).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from yilian.twin import measures
from yilian.twin.model import (
    ACUTE,
    CHRONIC,
    COUNTY,
    KINDS,
    OTHER,
    PRIMARY,
    TOP,
    TOWNSHIP,
    VILLAGE,
    Facilities,
    Geometry,
    by_age,
    hospital_transfer_minutes,
)
from yilian.twin.population import N_BANDS, Region

if TYPE_CHECKING:
    from yilian.twin.decisions import Decisions

RING = 128  # days in the discharge calendar (longer stays are cut to RING - 1 days)
NEG = -1e9


@dataclass
class World:
    """Everything a replication needs; built once, shared by forked worker processes."""

    region: Region
    fac: Facilities
    geo: Geometry
    params: dict[str, Any]
    watch_townships: list[int]
    decisions: Decisions


@dataclass
class Prepared:
    op_cum: np.ndarray
    op_total: float
    adm_cum: np.ndarray
    adm_total: float
    cohort_members: np.ndarray
    cohort_start: np.ndarray
    cohort_size: np.ndarray
    acute_rate: np.ndarray  # (len(ACUTE), 2 * N_BANDS) per person-year
    asc_op: np.ndarray  # (n_counties, 6)
    asc_ip: np.ndarray  # (n_counties, 5) kinds township..top
    oop_op: np.ndarray  # per facility, yuan
    oop_ip: np.ndarray
    fac_cost_op: np.ndarray
    fac_cost_ip: np.ndarray
    fac_los: np.ndarray
    fac_in_county: np.ndarray  # facility county index (-1 outside)
    capitation: np.ndarray  # bool per county


def prepare(world: World) -> Prepared:
    region, fac, p = world.region, world.fac, world.params
    d = p["demand"]
    sex, band, chronic = region.resident_sex, region.resident_band, region.resident_chronic
    n_c = len(region.county_codes)
    res_county = region.village_county[region.resident_village]
    cap = p["insurance"]["capitation"]
    capitated = np.array([c in set(map(str, cap["counties"])) for c in region.county_codes])

    op_rate = by_age(d["outpatient"])[sex, band]
    adm_rate = by_age(d["admissions"])[sex, band]
    for bit, name in enumerate(CHRONIC):
        has = ((chronic >> bit) & 1).astype(bool)
        op_rate = op_rate + has * d["outpatient"]["chronic_extra_visits"][name]
        adm_rate = adm_rate * np.where(has, d["admissions"]["chronic_multiplier"][name], 1.0)
    op_rate *= d["outpatient"]["scale"]
    adm_rate *= d["admissions"]["scale"]
    # Under capitation the group manages chronic patients more tightly: fewer avoidable admissions (seed 000).
    adm_rate = adm_rate * np.where(capitated[res_county] & (chronic > 0), 1 - cap["avoidable_admission_reduction"], 1.0)
    op_cum = np.cumsum(op_rate)
    adm_cum = np.cumsum(adm_rate)

    cohort = sex.astype(np.int32) * N_BANDS + band
    members = np.argsort(cohort, kind="stable").astype(np.int32)
    size = np.bincount(cohort, minlength=2 * N_BANDS)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    acute_rate = np.array([by_age(p["acute"][k]).ravel() for k in ACUTE])

    ch = p["choice"]
    asc_op = np.tile(np.array([ch["outpatient"]["asc"][k] for k in KINDS]), (n_c, 1))
    asc_ip = np.tile(np.array([ch["inpatient"]["asc"][k] for k in KINDS[1:]]), (n_c, 1))
    asc_op[capitated, VILLAGE] += cap["primary_asc_bonus"]
    asc_op[capitated, TOWNSHIP] += cap["primary_asc_bonus"]
    asc_ip[capitated, TOWNSHIP - 1] += cap["county_retention_bonus"]
    asc_ip[capitated, COUNTY - 1] += cap["county_retention_bonus"]
    asc_ip[capitated, OTHER - 1] += cap["county_retention_bonus"]

    ins = p["insurance"]
    spec = [p["facilities"][k] for k in KINDS]
    cost_op = np.array([s["outpatient_cost"] for s in spec], dtype=float)
    cost_ip = np.array([s["inpatient_cost"] for s in spec], dtype=float)
    rate_op = np.array([ins["outpatient_reimbursement"][k] for k in KINDS])
    rate_ip = np.array([ins["inpatient_reimbursement"].get(k, 0.0) for k in KINDS])
    ded = np.array([ins["deductible_yuan"].get(k, 0.0) for k in KINDS])
    oop_op = cost_op * (1 - rate_op)
    oop_ip = cost_ip - np.maximum(0, cost_ip - ded) * rate_ip
    los = np.array([s["los_days"] for s in spec], dtype=float)
    k = fac.kind
    return Prepared(
        op_cum=op_cum,
        op_total=float(op_cum[-1]),
        adm_cum=adm_cum,
        adm_total=float(adm_cum[-1]),
        cohort_members=members,
        cohort_start=start,
        cohort_size=size,
        acute_rate=acute_rate,
        asc_op=asc_op,
        asc_ip=asc_ip,
        oop_op=oop_op[k],
        oop_ip=oop_ip[k],
        fac_cost_op=cost_op[k],
        fac_cost_ip=cost_ip[k],
        fac_los=los[k],
        fac_in_county=fac.county,
        capitation=capitated,
    )


class Tally:
    """Counters of one replication; names are the raw material of `indicators`."""

    def __init__(self, n_counties: int, n_fac: int, n_towns: int):
        z = lambda *shape: np.zeros(shape)  # noqa: E731
        self.visits = z(n_counties, 6)
        self.travel_minutes = z(n_counties)
        self.wait_minutes = z(n_counties)
        self.op_cost = z(n_counties)
        self.episodes = z(n_counties)
        self.episodes_in_county = z(n_counties)
        self.episodes_by_kind = z(n_counties, 6)
        self.ip_cost = z(n_counties)
        self.fund = z(n_counties)
        self.fund_in_county = z(n_counties)
        self.fund_primary = z(n_counties)
        self.out_of_pocket = z(n_counties)
        self.up_referrals = z(n_counties)
        self.up_referrals_outpatient = z(n_counties)
        self.up_out_of_county = z(n_counties)  # up-referrals whose receiver is outside the patient's county
        self.down_referrals = z(n_counties)
        self.diverted = z(n_counties)
        self.green_cases = z(n_counties, len(ACUTE))
        self.green_minutes = z(n_counties, len(ACUTE))
        self.green_in_target = z(n_counties, len(ACUTE))
        self.fac_visits = z(n_fac)
        self.fac_up_inpatient = z(n_fac)  # up-referrals of inpatients (incl. green channel) sent from a facility
        self.fac_down_received = z(n_fac)
        self.fac_admissions = z(n_fac)
        self.fac_bed_days = z(n_fac)
        self.town_travel = z(n_towns)
        self.town_visits = z(n_towns)
        self.events = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pick(cum: np.ndarray, total: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n residents drawn with probability proportional to their rate (sorted draws keep the lookups cache-friendly)."""
    u = np.sort(rng.random(n)) * total
    return np.searchsorted(cum, u, side="right").clip(0, cum.size - 1)


def decide_up_referrals(
    level: np.ndarray,
    beyond: np.ndarray,
    p_up: np.ndarray,
    rng: np.random.Generator,
    decisions: Decisions,
    *,
    chronic: np.ndarray | None = None,
    uptake: float = 0.0,
) -> np.ndarray:
    """Who is formally referred up, by the referrals domain's criteria (compiled in `decisions`).

    A case beyond the facility's capability meets the criteria's capability test and is referred with the level's
    propensity; at village and township level a chronic patient's visit meets a chronic-disease criterion with the
    share `decisions.chronic_up` (per condition the patient has) and ends in a referral slip with `uptake`.
    """
    refer = beyond & decisions.refers_beyond & (rng.random(level.size) < p_up[level]) & (level != TOP)
    if chronic is not None and uptake > 0 and decisions.chronic_up.any():
        stay = np.ones(level.size)
        for bit in range(len(CHRONIC)):
            has = ((chronic >> bit) & 1).astype(bool)
            stay *= np.where(has, 1.0 - decisions.chronic_up[bit] * uptake, 1.0)
        refer |= (level <= TOWNSHIP) & (rng.random(level.size) < 1.0 - stay)
    return refer


def decide_down_referrals(
    level: np.ndarray,
    complexity: np.ndarray,
    receiver_capability: np.ndarray,
    p_down: np.ndarray,
    rng: np.random.Generator,
    *,
    below_capability: bool,
    meets: np.ndarray | None = None,
) -> np.ndarray:
    """Who is sent down for recovery: stable patients whose residual need the lower level can meet.

    `meets` is each patient's chance of meeting a down-referral criterion of the referrals domain at discharge
    (`decisions.down_meets` for their conditions); `p_down[level]` is the share of those the level sends down.
    """
    ok = (complexity * 0.5 <= receiver_capability) if below_capability else np.ones(level.size, dtype=bool)
    chance = p_down[level] if meets is None else p_down[level] * meets
    return ok & (rng.random(level.size) < chance)


def simulate(
    world: World,
    prep: Prepared,
    *,
    years: float,
    seed: np.random.SeedSequence | int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """One replication. Returns the tallies as a dict of arrays (picklable, small)."""
    region, fac, geo, p = world.region, world.fac, world.geo, world.params
    rng = np.random.default_rng(seed)
    n_c, n_f, n_t = len(region.county_codes), fac.size, len(region.township_codes)
    tally = Tally(n_c, n_f, n_t)
    days = max(1, round(365 * years))
    dem_op, dem_ip = p["demand"]["outpatient"], p["demand"]["admissions"]
    ch_op, ch_ip = p["choice"]["outpatient"], p["choice"]["inpatient"]
    ref, out, ins = p["referral"], p["outreach"], p["insurance"]
    spec = [p["facilities"][k] for k in KINDS]
    p_up_op = np.array([ref["up_outpatient"].get(k, 0.0) for k in KINDS])
    p_up_ip = np.array([ref["up_inpatient"].get(k, 0.0) for k in KINDS])
    p_down = np.array([ref["down_inpatient"].get(k, 0.0) for k in KINDS])
    rate_op = np.array([ins["outpatient_reimbursement"][k] for k in KINDS])
    rate_ip = np.array([ins["inpatient_reimbursement"].get(k, 0.0) for k in KINDS])
    ded = np.array([ins["deductible_yuan"].get(k, 0.0) for k in KINDS])
    base_wait = np.array([s["base_wait_minutes"] for s in spec], dtype=float)[fac.kind]
    weekday = np.array(dem_op["weekday"], dtype=float)
    weekday = weekday / weekday.mean()
    primary_mask = np.zeros(6)
    primary_mask[list(PRIMARY)] = 1.0
    hospital = fac.kind >= COUNTY
    weekend_capacity = np.where(hospital, 0.6, 0.7)
    slot_f, slot_m, amb_m = geo.slot_facility, geo.slot_minutes, geo.ambulance_minutes
    res_village, res_chronic, res_insured = region.resident_village, region.resident_chronic, region.resident_insured
    v_county, v_town = region.village_county, region.village_township
    ct_gain = out["mobile_ct"]["capability_gain_on_day"]
    acute_cx = [(p["acute"][k]["complexity"]["a"], p["acute"][k]["complexity"]["b"]) for k in ACUTE]
    acute_call = np.array([p["acute"][k]["onset_to_call_minutes"] for k in ACUTE], dtype=float)
    dido = p["travel"]["door_in_door_out_minutes"]
    waiver = bool(ref["consortium_waives_second_deductible"])
    dec = world.decisions
    up_dest, combo = dec.up_destination, dec.village_combo
    down_meets = dec.down_meets
    # Green channels: the referrals domain's targets per channel (a centre treats within its door-to-treatment target)
    # and its router's choice of centre (twin/decisions.py).
    assert dec.green_destination is not None and dec.green_door_minutes is not None
    assert dec.green_chain_minutes is not None
    green_dest, acute_door, acute_target = dec.green_destination, dec.green_door_minutes, dec.green_chain_minutes
    no_acute = len(ACUTE)
    chronic_uptake = float(ref.get("chronic_uptake", 0.0))

    occupied = np.zeros(n_f)
    ring = np.zeros((RING, n_f))
    util = np.full(n_f, 0.5)
    wait_prev = base_wait.copy()

    for day in range(days):
        dow, dom = day % 7, day % 30
        season = math.cos(2 * math.pi * (day - 15) / 365)
        clinic_day = dom < 7 and dow >= 5  # first weekend of the month (seed 003)
        cap_today = fac.capability + fac.monthly_clinic_gain * clinic_day + ct_gain * fac.ct_days[:, dom]
        capacity = fac.outpatient_capacity * (weekend_capacity if dow >= 5 else 1.0)
        capacity = capacity + fac.expert_quota * (dow < out["resident_expert"]["days_per_week"])
        capacity = capacity + fac.monthly_clinic_quota * clinic_day
        occupied -= ring[day % RING]
        ring[day % RING] = 0.0

        # ---- outpatient visits ------------------------------------------------------------------------------
        n = int(rng.poisson(prep.op_total / 365 * (1 + dem_op["seasonality"] * season) * weekday[dow]))
        r = _pick(prep.op_cum, prep.op_total, n, rng)
        v = res_village[r]
        cty = v_county[v]
        F = slot_f[v]
        c = rng.beta(dem_op["complexity"]["a"], dem_op["complexity"]["b"], n)
        kap = cap_today[F]
        U = (
            prep.asc_op[cty]
            + ch_op["per_hour_travel"] * slot_m[v] / 60
            + ch_op["capability_gap"] * np.maximum(0.0, c[:, None] - kap)
            + ch_op["reputation"] * fac.reputation[F]
            + ch_op["per_hour_wait"] * wait_prev[F] / 60
            + ch_op["per_100_yuan_out_of_pocket"] * prep.oop_op[F] / 100
            + ch_op["chronic_primary_bonus"] * (res_chronic[r] > 0)[:, None] * primary_mask
            + rng.gumbel(size=(n, 6))
        )
        U[~fac.open[F]] = NEG
        level = U.argmax(axis=1)
        rows = np.arange(n)
        f_op = F[rows, level]
        refer = decide_up_referrals(
            level, c > cap_today[f_op], p_up_op, rng, dec, chronic=res_chronic[r], uptake=chronic_uptake
        )
        dest = up_dest[combo[v[refer]], level[refer]]
        dest_level = fac.kind[dest].astype(np.int64)
        all_f = np.concatenate([f_op, dest])
        all_level = np.concatenate([level, dest_level])
        all_cty = np.concatenate([cty, cty[refer]])
        all_v = np.concatenate([v, v[refer]])
        arrivals = np.bincount(all_f, minlength=n_f).astype(float)
        # Queue: a smoothed utilisation (arrivals over today's sessions) drives the wait, so that the wait reflects the
        # load patients meet over days rather than the luck of one day; above full load the overflow waits to later days.
        util = 0.85 * util + 0.15 * arrivals / np.maximum(capacity, 1e-9)
        rho = np.minimum(util, 0.9)
        wait_today = base_wait * (1 + rho**2 / (1 - rho)) + 480.0 * np.maximum(0.0, util - 1.0)
        wait_prev = wait_today
        minutes = slot_m[all_v, all_level]
        tally.visits += np.bincount(all_cty * 6 + all_level, minlength=n_c * 6).reshape(n_c, 6)
        tally.travel_minutes += np.bincount(all_cty, weights=minutes, minlength=n_c)
        tally.wait_minutes += np.bincount(all_cty, weights=wait_today[all_f], minlength=n_c)
        cost = prep.fac_cost_op[all_f] * (0.7 + 1.5 * np.concatenate([c, c[refer]]))
        paid = cost * rate_op[all_level] * res_insured[np.concatenate([r, r[refer]])]
        tally.op_cost += np.bincount(all_cty, weights=cost, minlength=n_c)
        _fund(tally, all_cty, all_f, all_level, paid, cost, prep, n_c)
        tally.up_referrals += np.bincount(cty[refer], minlength=n_c)
        tally.up_referrals_outpatient += np.bincount(cty[refer], minlength=n_c)
        tally.up_out_of_county += np.bincount(cty[refer], weights=prep.fac_in_county[dest] != cty[refer], minlength=n_c)
        tally.fac_visits += arrivals
        towns = v_town[all_v]
        tally.town_travel += np.bincount(towns, weights=minutes, minlength=n_t)
        tally.town_visits += np.bincount(towns, minlength=n_t)

        # ---- admissions: elective/urgent, chosen by the patient ----------------------------------------------
        n = int(rng.poisson(prep.adm_total / 365 * (1 + dem_ip["seasonality"] * season)))
        r = _pick(prep.adm_cum, prep.adm_total, n, rng)
        v = res_village[r]
        cty = v_county[v]
        F = slot_f[v][:, 1:]
        c = rng.beta(dem_ip["complexity"]["a"], dem_ip["complexity"]["b"], n)
        U = (
            prep.asc_ip[cty]
            + ch_ip["per_hour_travel"] * slot_m[v][:, 1:] / 60
            + ch_ip["capability_gap"] * np.maximum(0.0, c[:, None] - cap_today[F])
            + ch_ip["reputation"] * fac.reputation[F]
            + ch_ip["per_1000_yuan_out_of_pocket"] * prep.oop_ip[F] / 1000
            + rng.gumbel(size=(n, 5))
        )
        U[~fac.open[F] | (fac.beds[F] < 1)] = NEG
        choice = U.argmax(axis=1)
        f_ip = F[np.arange(n), choice]
        # Beds: the first come get the free beds; the others take their next choice once, then the top hospital.
        full = _over_capacity(f_ip, fac.beds - occupied, rng)
        if full.any():
            tally.diverted += np.bincount(cty[full], minlength=n_c)
            U[np.flatnonzero(full), choice[full]] = NEG
            choice[full] = U[full].argmax(axis=1)
            f_ip[full] = F[np.flatnonzero(full), choice[full]]
            still = full & _over_capacity(f_ip, fac.beds - occupied, rng)
            f_ip[still] = slot_f[v[still], TOP]
        kinds = fac.kind[f_ip].astype(np.int64)

        # ---- acute events through green channels ------------------------------------------------------------
        ac_r, ac_f, ac_c, ac_type, ac_sender = [], [], [], [], []
        for k in range(len(ACUTE)):
            lam = prep.acute_rate[k] * prep.cohort_size / 365
            counts = rng.poisson(lam)
            total = int(counts.sum())
            if total == 0:
                continue
            cohorts = np.repeat(np.arange(lam.size), counts)
            picks = prep.cohort_members[
                prep.cohort_start[cohorts] + (rng.random(total) * prep.cohort_size[cohorts]).astype(np.int64)
            ]
            av = res_village[picks]
            acty = v_county[av]
            first = slot_f[av, COUNTY]
            minutes = acute_call[k] + amb_m[av, COUNTY] + acute_door[k]
            centre = green_dest[combo[av], k]
            capable = centre == first
            final = first.copy()
            if (~capable).any():
                # Not a centre: the county hospital stabilises and transfers to the centre the router ranks first
                # (counted as a green-channel up-referral).
                up = centre[~capable]
                minutes[~capable] += dido + hospital_transfer_minutes(fac, first[~capable], up, p)
                final[~capable] = up
                tally.fac_up_inpatient += np.bincount(first[~capable], minlength=n_f)
                tally.up_referrals += np.bincount(acty[~capable], minlength=n_c)
                tally.up_out_of_county += np.bincount(
                    acty[~capable], weights=prep.fac_in_county[up] != acty[~capable], minlength=n_c
                )
            tally.green_cases[:, k] += np.bincount(acty, minlength=n_c)
            tally.green_minutes[:, k] += np.bincount(acty, weights=minutes, minlength=n_c)
            tally.green_in_target[:, k] += np.bincount(acty, weights=minutes <= acute_target[k], minlength=n_c)
            ac_r.append(picks)
            ac_f.append(final)
            ac_c.append(rng.beta(*acute_cx[k], total))
            ac_type.append(np.full(total, k))
            ac_sender.append(np.where(capable, -1, first))
        acute = np.full(r.size, no_acute, dtype=np.int64)
        sender = np.full(r.size, -1, dtype=np.int64)  # who referred the patient up (-1: came without a referral)
        if ac_r:
            acute = np.concatenate([acute, *ac_type])
            sender = np.concatenate([sender, *ac_sender])
            r = np.concatenate([r, *ac_r])
            f_ip = np.concatenate([f_ip, *ac_f])
            c = np.concatenate([c, *ac_c])
            v = res_village[r]
            cty = v_county[v]
            kinds = fac.kind[f_ip].astype(np.int64)
        n = r.size

        # ---- inpatient referrals, stays, costs ----------------------------------------------------------------
        origin = f_ip
        refer = decide_up_referrals(kinds, c > cap_today[f_ip], p_up_ip, rng, dec)
        final = f_ip.copy()
        final[refer] = up_dest[combo[v[refer]], kinds[refer]]
        sender[refer] = origin[refer]
        tally.up_referrals += np.bincount(cty[refer], minlength=n_c)
        tally.up_out_of_county += np.bincount(
            cty[refer], weights=prep.fac_in_county[final[refer]] != cty[refer], minlength=n_c
        )
        tally.fac_up_inpatient += np.bincount(origin[refer], minlength=n_f)
        fk = fac.kind[final].astype(np.int64)
        los = np.clip(np.rint(prep.fac_los[final] * (0.6 + 0.8 * c)), 1, RING - 1).astype(np.int64)
        _occupy(ring, occupied, day, final, los)
        _occupy(ring, occupied, day, origin[refer], np.ones(int(refer.sum()), dtype=np.int64))
        cost = prep.fac_cost_ip[final] * (0.5 + 1.5 * c) + refer * prep.fac_cost_ip[origin] / np.maximum(
            prep.fac_los[origin], 1
        )
        # A referral inside the consortium keeps the sender's deductible and rate (no second deductible, seed 003).
        ded_level = np.where(refer & waiver, kinds, fk)
        rate_level = np.where(refer & waiver, kinds, fk)
        paid = np.maximum(0.0, cost - ded[ded_level]) * rate_ip[rate_level] * res_insured[r]
        # Stable patients (a down-referral criterion met at discharge) go down for recovery, back to the facility that
        # referred them up (referrals.service.down_refer); without a referral, from city/top to their county
        # hospital and from the county hospital to their township centre.
        lower = np.where(fk == COUNTY, TOWNSHIP, COUNTY)
        receiver = np.where(sender >= 0, sender, slot_f[v, lower])
        meets = None if down_meets is None else down_meets[res_chronic[r], acute]
        down = (
            decide_down_referrals(
                fk,
                c,
                cap_today[receiver],
                p_down,
                rng,
                below_capability=bool(ref["down_stable_below_capability"]),
                meets=meets,
            )
            & (fk >= COUNTY)
            & (fk != OTHER)
        )
        if down.any():
            rehab = np.full(int(down.sum()), int(ref["rehab_los_days"]), dtype=np.int64)
            _occupy(ring, occupied, day, receiver[down], rehab)
            rehab_cost = prep.fac_cost_ip[receiver[down]] * 0.5
            cost[down] += rehab_cost
            tally.down_referrals += np.bincount(cty[down], minlength=n_c)
            tally.fac_down_received += np.bincount(receiver[down], minlength=n_f)
        tally.episodes += np.bincount(cty, minlength=n_c)
        tally.episodes_in_county += np.bincount(cty, weights=prep.fac_in_county[final] == cty, minlength=n_c)
        tally.episodes_by_kind += np.bincount(cty * 6 + fk, minlength=n_c * 6).reshape(n_c, 6)
        tally.ip_cost += np.bincount(cty, weights=cost, minlength=n_c)
        _fund(tally, cty, final, fk, paid, cost, prep, n_c)
        tally.fac_admissions += np.bincount(final, minlength=n_f)
        tally.fac_bed_days += occupied
        tally.events += all_f.size + n + int(down.sum())
        if progress is not None and (day % 30 == 29 or day == days - 1):
            progress(day + 1, days)
    out_dict = tally.as_dict()
    out_dict["days"] = days
    return out_dict


def _fund(
    tally: Tally,
    cty: np.ndarray,
    f: np.ndarray,
    kind: np.ndarray,
    paid: np.ndarray,
    cost: np.ndarray,
    prep: Prepared,
    n_c: int,
) -> None:
    tally.fund += np.bincount(cty, weights=paid, minlength=n_c)
    tally.fund_in_county += np.bincount(cty, weights=paid * (prep.fac_in_county[f] == cty), minlength=n_c)
    tally.fund_primary += np.bincount(cty, weights=paid * ((kind == VILLAGE) | (kind == TOWNSHIP)), minlength=n_c)
    tally.out_of_pocket += np.bincount(cty, weights=cost - paid, minlength=n_c)


def _over_capacity(f: np.ndarray, free: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mask of patients who find no free bed at their chosen facility (arrival order is random)."""
    if f.size == 0:
        return np.zeros(0, dtype=bool)
    order = rng.permutation(f.size)
    fo = f[order]
    sort = np.argsort(fo, kind="stable")
    fs = fo[sort]
    first = np.searchsorted(fs, fs, side="left")
    rank = np.arange(fs.size) - first
    over_sorted = rank >= np.floor(np.maximum(free[fs], 0))
    mask = np.zeros(f.size, dtype=bool)
    mask[order[sort]] = over_sorted
    return mask


def _occupy(ring: np.ndarray, occupied: np.ndarray, day: int, f: np.ndarray, los: np.ndarray) -> None:
    if f.size == 0:
        return
    occupied += np.bincount(f, minlength=occupied.size)
    np.add.at(ring, ((day + los) % RING, f), 1.0)


# ---- replications in parallel ---------------------------------------------------------------------------------------

_WORLD: World | None = None
_PREP: Prepared | None = None


def _run_one(args: tuple[np.random.SeedSequence, float]) -> dict[str, Any]:
    assert _WORLD is not None and _PREP is not None
    seed, years = args
    return simulate(_WORLD, _PREP, years=years, seed=seed)


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """Replication k of seed s is the same stream in every scenario (common random numbers make comparisons tight)."""
    return np.random.SeedSequence([seed, 7919]).spawn(replications)


def run_replications(
    world: World,
    *,
    years: float,
    replications: int,
    seed: int,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run replications, in forked worker processes when there is more than one (the world is shared copy-on-write)."""
    global _WORLD, _PREP
    prep = prepare(world)
    seeds = replication_seeds(seed, replications)
    workers = min(workers or os.cpu_count() or 1, replications)
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        results = []
        for k, s in enumerate(seeds):
            results.append(simulate(world, prep, years=years, seed=s))
            if on_done:
                on_done(k + 1)
        return results
    _WORLD, _PREP = world, prep
    try:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = []
            for k, res in enumerate(pool.imap(_run_one, [(s, years) for s in seeds])):
                results.append(res)
                if on_done:
                    on_done(k + 1)
        return results
    finally:
        _WORLD, _PREP = None, None


# ---- indicators -------------------------------------------------------------------------------------------------------

INDICATORS: dict[str, str] = {
    "population": "residents (census 2020)",
    "visits_per_person_year": "outpatient visits per person-year",
    "admissions_per_person_year": "inpatient episodes per person-year",
    "in_county_admission_share": "share of inpatient episodes treated in the home county",
    "primary_share_of_visits": "share of outpatient visits at township and village level",
    "up_referrals": "formal up-referrals a year (outpatient, inpatient, green channel)",
    "down_referrals": "down-referrals a year",
    "up_referrals_per_10k": "up-referrals per 10,000 residents a year",
    "county_hospital_outpatient_visits": "outpatient visits a year at the county hospital",
    "county_hospital_up_referrals": "inpatients referred up from the county hospital a year",
    "county_hospital_down_referrals_received": "patients down-referred to the county hospital a year",
    "county_hospital_bed_occupancy": "bed occupancy of the county hospital",
    "travel_minutes_per_visit": "travel minutes per outpatient visit",
    "wait_minutes_per_visit": "waiting minutes per outpatient visit",
    "cost_per_outpatient_visit_yuan": "cost per outpatient visit (yuan)",
    "cost_per_inpatient_case_yuan": "cost per inpatient episode (yuan)",
    "fund_spent_in_county_share": "share of the insurance fund spent inside the county",
    "fund_primary_share": "share of the insurance fund spent at township and village level",
    "out_of_pocket_share": "share of costs paid by patients",
    "fund_per_insured_yuan": "insurance fund spent per insured resident a year (yuan)",
    "green_channel_minutes": "onset to definitive treatment, acute events (minutes)",
    "green_mi_minutes": "onset to PCI-capable treatment, myocardial infarction (minutes)",
    "green_stroke_minutes": "onset to thrombolysis, stroke (minutes)",
    "green_channel_in_target_share": "share of acute events treated within their target time",
    "diverted_admissions": "admissions turned away for lack of beds a year",
    "capitation_balance_yuan": "capitation budget minus fund spent, capitated counties (yuan a year)",
    # The indicators domain's definitions, by id (twin/measures.py): the same figures as on real data.
    **measures.names("en"),
}


def _area_indicators(t: dict[str, Any], mask: np.ndarray, world: World, *, years: float) -> dict[str, float]:
    region, fac = world.region, world.fac
    full = 1.0 / region.scale / years  # counts a year at full census population
    residents = region.county_residents()[mask].sum()
    insured = np.bincount(
        region.village_county[region.resident_village], weights=region.resident_insured, minlength=mask.size
    )[mask].sum()
    py = residents * years
    s = lambda key: float(np.asarray(t[key])[mask].sum())  # noqa: E731
    visits = np.asarray(t["visits"])[mask].sum(axis=0)
    n_visits = float(visits.sum())
    episodes = s("episodes")
    in_area = np.isin(fac.county, np.flatnonzero(mask))
    ch = (fac.kind == COUNTY) & in_area
    ch_beds = float(fac.beds[ch].sum())
    green_cases = np.asarray(t["green_cases"])[mask].sum(axis=0)
    green_minutes = np.asarray(t["green_minutes"])[mask].sum(axis=0)
    green_ok = np.asarray(t["green_in_target"])[mask].sum(axis=0)
    costs = s("op_cost") + s("ip_cost")
    div = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    out = {
        "population": float(region.county_population[mask].sum()),
        "visits_per_person_year": div(n_visits, py),
        "admissions_per_person_year": div(episodes, py),
        "in_county_admission_share": div(s("episodes_in_county"), episodes),
        "primary_share_of_visits": div(float(visits[VILLAGE] + visits[TOWNSHIP]), n_visits),
        "up_referrals": s("up_referrals") * full,
        "down_referrals": s("down_referrals") * full,
        "up_referrals_per_10k": div(s("up_referrals") * 1e4, py),
        "county_hospital_outpatient_visits": float(np.asarray(t["fac_visits"])[ch].sum()) * full,
        "county_hospital_up_referrals": float(np.asarray(t["fac_up_inpatient"])[ch].sum()) * full,
        "county_hospital_down_referrals_received": float(np.asarray(t["fac_down_received"])[ch].sum()) * full,
        "county_hospital_bed_occupancy": div(float(np.asarray(t["fac_bed_days"])[ch].sum()), ch_beds * t["days"]),
        "travel_minutes_per_visit": div(s("travel_minutes"), n_visits),
        "wait_minutes_per_visit": div(s("wait_minutes"), n_visits),
        "cost_per_outpatient_visit_yuan": div(s("op_cost"), n_visits),
        "cost_per_inpatient_case_yuan": div(s("ip_cost"), episodes),
        "fund_spent_in_county_share": div(s("fund_in_county"), s("fund")),
        "fund_primary_share": div(s("fund_primary"), s("fund")),
        "out_of_pocket_share": div(s("out_of_pocket"), costs),
        "fund_per_insured_yuan": div(s("fund"), insured * years),
        "green_channel_minutes": div(float(green_minutes.sum()), float(green_cases.sum())),
        "green_mi_minutes": div(float(green_minutes[ACUTE.index("mi")]), float(green_cases[ACUTE.index("mi")])),
        "green_stroke_minutes": div(
            float(green_minutes[ACUTE.index("stroke")]), float(green_cases[ACUTE.index("stroke")])
        ),
        "green_channel_in_target_share": div(float(green_ok.sum()), float(green_cases.sum())),
        "diverted_admissions": s("diverted") * full,
    }
    sums = {
        "visits": n_visits,
        "visits_primary": float(visits[VILLAGE] + visits[TOWNSHIP]),
        "episodes": episodes,
        "episodes_in_county": s("episodes_in_county"),
        "fund": s("fund"),
        "fund_in_county": s("fund_in_county"),
        "fund_primary": s("fund_primary"),
        "ip_cost": s("ip_cost"),
        "up_referrals_year": s("up_referrals") * full,
        "down_referrals_year": s("down_referrals") * full,
        "up_out_of_county_year": s("up_out_of_county") * full,
    }
    out.update(measures.definition_values(sums))
    cap = world.params["insurance"]["capitation"]
    capitated = np.array([c in set(map(str, cap["counties"])) for c in region.county_codes]) & mask
    if capitated.any():
        cap_insured = np.bincount(
            region.village_county[region.resident_village], weights=region.resident_insured, minlength=mask.size
        )[capitated].sum()
        budget = cap["budget_per_insured_yuan"] * cap_insured * years
        out["capitation_balance_yuan"] = (budget - float(np.asarray(t["fund"])[capitated].sum())) / region.scale / years
    return out


def indicators(t: dict[str, Any], world: World, *, years: float) -> dict[str, Any]:
    """The indicator set of one replication: region, each county, and watched townships.

    Stand-in for the indicators domain's definitions; the names follow the national monitoring indicators of tight
    county medical communities (DOMAIN.md, 'What is measured').
    """
    region = world.region
    n_c = len(region.county_codes)
    out: dict[str, Any] = {"region": _area_indicators(t, np.ones(n_c, dtype=bool), world, years=years), "counties": {}}
    for i, code in enumerate(region.county_codes):
        mask = np.zeros(n_c, dtype=bool)
        mask[i] = True
        out["counties"][code] = _area_indicators(t, mask, world, years=years)
    out["townships"] = {}
    for ti in world.watch_townships:
        visits = float(t["town_visits"][ti])
        out["townships"][region.township_codes[ti]] = {
            "travel_minutes_per_visit": float(t["town_travel"][ti] / visits) if visits else float("nan")
        }
    return out


# Two-sided 95 % Student t quantiles by degrees of freedom (no SciPy needed for one table).
_T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def interval(values: list[float]) -> dict[str, float]:
    """Mean and 95 % confidence interval of the mean over replications."""
    x = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan")}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "low": mean, "high": mean}
    t = _T95[x.size - 2] if x.size - 1 <= len(_T95) else 1.96
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"mean": mean, "low": mean - half, "high": mean + half}


def summarise(per_rep: list[dict[str, Any]]) -> dict[str, Any]:
    """Collapse per-replication indicator sets into {area: {indicator: {mean, low, high}}}."""
    first = per_rep[0]

    def collapse(path: tuple[str, ...]) -> dict[str, dict[str, float]]:
        def get(r: dict[str, Any]) -> dict[str, float]:
            for key in path:
                r = r[key]
            return r

        return {k: interval([get(r)[k] for r in per_rep]) for k in get(first)}

    return {
        "region": collapse(("region",)),
        "counties": {code: collapse(("counties", code)) for code in first["counties"]},
        "townships": {code: collapse(("townships", code)) for code in first["townships"]},
    }


def differences(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired differences new − base per replication (same seeds), with their 95 % intervals."""
    paired = []
    for b, n in zip(base, new, strict=True):
        d: dict[str, Any] = {"region": {}, "counties": {}, "townships": {}}
        d["region"] = {k: n["region"][k] - b["region"][k] for k in b["region"] if k in n["region"]}
        for code in b["counties"]:
            d["counties"][code] = {
                k: n["counties"][code][k] - v for k, v in b["counties"][code].items() if k in n["counties"][code]
            }
        for code in b["townships"]:
            if code in n["townships"]:
                d["townships"][code] = {k: n["townships"][code][k] - v for k, v in b["townships"][code].items()}
        paired.append(d)
    return summarise(paired)
