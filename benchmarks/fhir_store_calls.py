"""FHIR store per-call cost: create (server-assigned id), update, read and two searches, in-process, one transaction each.

What a request pays inside the store (no HTTP, no access policy, no audit): the CPU of this process per call, and the
wall clock (which includes the database). The database is a fresh PostgreSQL (default) or SQLite one, holding three
patients of `fhir_synthetic.py` (≈ 1,500 resources); every call commits, as a request would. The last line is JSON.

    python benchmarks/fhir_store_calls.py [--db sqlite] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PG = os.environ.get("YILIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    import fhir_synthetic
    from sqlalchemy import create_engine, text

    work = Path(tempfile.mkdtemp(prefix="fhir-calls-"))
    name = f"yilian_bench_calls_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = None
    if args.db == "postgresql":
        admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{work / 'store.db'}"
    os.environ["YILIAN_DATABASE_URL"] = url
    os.environ["YILIAN_DATA_DIR"] = str(work / "data")

    from yilian import db, migrations
    from yilian.db import unit_of_work
    from yilian.fhir import hooks, store
    from yilian.security.actor import SYSTEM

    try:
        migrations.upgrade(db.get_engine())
        data = list(fhir_synthetic.resources(3, 500))
        with unit_of_work() as session:
            store.bulk_put(session, data, actor=SYSTEM)
        if args.db == "postgresql":  # as `yilian fhir import` does after a load: plans from real statistics
            with db.get_engine().connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        patient = next(r for r in data if r["resourceType"] == "Patient")["id"]
        obs = next(r for r in data if r["resourceType"] == "Observation")
        code = obs["code"]["coding"][0]
        template = {k: v for k, v in obs.items() if k not in ("id", "meta")}
        target = dict(template, id=str(uuid.uuid4()))
        with unit_of_work() as session:
            store.update(session, "Observation", target["id"], target, actor=SYSTEM)

        def create() -> Any:
            with unit_of_work() as session:
                return hooks.create(session, SYSTEM, template)

        def update() -> Any:
            with unit_of_work() as session:
                return hooks.update(session, SYSTEM, "Observation", target["id"], target)

        def read() -> Any:
            with unit_of_work() as session:
                return store.read(session, "Observation", target["id"])

        def search_observations() -> Any:
            with unit_of_work() as session:
                return store.search(
                    session,
                    "Observation",
                    [("patient", patient), ("code", f"{code['system']}|{code['code']}"), ("date", "ge2000-01-01")],
                )

        def search_conditions() -> Any:
            with unit_of_work() as session:
                return store.search(
                    session, "Condition", [("patient", f"Patient/{patient}"), ("clinical-status", "active")]
                )

        results: dict[str, Any] = {}
        for label, fn in [
            ("create", create),
            ("update", update),
            ("read", read),
            ("search_observation_patient_code_date", search_observations),
            ("search_condition_patient_status", search_conditions),
        ]:
            for _ in range(20):  # warm-up: statement caches, connection pool
                fn()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(args.calls):
                fn()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            results[label] = {
                "cpu_ms": round(cpu / args.calls * 1000, 3),
                "wall_ms": round(wall / args.calls * 1000, 3),
            }
            print(
                f"{label:40s} cpu {results[label]['cpu_ms']:.3f} ms  wall {results[label]['wall_ms']:.3f} ms",
                file=sys.stderr,
            )
        print(
            json.dumps(
                {"db": args.db, "calls": args.calls, "per_call": results, "load_avg_1m": round(os.getloadavg()[0], 1)}
            )
        )
    finally:
        db.reset_engines()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
