"""Digital twin throughput: one county-year on one core, a prefecture city-year on both cores.

Claims (issue 9): one county-year (≈ 750,000 residents, ≈ 5 million visits) in < 60 s on one core; a prefecture city
(≈ 4 million residents) in < 5 minutes using both cores. The county is 杏花岭区 (140107, 765,816 residents); the city is
Linfen (1410, 3,976,481 residents, 17 counties), run as two replications in two processes at once.

    .venv/bin/python benchmarks/twin.py [--quick]

Progress goes to stderr; the last line on stdout is one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

from yilian.twin import scenarios

COUNTY = "140107"
CITY = "1410"


def bench(label: str, region: list[str], *, scale: float, replications: int, workers: int) -> dict[str, float]:
    sc = scenarios.load("baseline-linfen")
    started = time.perf_counter()
    world, per_rep, timing = scenarios.run(
        sc, years=1.0, replications=replications, seed=1, scale=scale, region=region, workers=workers
    )
    wall = time.perf_counter() - started
    visits = per_rep[0]["region"]["visits_per_person_year"] * world.region.n_residents
    out = {
        "residents": world.region.n_residents,
        "visits_per_replication": round(visits),
        "replications": replications,
        "workers": workers,
        "build_s": round(timing["build_s"], 2),
        "simulate_s": round(timing["simulate_s"], 2),
        "wall_s": round(wall, 2),
        "events": int(timing["events"]),
        "events_per_s": round(timing["events_per_s"]),
    }
    print(f"{label}: {json.dumps(out)}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the county, a twentieth of the city")
    args = parser.parse_args()
    county_scale, city_scale = (0.1, 0.05) if args.quick else (1.0, 1.0)
    county = bench("county-year, 1 core", [COUNTY], scale=county_scale, replications=1, workers=1)
    city = bench("city-year, 2 cores", [CITY], scale=city_scale, replications=2, workers=2)
    result = {
        "benchmark": "twin",
        "quick": args.quick,
        "county": county,
        "city": city,
        "county_under_60s": county["wall_s"] < 60,
        "city_under_300s": city["wall_s"] < 300,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
