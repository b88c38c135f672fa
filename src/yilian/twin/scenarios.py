"""Scenarios: a baseline (region, scale, parameters) plus a list of changes, read from YAML.

```yaml
name: Resident experts in Hongdong county hospital
baseline: baseline-linfen.yaml          # a file next to this one, or a scenario shipped in the package
changes:
  - {type: add_resident_experts, county: "141024", experts: 40}
```
Change types: set_parameter, referral_rules, reimbursement, capitation, add_beds, upgrade_facility, add_facility,
add_resident_experts, monthly_expert_clinic, mobile_ct_route, close_township_centre. Each is one function below that
edits parameters or facility arrays; an unknown type or field is an error naming the field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from yilian.errors import Invalid, NotFound
from yilian.twin import decisions, engine, model
from yilian.twin.engine import World
from yilian.twin.model import CITY, KINDS, TOWNSHIP, Facilities
from yilian.twin.population import Region, build_region, counties_of

SCENARIOS_DIR = Path(__file__).with_name("scenarios")


@dataclass
class Scenario:
    name: str
    region: list[str]  # county codes
    scale: float
    parameters: dict[str, Any]
    changes: list[dict[str, Any]] = field(default_factory=list)
    watch_townships: list[str] = field(default_factory=list)
    source: str = ""


def resolve(path: str | Path) -> Path:
    """A path as given, or the name of a scenario shipped in the package (with or without .yaml)."""
    p = Path(path)
    if p.exists():
        return p
    for candidate in (SCENARIOS_DIR / p.name, SCENARIOS_DIR / f"{p.name}.yaml"):
        if candidate.exists():
            return candidate
    raise NotFound(f"no scenario file {path}", field="scenario")


def shipped() -> list[Path]:
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def load(path: str | Path, *, _depth: int = 0) -> Scenario:
    file = resolve(path)
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise Invalid(f"{file.name} is not valid YAML: {exc}", field="scenario") from exc
    if not isinstance(doc, dict):
        raise Invalid(f"{file.name} must be a mapping", field="scenario")
    return from_dict(doc, base_dir=file.parent, source=str(file), _depth=_depth)


def from_dict(doc: dict[str, Any], *, base_dir: Path = SCENARIOS_DIR, source: str = "", _depth: int = 0) -> Scenario:
    allowed = {"name", "description", "baseline", "region", "scale", "parameters", "changes", "watch_townships"}
    unknown = set(doc) - allowed
    if unknown:
        raise Invalid(f"unknown scenario keys: {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    if "baseline" in doc:
        if _depth > 5:
            raise Invalid("baseline chain too deep", field="baseline")
        bpath = base_dir / str(doc["baseline"])
        base = load(bpath if bpath.exists() else str(doc["baseline"]), _depth=_depth + 1)
    else:
        if "region" not in doc:
            raise Invalid("a baseline scenario names its region (city, province or county codes)", field="region")
        base = Scenario(name="", region=[], scale=1.0, parameters=model.default_parameters())
    region = base.region
    if "region" in doc:
        codes = doc["region"] if isinstance(doc["region"], list) else [doc["region"]]
        region = [c for code in codes for c in counties_of(str(code))]
    params = model.merge_parameters(base.parameters, doc.get("parameters") or {})
    changes = list(base.changes) + list(doc.get("changes") or [])
    for i, ch in enumerate(changes):
        if not isinstance(ch, dict) or ch.get("type") not in CHANGES:
            raise Invalid(
                f"change {i + 1}: type must be one of {', '.join(sorted(CHANGES))}", field=f"changes[{i}].type"
            )
    return Scenario(
        name=str(doc.get("name") or Path(source).stem or "scenario"),
        region=region,
        scale=float(doc.get("scale", base.scale)),
        parameters=params,
        changes=changes,
        watch_townships=list(base.watch_townships) + [str(t) for t in doc.get("watch_townships") or []],
        source=source,
    )


@lru_cache(maxsize=4)
def _region(codes: tuple[str, ...], scale: float, seed: int, prevalence_key: str, insured: float) -> Region:
    params = model.default_parameters()
    params["chronic"] = yaml.safe_load(prevalence_key)
    return build_region(
        codes, scale=scale, seed=seed, chronic_prevalence=model.chronic_prevalence(params), insured_share=insured
    )


def build_world(
    sc: Scenario,
    *,
    seed: int,
    scale: float | None = None,
    region: list[str] | None = None,
    session: Any = None,
    extra_watch: list[str] | None = None,
) -> World:
    """Population, facilities (synthetic, or the registry when a session is given), changes applied, geometry."""
    counties = [c for code in (region or sc.region) for c in counties_of(str(code))]
    scale = scale if scale is not None else sc.scale
    p = sc.parameters
    reg = _region(
        tuple(counties),
        float(scale),
        int(seed),
        yaml.safe_dump(p["chronic"], sort_keys=True),
        float(p["insured_share"]),
    )
    fac = model.facilities_from_registry(session, reg, p) if session is not None else model.synthetic_facilities(reg, p)
    params = p
    watch = list(sc.watch_townships) + list(extra_watch or [])
    for i, ch in enumerate(sc.changes):
        params = apply_change(ch, reg, fac, params, watch, index=i)
    geo = model.geometry(reg, fac, params)
    town_index = {c: i for i, c in enumerate(reg.township_codes)}
    watch_idx = sorted({town_index[t] for t in watch if t in town_index})
    # Referral criteria and routes are asked once, after the changes: a closed centre is no longer a receiver.
    dec = decisions.compile_decisions(reg, fac, geo, params)
    return World(region=reg, fac=fac, geo=geo, params=params, watch_townships=watch_idx, decisions=dec)


def touched_townships(sc: Scenario) -> list[str]:
    """Townships a scenario changes directly: their residents' results are reported separately."""
    out = []
    for ch in sc.changes:
        if ch.get("township"):
            out.append(str(ch["township"]))
        out.extend(str(t) for t in ch.get("townships") or [] if t != "all")
    return out


