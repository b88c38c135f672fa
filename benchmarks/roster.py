"""Claim: a month's expert-outreach roster for 200 experts × 40 receiving hospitals is solved in < 30 s on 2 cores,
and the independent validator finds no broken rule in it; a coordinator's locks re-solve in the same budget.

    .venv/bin/python benchmarks/roster.py            # full size: 200 experts × 40 hospitals × December 2026
    .venv/bin/python benchmarks/roster.py --quick    # reduced instance, well under 2 minutes

Progress goes to stdout first; the LAST line is one JSON object (the contract checked from outside).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from yilian.outreach import instances, rules
from yilian.outreach.rostering import SolverOptions, resolve, solve
from yilian.outreach.schemas import Lock, PostingKind, prorated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced instance (100 experts × 20 hospitals)")
    parser.add_argument("--experts", type=int)
    parser.add_argument("--hospitals", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=25.0, help="solver seconds per solve")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-resolve", action="store_true", help="skip the coordinator-lock re-solve")
    args = parser.parse_args()
    experts = args.experts or (100 if args.quick else 200)
    hospitals = args.hospitals or (20 if args.quick else 40)
    options = SolverOptions(time_limit_seconds=args.time_limit, workers=args.workers)

    started = time.perf_counter()
    problem = instances.generate(experts=experts, hospitals=hospitals, seed=args.seed)
    generated = time.perf_counter() - started
    kinds = {k.value: sum(1 for e in problem.experts if e.kind == k) for k in PostingKind}
    print(
        f"instance: {experts} experts {kinds}, {hospitals} receiving hospitals, {problem.days} days, seed {args.seed}"
    )

    result = solve(problem, options)
    print(
        f"solve: {result.status} in {result.seconds:.1f} s, {result.variables} assignment variables, "
        f"unmet {result.unmet_sessions}/{result.demand_sessions} sessions, fairness spread {result.fairness_spread}"
    )
    t = time.perf_counter()
    violations = rules.validate(problem, result.roster)
    validated = time.perf_counter() - t
    unmet = sum(u.missing for u in rules.unmet_demand(problem, result.roster))
    for v in violations[:10]:
        print(f"  violation: {v.message}")
    for s in result.shortfalls[:10]:
        print(f"  shortfall: {s.message}")
    print(f"validator: {len(violations)} violations in {validated * 1000:.0f} ms; recounted unmet demand {unmet}")

    out: dict[str, object] = {
        "benchmark": "roster",
        "feasible": result.feasible,
        "status": result.status,
        "seconds": round(result.seconds, 2),
        "experts": experts,
        "hospitals": hospitals,
        "days": problem.days,
        "violations": len(violations),
        "objective": result.objective,
        "best_bound": result.stats.get("best_bound"),
        "unmet_sessions": result.unmet_sessions,
        "unmet_recounted": unmet,
        "demand_sessions": result.demand_sessions,
        "assignments": len(result.roster.assignments),
        "fairness_spread": result.fairness_spread,
        "travel_minutes": result.travel_minutes,
        "variables": result.variables,
        "shortfalls": len(result.shortfalls),
        "generate_seconds": round(generated, 3),
        "validate_seconds": round(validated, 3),
    }

    if not args.no_resolve and result.roster.assignments:
        # A coordinator pins 10 entries of the roster and frees 5 residents for a day each, then re-solves.
        rng = random.Random(args.seed)
        pinned = rng.sample(result.roster.assignments, min(10, len(result.roster.assignments)))
        residents = [a for a in result.roster.assignments if problem.expert(a.expert_id).kind == PostingKind.RESIDENT]
        pinned_keys = {(a.expert_id, a.day) for a in pinned}
        # Free only days a resident can spare (more than the weekly minimum on site), so the re-solve stays feasible.
        weeks = {d: w for w in problem.weeks() for d in w.days}
        on_site = Counter((a.expert_id, weeks[a.day].index) for a in residents)
        spare = [
            a
            for a in residents
            if (a.expert_id, a.day) not in pinned_keys
            and on_site[(a.expert_id, weeks[a.day].index)] > prorated(4, len(weeks[a.day].days))
        ]
        freed = rng.sample(spare, min(5, len(spare)))
        locks = [Lock(a.expert_id, a.day, a.hospital_id, a.specialty) for a in pinned]
        locks += [Lock(a.expert_id, a.day, None) for a in freed]
        again = resolve(problem, result.roster, locks, options)
        locked_violations = rules.validate(replace(problem, locks=[*problem.locks, *locks]), again.roster)
        print(
            f"re-solve with {len(locks)} locks: {again.status} in {again.seconds:.1f} s, feasible={again.feasible}, "
            f"{len(locked_violations)} violations, unmet {again.unmet_sessions}"
        )
        for s in again.shortfalls[:10]:
            print(f"  shortfall: {s.message}")
        out.update(
            resolve_seconds=round(again.seconds, 2),
            resolve_feasible=again.feasible,
            resolve_violations=len(locked_violations),
            resolve_locks=len(locks),
        )

    out.update(
        machine=f"{os.cpu_count()} cores",
        workers=args.workers,
        python=platform.python_version(),
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
