"""FHIR bulk ingest: `yilian fhir import` of a Synthea-like NDJSON export against a raw PostgreSQL COPY of the same lines.

Generates N patients (≈ 500 resources each) as Bulk Data NDJSON files, imports them into a fresh, migrated PostgreSQL
database with the same code path as `yilian fhir import` (parse, R4 validation, search index, version rows, checkpoints),
then COPYs the very same JSON lines into a bare one-column JSONB table. Prints resources/s of both and the ratio; the
last line is JSON.

    python benchmarks/fhir_ingest.py             # 1,000 patients, ≈ 509,000 resources
    python benchmarks/fhir_ingest.py --quick     # 60 patients, ≈ 30,000 resources
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

from proctime import proc_cpu  # benchmarks/ is the script's own directory

PG = os.environ.get("YILIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _backends_cpu(admin: object, name: str) -> dict[int, float]:
    from sqlalchemy import text

    with admin.connect() as conn:  # type: ignore[attr-defined]
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name}).scalars().all()
    return {pid: proc_cpu(pid) for pid in pids}


def _own_cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="validation processes (the import's --workers)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="60 patients")
    parser.add_argument("--keep", action="store_true", help="keep the database (fhir_query.py can reuse it)")
    args = parser.parse_args()
    if args.quick:
        args.patients = 60

    import fhir_synthetic
    from sqlalchemy import create_engine, text

    name = f"yilian_bench_ingest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="fhir-ingest-"))
    os.environ["YILIAN_DATABASE_URL"] = url
    os.environ["YILIAN_DATA_DIR"] = str(work / "data")

    from yilian import db, migrations
    from yilian.fhir import bulk

    try:
        migrations.upgrade(db.get_engine())
        t0 = time.perf_counter()
        counts = fhir_synthetic.write_ndjson(work / "export", args.patients, args.per_patient)
        generated_s = time.perf_counter() - t0
        total = sum(counts.values())
        files = sorted((work / "export").glob("*.ndjson"))
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"generated {total:,} resources ({size_mb:.0f} MB) in {generated_s:.1f} s", file=sys.stderr)

        done = [0]

        def progress(path: Path, position: int, n: int) -> None:
            done[0] += n
            if done[0] % 50_000 < n:
                print(f"  imported {done[0]:,} / {total:,}", file=sys.stderr)

        db_before, cpu_before = _backends_cpu(admin, name), _own_cpu()
        t0 = time.perf_counter()
        summary = bulk.import_files(
            files,
            batch_size=args.batch,
            report_path=work / "rejected.ndjson",
            workers=args.workers,
            on_progress=progress,
        )
        import_s = time.perf_counter() - t0
        import_cpu = _own_cpu() - cpu_before
        db_after = _backends_cpu(admin, name)
        import_db_cpu = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
        assert summary.rejected == 0, f"{summary.rejected} rejected: see {work / 'rejected.ndjson'}"
        assert dict(summary.by_type) == counts, (dict(summary.by_type), counts)

        import psycopg

        raw_url = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(raw_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_fhir (doc jsonb NOT NULL)")
            backend = conn.info.backend_pid
            copy_db_before, copy_cpu_before = proc_cpu(backend), _own_cpu()
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY raw_fhir (doc) FROM STDIN") as copy:
                for f in files:
                    with f.open("r", encoding="utf-8") as fh:
                        for line in fh:
                            copy.write_row((line.rstrip("\n"),))
            copy_s = time.perf_counter() - t0
            copy_cpu = _own_cpu() - copy_cpu_before + proc_cpu(backend) - copy_db_before
            copied = conn.execute("SELECT count(*) FROM raw_fhir").fetchone()[0]  # type: ignore[index]
            conn.execute("DROP TABLE raw_fhir")
        assert copied == total

        rate = total / import_s
        copy_rate = total / copy_s
        print(
            f"import {import_s:.1f} s ({rate:,.0f}/s) · raw COPY {copy_s:.1f} s ({copy_rate:,.0f}/s)",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "patients": args.patients,
                    "resources": total,
                    "by_type": counts,
                    "ndjson_mb": round(size_mb, 1),
                    "import_s": round(import_s, 1),
                    "resources_per_s": round(rate),
                    "copy_s": round(copy_s, 1),
                    "copy_resources_per_s": round(copy_rate),
                    "ratio_to_copy": round(rate / copy_rate, 3),
                    # CPU seconds (this process, its import workers and the PostgreSQL backends): on a machine shared
                    # with other jobs, resources per CPU-second says what 2 cores of our own would do.
                    "import_cpu_s": round(import_cpu + import_db_cpu, 1),
                    "import_db_cpu_s": round(import_db_cpu, 1),
                    "resources_per_cpu_s": round(total / (import_cpu + import_db_cpu)),
                    "copy_cpu_s": round(copy_cpu, 2),
                    "copy_resources_per_cpu_s": round(total / copy_cpu) if copy_cpu > 0 else None,
                    "load_avg_1m": round(os.getloadavg()[0], 1),
                    "workers": args.workers,
                    "batch": args.batch,
                    "db": "postgresql",
                    "database": name if args.keep else None,
                    "machine": f"{os.cpu_count()} cores, shared",
                }
            )
        )
    finally:
        db.reset_engines()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