# ---- changes --------------------------------------------------------------------------------------------------------

Change = Callable[[dict[str, Any], Region, Facilities, dict[str, Any], list[str], str], dict[str, Any]]


def apply_change(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], *, index: int
) -> dict[str, Any]:
    where = f"changes[{index}]"
    fn = CHANGES[ch["type"]]
    return fn(ch, reg, fac, params, watch, where)


def _need(ch: dict[str, Any], key: str, where: str) -> Any:
    if key not in ch:
        raise Invalid(f"{ch['type']} needs {key}", field=f"{where}.{key}")
    return ch[key]


def _county(reg: Region, ch: dict[str, Any], where: str) -> int:
    code = str(_need(ch, "county", where))
    if code not in reg.county_codes:
        raise NotFound(f"county {code} is not in the simulated region", field=f"{where}.county")
    return reg.county_codes.index(code)


def _township(reg: Region, code: str, field_name: str) -> int:
    if code not in reg.township_codes:
        raise NotFound(f"township {code} is not in the simulated region", field=field_name)
    return reg.township_codes.index(code)


def _facility(
    reg: Region, fac: Facilities, ch: dict[str, Any], where: str, default: str = "county_hospital"
) -> np.ndarray:
    kind_name = str(ch.get("facility", default))
    if kind_name not in KINDS[1:5]:
        raise Invalid(f"facility must be one of {', '.join(KINDS[1:5])}", field=f"{where}.facility")
    kind = KINDS.index(kind_name)
    if kind == TOWNSHIP:
        t = _township(reg, str(_need(ch, "township", where)), f"{where}.township")
        idx = np.flatnonzero((fac.kind == TOWNSHIP) & (fac.township == t))
    elif kind == CITY:
        idx = np.flatnonzero(fac.kind == CITY)
    else:
        c = _county(reg, ch, where)
        idx = np.flatnonzero((fac.kind == kind) & (fac.county == c))
    if idx.size == 0:
        raise NotFound(f"no {kind_name} found", field=f"{where}.facility")
    return idx[:1]


