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

PG = os.environ.get("YILIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


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

        t0 = time.perf_counter()
        summary = bulk.import_files(
            files,
            batch_size=args.batch,
            report_path=work / "rejected.ndjson",
            workers=args.workers,
            on_progress=progress,
        )
        import_s = time.perf_counter() - t0
        assert summary.rejected == 0, f"{summary.rejected} rejected: see {work / 'rejected.ndjson'}"
        assert dict(summary.by_type) == counts, (dict(summary.by_type), counts)

        import psycopg

        raw_url = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(raw_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_fhir (doc jsonb NOT NULL)")
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY raw_fhir (doc) FROM STDIN") as copy:
                for f in files:
                    with f.open("r", encoding="utf-8") as fh:
                        for line in fh:
                            copy.write_row((line.rstrip("\n"),))
            copy_s = time.perf_counter() - t0
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