def _number(
    ch: dict[str, Any], key: str, where: str, *, default: float | None = None, minimum: float | None = None
) -> float:
    value = ch.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Invalid(f"{key} must be a number", field=f"{where}.{key}")
    if minimum is not None and value < minimum:
        raise Invalid(f"{key} must be at least {minimum}", field=f"{where}.{key}")
    return float(value)


def _set_parameter(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    out = model.merge_parameters(params, {})
    model.set_parameter(out, str(_need(ch, "path", where)), _need(ch, "value", where))
    return out


def _merge_into(section: list[str]) -> Change:
    def change(
        ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
    ) -> dict[str, Any]:
        overrides: dict[str, Any] = {k: v for k, v in ch.items() if k != "type"}
        node: dict[str, Any] = overrides
        for key in reversed(section):
            node = {key: node}
        return model.merge_parameters(params, node)

    return change


def _reimbursement(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    mapping = {
        "outpatient": "outpatient_reimbursement",
        "inpatient": "inpatient_reimbursement",
        "deductible": "deductible_yuan",
    }
    unknown = set(ch) - set(mapping) - {"type"}
    if unknown:
        raise Invalid(f"reimbursement takes {', '.join(mapping)}", field=f"{where}.{sorted(unknown)[0]}")
    return model.merge_parameters(params, {"insurance": {mapping[k]: v for k, v in ch.items() if k in mapping}})


def _add_beds(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    idx = _facility(reg, fac, ch, where)
    fac.beds[idx] += round(_number(ch, "beds", where, minimum=0) * reg.scale)
    return params


def _upgrade_facility(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    idx = _facility(reg, fac, ch, where)
    fac.capability[idx] = np.minimum(1.0, fac.capability[idx] + _number(ch, "capability", where, default=0.0))
    fac.reputation[idx] = np.minimum(1.0, fac.reputation[idx] + _number(ch, "reputation", where, default=0.0))
    fac.beds[idx] += round(_number(ch, "beds", where, default=0.0, minimum=0) * reg.scale)
    fac.outpatient_capacity[idx] += _number(ch, "outpatient_per_day", where, default=0.0, minimum=0) * reg.scale
    for g in ch.get("green", []) or []:
        if g not in model.GREEN:
            raise Invalid(f"green channels are {', '.join(model.GREEN)}", field=f"{where}.green")
        fac.green[idx, model.GREEN.index(g)] = True
    return params


def _add_facility(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    kind_name = str(_need(ch, "kind", where))
    if kind_name not in ("county_hospital", "township_centre", "county_other"):
        raise Invalid("kind must be county_hospital, county_other or township_centre", field=f"{where}.kind")
    t = _township(reg, str(_need(ch, "township", where)), f"{where}.township")
    c = int(reg.township_county[t])
    kind = KINDS.index(kind_name)
    served = (
        float(reg.village_residents[reg.village_county == c].sum())
        if kind != TOWNSHIP
        else float(reg.village_residents[reg.village_township == t].sum())
    )
    share = _number(ch, "catchment_share", where, default=0.3 if kind != TOWNSHIP else 1.0, minimum=0)
    i = fac.append(
        kind=kind,
        county=c,
        township=t if kind == TOWNSHIP else -1,
        xy=tuple(reg.township_xy[t]),
        params=params,
        served=served * share,
        name=str(ch.get("name", f"new {kind_name}")),
    )
    if "capability" in ch:
        fac.capability[i] = _number(ch, "capability", where)
    if "beds" in ch:
        fac.beds[i] = round(_number(ch, "beds", where, minimum=0) * reg.scale)
    if kind == TOWNSHIP:
        # A second township centre only matters if villages may choose it: it replaces the old one as theirs.
        old = np.flatnonzero((fac.kind == TOWNSHIP) & (fac.township == t))[:-1]
        fac.open[old] = False
    watch.append(reg.township_codes[t])
    return params


def _resident_experts(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    idx = _facility(reg, fac, ch, where)
    experts = _number(ch, "experts", where, minimum=0)
    spec = params["outreach"]["resident_expert"]
    c = _county(reg, ch, where) if "county" in ch else int(fac.county[idx[0]])
    per_100k = experts / max(reg.county_population[c] / 1e5, 1e-9)
    gain = per_100k / (per_100k + spec["capability_half_experts_per_100k"])
    # Experts close part of the gap to the city hospital's capability and lend their reputation (seed 004).
    ceiling = params["facilities"]["city_hospital"]["capability"]
    fac.capability[idx] += np.maximum(0.0, ceiling - fac.capability[idx]) * gain
    fac.reputation[idx] = np.minimum(1.0, fac.reputation[idx] + spec["reputation_gain"] * gain)
    fac.expert_quota[idx] += experts * spec["daily_quota"] * reg.scale
    return params


def _monthly_clinic(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    idx = _facility(reg, fac, ch, where)
    experts = _number(ch, "experts", where, default=12, minimum=0)
    spec = params["outreach"]["monthly_clinic"]
    fac.monthly_clinic_quota[idx] += experts * spec["quota_per_expert"] * reg.scale
    fac.monthly_clinic_gain[idx] += spec["capability_gain_on_day"]
    fac.capability[idx] += spec["lasting_capability_gain"]
    return params


def _mobile_ct(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    c = _county(reg, ch, where)
    towns = ch.get("townships", "all")
    if towns == "all":
        stops = [int(t) for t in np.flatnonzero(reg.township_county == c)]
    else:
        stops = [_township(reg, str(t), f"{where}.townships") for t in towns]
    k = int(
        _number(
            ch,
            "days_per_stop_per_month",
            where,
            default=params["outreach"]["mobile_ct"]["days_per_stop_per_month"],
            minimum=1,
        )
    )
    for i, t in enumerate(stops):
        f = np.flatnonzero((fac.kind == TOWNSHIP) & (fac.township == t))
        for j in range(k):
            fac.ct_days[f, (i * k + j) % 30] = True
        watch.append(reg.township_codes[t])
    return params


def _close_township(
    ch: dict[str, Any], reg: Region, fac: Facilities, params: dict[str, Any], watch: list[str], where: str
) -> dict[str, Any]:
    t = _township(reg, str(_need(ch, "township", where)), f"{where}.township")
    idx = np.flatnonzero((fac.kind == TOWNSHIP) & (fac.township == t))
    others = np.flatnonzero(
        (fac.kind == TOWNSHIP) & fac.open & (fac.county == reg.township_county[t]) & (fac.township != t)
    )
    if others.size == 0:
        raise Invalid("cannot close the only township centre of a county", field=f"{where}.township")
    fac.open[idx] = False
    fac.beds[idx] = 0
    watch.append(reg.township_codes[t])
    return params


CHANGES: dict[str, Change] = {
    "set_parameter": _set_parameter,
    "referral_rules": _merge_into(["referral"]),
    "reimbursement": _reimbursement,
    "capitation": _merge_into(["insurance", "capitation"]),
    "add_beds": _add_beds,
    "upgrade_facility": _upgrade_facility,
    "add_facility": _add_facility,
    "add_resident_experts": _resident_experts,
    "monthly_expert_clinic": _monthly_clinic,
    "mobile_ct_route": _mobile_ct,
    "close_township_centre": _close_township,
}


# ---- running ------------------------------------------------------------------------------------------------------------


def run(
    sc: Scenario,
    *,
    years: float = 1.0,
    replications: int = 10,
    seed: int = 1,
    scale: float | None = None,
    region: list[str] | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    extra_watch: list[str] | None = None,
    session: Any = None,
) -> tuple[World, list[dict[str, Any]], dict[str, float]]:
    """Build the world and run the replications; returns the world, per-replication indicators and timings."""
    _check_run(years, replications)
    started = time.perf_counter()
    world = build_world(
        sc,
        seed=seed,
        scale=scale,
        region=region,
        extra_watch=(extra_watch or []) + touched_townships(sc),
        session=session,
    )
    built = time.perf_counter()
    tallies = engine.run_replications(
        world, years=years, replications=replications, seed=seed, workers=workers, on_done=on_done
    )
    done = time.perf_counter()
    per_rep = [engine.indicators(t, world, years=years) for t in tallies]
    events = float(sum(t["events"] for t in tallies))
    timing = {
        "build_s": built - started,
        "simulate_s": done - built,
        "events": events,
        "events_per_s": events / max(done - built, 1e-9),
    }
    return world, per_rep, timing


def _check_run(years: float, replications: int) -> None:
    if not 0 < years <= 20:
        raise Invalid("years must be in (0, 20]", field="years")
    if not 1 <= replications <= 1000:
        raise Invalid("replications must be between 1 and 1000", field="replications")


def _header(sc: Scenario, world: World, years: float, replications: int, seed: int) -> dict[str, Any]:
    return {
        "scenario": sc.name,
        "source": sc.source,
        "years": years,
        "replications": replications,
        "seed": seed,
        "scale": world.region.scale,
        "residents_simulated": world.region.n_residents,
        "counties": len(world.region.county_codes),
        "interval": "95% confidence interval of the mean over replications (Student t)",
        "units": "counts are per year at full census population; shares are 0..1; money in yuan",
    }


def result_document(
    sc: Scenario, world: World, per_rep: list[dict[str, Any]], timing: dict[str, float], *, years: float, seed: int
) -> dict[str, Any]:
    """The JSON document `yilian twin run` prints."""
    summary = engine.summarise(per_rep)
    names = dict(zip(world.region.county_codes, world.region.county_names, strict=True))
    return {
        **_header(sc, world, years, len(per_rep), seed),
        "indicators": engine.INDICATORS,
        "region": summary["region"],
        "counties": {code: {"name": names[code], **vals} for code, vals in summary["counties"].items()},
        "townships": {
            code: {"name": world.region.township_names[world.region.township_codes.index(code)], **vals}
            for code, vals in summary["townships"].items()
        },
        "performance": timing,
    }


def compare(
    base: Scenario,
    new: Scenario,
    *,
    years: float = 1.0,
    replications: int = 10,
    seed: int = 1,
    scale: float | None = None,
    region: list[str] | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run both scenarios on the same population and seeds; report each and the paired differences new − base."""
    counties = region or base.region
    if not region and sorted(new.region) != sorted(base.region):
        raise Invalid("the two scenarios simulate different regions; pass --region to compare on one", field="region")
    scale = scale if scale is not None else base.scale
    watch = touched_townships(base) + touched_townships(new)
    w_base, r_base, t_base = run(
        base,
        years=years,
        replications=replications,
        seed=seed,
        scale=scale,
        region=counties,
        workers=workers,
        on_done=on_done,
        extra_watch=watch,
    )
    w_new, r_new, t_new = run(
        new,
        years=years,
        replications=replications,
        seed=seed,
        scale=scale,
        region=counties,
        workers=workers,
        on_done=on_done,
        extra_watch=watch,
    )
    diff = engine.differences(r_base, r_new)
    names = dict(zip(w_base.region.county_codes, w_base.region.county_names, strict=True))
    return {
        **_header(new, w_new, years, replications, seed),
        "base": base.name,
        "new": new.name,
        "method": "paired differences new - base over replications with common random numbers",
        "difference": {
            "region": diff["region"],
            "counties": {code: {"name": names[code], **vals} for code, vals in diff["counties"].items()},
            "townships": diff["townships"],
        },
        "base_results": engine.summarise(r_base),
        "new_results": engine.summarise(r_new),
        "performance": {"base": t_base, "new": t_new},
    }
