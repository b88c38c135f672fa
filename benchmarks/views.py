"""SQL on FHIR views: compiled DuckDB SQL over the typed snapshot against a per-resource fhirpathpy walk.

Generates N realistic Encounter + Observation resources (NDJSON and a Parquet snapshot of JSON text under
benchmarks/out/); per type builds the typed snapshot (`typed_snapshot.refresh`: each resource's JSON parsed once into
nested typed Parquet columns — the cost paid at snapshot time, reported on its own); materialises the shipped
`encounter` and `observation` views from it as `yilian views materialize` does (`materialize.view_sql`), and again
from the JSON text for comparison, checking that both files hold the same rows; evaluates the same views on a sample
resource by resource with fhirpathpy and checks that the sample's rows in the typed output are the same; prints
rows/s (wall and per CPU-second) and the ratio. The last line is JSON.

    python benchmarks/views.py            # 1,000,000 resources
    python benchmarks/views.py --quick    # 50,000 resources, well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from yilian.analytics import catalogue, materialize, typed, typed_snapshot
from yilian.analytics.compiler import compile_view
from yilian.analytics.runner import connect
from yilian.analytics.runner import materialize as materialize_text

OUT = Path(__file__).parent / "out"

CLASSES = [("AMB", 0.78), ("IMP", 0.12), ("EMER", 0.07), ("VR", 0.03)]
LABS = [
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 185),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mmol/L", 3.5, 15.0),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 11.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mmol/L", 3.0, 8.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 90, 170),
    ("29463-7", "Body weight", "kg", 40, 110),
]
ICD = ["I10", "E11.9", "J44.1", "I25.1", "J18.9", "K29.7", "M54.5", "N39.0"]


def _ts(rng: random.Random) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))


def encounter(i: int, rng: random.Random, patients: int, facilities: int) -> dict[str, Any]:
    start = _ts(rng)
    cls = rng.choices([c for c, _ in CLASSES], weights=[w for _, w in CLASSES])[0]
    end = start + (timedelta(days=rng.randint(1, 14)) if cls == "IMP" else timedelta(minutes=rng.randint(5, 90)))
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"enc-{i}",
        "meta": {"lastUpdated": (end + timedelta(hours=1)).isoformat()},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "type": [{"coding": [{"system": "urn:yilian:encounter-type", "code": "general", "display": "普通门诊"}]}],
        "subject": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
        "participant": [{"individual": {"reference": f"Practitioner/doc-{rng.randrange(2000)}"}}],
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": rng.choice(ICD)}]}],
        "serviceProvider": {"reference": f"Organization/fac-{rng.randrange(facilities)}"},
    }
    if cls == "IMP":
        enc["hospitalization"] = {
            "admitSource": {"coding": [{"code": rng.choice(["outp", "emd", "hosp-trans"])}]},
            "dischargeDisposition": {"coding": [{"code": rng.choice(["home", "other-hcf", "exp"])}]},
        }
    if rng.random() < 0.03:
        enc["basedOn"] = [{"reference": f"ServiceRequest/ref-{i}"}]
    return enc


def observation(i: int, rng: random.Random, patients: int, encounters: int) -> dict[str, Any]:
    when = _ts(rng).isoformat()
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "subject": {"reference": f"Patient/pat-{rng.randrange(patients)}"},
        "encounter": {"reference": f"Encounter/enc-{rng.randrange(max(encounters, 1))}"},
        "effectiveDateTime": when,
        "issued": when,
    }
    if rng.random() < 0.3:
        sys_v, dia_v = rng.randint(100, 190), rng.randint(60, 120)
        obs["category"] = [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ]
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]}
        obs["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {
                    "value": sys_v,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {
                    "value": dia_v,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ]
    else:
        code, display, unit, lo, hi = rng.choice(LABS)
        obs["category"] = [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ]
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]}
        obs["valueQuantity"] = {
            "value": round(rng.uniform(lo, hi), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
        if rng.random() < 0.2:
            obs["interpretation"] = [{"coding": [{"code": rng.choice(["H", "L", "N"])}]}]
    return obs


def generate(n: int, seed: int = 7) -> tuple[Path, Path, Path]:
    """Half encounters, half observations, as NDJSON per type and one Parquet snapshot (resource_type, resource)."""
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n_enc, n_obs = n // 2, n - n // 2
    patients, facilities = max(n // 20, 10), 300
    enc_path, obs_path = OUT / f"encounter-{n}.ndjson", OUT / f"observation-{n}.ndjson"
    snapshot = OUT / f"snapshot-{n}.parquet"
    if not (enc_path.exists() and obs_path.exists() and snapshot.exists()):
        with enc_path.open("w", encoding="utf-8") as fh:
            for i in range(n_enc):
                fh.write(json.dumps(encounter(i, rng, patients, facilities), ensure_ascii=False) + "\n")
        with obs_path.open("w", encoding="utf-8") as fh:
            for i in range(n_obs):
                fh.write(json.dumps(observation(i, rng, patients, n_enc), ensure_ascii=False) + "\n")
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT json_extract_string(json, '$.resourceType') AS resource_type, json AS resource "
            f"FROM read_json_objects(['{enc_path}', '{obs_path}'], format = 'newline_delimited')) "
            f"TO '{snapshot}' (FORMAT parquet, ROW_GROUP_SIZE 100000)"
        )
        con.close()
    return enc_path, obs_path, snapshot


# ---------------------------------------------------------------- the straightforward per-resource path


def per_resource(view: dict, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The naive evaluation: walk each resource in Python with fhirpathpy (compiled expressions, R4 model)."""
    import fhirpathpy
    from fhirpathpy.models import models

    model = models["r4"]
    cache: dict[str, Any] = {}

    def ev(expr: str, node: Any, env: dict[str, Any]) -> list[Any]:
        fn = cache.get(expr)
        if fn is None:
            # fhirpathpy loses the type of a choice inside a BackboneElement (component.value.ofType(Quantity) is
            # empty), so name the JSON key directly: valueQuantity, as the compiler does
            plain = re.sub(r"\b(\w+)\.ofType\((\w)(\w*)\)", lambda m: m[1] + m[2].upper() + m[3], expr)
            fn = cache[expr] = fhirpathpy.compile(plain.replace("getResourceKey()", "id"), model)
        return list(fn(node, env))

    def key(value: Any, type_name: str) -> Any:
        ref = value.get("reference", "") if isinstance(value, dict) else ""
        parts = ref.split("/")
        return parts[-1] if len(parts) >= 2 and parts[-2] == type_name else None

    def column(col: dict[str, Any], node: Any, env: dict[str, Any]) -> Any:
        path: str = col["path"]
        if ".getReferenceKey(" in path:
            base, rest = path.split(".getReferenceKey(", 1)
            type_name = rest.split(")", 1)[0]
            vals = [k for k in (key(v, type_name) for v in ev(base, node, env)) if k is not None]
        elif path == "%rowIndex":
            vals = [env["rowIndex"]]
        else:
            vals = ev(path, node, env)
        return vals[0] if vals else None

    def rows(sel: dict[str, Any], node: Any, env: dict[str, Any]) -> list[dict[str, Any]]:
        if "forEach" in sel:
            out: list[dict[str, Any]] = []
            for idx, item in enumerate(ev(sel["forEach"], node, env)):
                out += rows({k: v for k, v in sel.items() if k != "forEach"}, item, {**env, "rowIndex": idx})
            return out
        parts: list[list[dict[str, Any]]] = []
        if sel.get("column"):
            parts.append([{c["name"]: column(c, node, env) for c in sel["column"]}])
        for sub in sel.get("select", []):
            parts.append(rows(sub, node, env))
        if sel.get("unionAll"):
            parts.append([r for u in sel["unionAll"] for r in rows(u, node, env)])
        result: list[dict[str, Any]] = [{}]
        for p in parts:
            result = [{**a, **b} for a in result for b in p]
        return result

    out: list[dict[str, Any]] = []
    for r in resources:
        if r.get("resourceType") != view["resource"]:
            continue
        env = {"rowIndex": 0, "resource": r}
        if all(ev(w["path"], r, env) == [True] for w in view.get("where", [])):
            out += rows({"select": view["select"]}, r, env)
    return out


def _snapshot_part(snapshot: Path, n: int) -> tuple[Path, list[tuple[int, Path]]]:
    """The generated resources as part 1 of an analytics snapshot, in the layout `yilian views materialize` keeps
    (res_type, res_id, version, last_updated, deleted, resource), so that the typed snapshot is built by the same code."""
    root = OUT / f"analytics-{n}"
    part = root / "snapshot" / "part-000001.parquet"
    if not part.exists():
        part.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT resource_type AS res_type, json_extract_string(resource, '$.id') AS res_id, "
            f"1::BIGINT AS version, TIMESTAMPTZ '2026-11-23 00:00:00+00' AS last_updated, false AS deleted, "
            f"CAST(resource AS VARCHAR) AS resource FROM read_parquet('{snapshot}')) TO '{part}' (FORMAT parquet)"
        )
        con.close()
    return root, [(1, part)]


def _cpu() -> float:
    """CPU seconds of this process: every DuckDB thread, and the fhirpathpy walk."""
    return time.process_time()


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    t, cpu = time.perf_counter(), _cpu()
    out = fn(*args)
    return out, time.perf_counter() - t, _cpu() - cpu


def _copy(query: str, target: Path) -> int:
    con = connect()
    try:
        result = con.execute(f"COPY ({query}) TO '{target}' ({typed_snapshot.COPY_OPTIONS})").fetchone()
        return int(result[0]) if result else 0
    finally:
        con.close()


def _differences(a: Path, b: Path) -> int:
    """Rows in one file and not the other (as multisets): 0 when both materialisations agree row for row."""
    con = duckdb.connect()
    try:
        # a: keyed (as `yilian views materialize` writes it), b: the view's columns only
        keyed = f"(SELECT * EXCLUDE (_resource_key) FROM '{a}')"
        found = con.execute(
            f"SELECT (SELECT count(*) FROM (FROM {keyed} EXCEPT ALL FROM '{b}')) "
            f"+ (SELECT count(*) FROM (FROM '{b}' EXCEPT ALL FROM {keyed}))"
        ).fetchone()
        return int(found[0]) if found else -1
    finally:
        con.close()


def _load_sample(path: Path, n: int) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def _canon(rows: list[dict[str, Any]]) -> list[str]:
    def norm(v: Any) -> Any:
        # fhirpathpy gives decimals as Decimal; the compiled view as DOUBLE
        return float(v) if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else v

    return sorted(json.dumps({k: norm(v) for k, v in r.items()}, sort_keys=True, default=str) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50,000 resources and a 1,000-resource sample")
    parser.add_argument("--resources", type=int, default=None, help="resources to generate (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=None, help="resources per type for the fhirpathpy path")
    args = parser.parse_args()
    n = args.resources or (50_000 if args.quick else 1_000_000)
    sample_n = args.sample or (1_000 if args.quick else 5_000)

    t0 = time.perf_counter()
    enc_path, obs_path, snapshot = generate(n)
    root, parts = _snapshot_part(snapshot, n)
    gen_s = time.perf_counter() - t0
    print(f"data: {n:,} resources ({snapshot.stat().st_size / 1e6:.0f} MB Parquet) in {gen_s:.1f} s", file=sys.stderr)

    result: dict[str, Any] = {
        "resources": n,
        "machine": f"{os.cpu_count()} cores",
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "load_average_start": os.getloadavg(),
    }
    shipped = [typed.fast(compile_view(catalogue.get(name))) for name in catalogue.names()]
    shapes = typed_snapshot.needed(shipped)
    totals = {"rows": 0, "s": 0.0, "cpu": 0.0, "naive_rows": 0, "naive_s": 0.0, "naive_cpu": 0.0}
    for name, ndjson in (("encounter", enc_path), ("observation", obs_path)):
        view = catalogue.get(name)
        compiled = typed.fast(compile_view(view))
        assert compiled.engine.startswith("typed"), f"{name} should run on the typed engine"
        rtype = compiled.resource

        # 1. the typed snapshot of the view's type (paid once at snapshot time, then only for changed resources):
        #    every resource's JSON text parsed into the STRUCT of what the shipped views on the type read
        typed_snapshot.path_for(rtype, root).unlink(missing_ok=True)
        built, build_s, build_cpu = _timed(typed_snapshot.refresh, rtype, shapes[rtype], parts, root)
        assert built.mode == "full"

        # 2. the view from the typed snapshot's columns: what `yilian views materialize` now runs
        query, reads = materialize.view_sql(compiled, [p for _, p in parts], built.held)
        assert reads == "typed snapshot", reads
        target = OUT / f"{name}-{n}.parquet"
        rows, sql_s, sql_cpu = _timed(_copy, query, target)

        # 3. the same view from JSON text (the typed engine parsing each resource; the default before), to compare
        text_target = OUT / f"{name}-{n}-from-json-text.parquet"
        text_rows, text_s, text_cpu = _timed(materialize_text, compiled, [str(snapshot)], text_target)
        differences = _differences(target, text_target) if text_rows == rows else -1

        # 4. the straightforward per-resource path on a sample, and the same sample's rows in the typed output
        sample = _load_sample(ndjson, sample_n)
        naive, naive_s, naive_cpu = _timed(per_resource, view, sample)
        ids = [r["id"] for r in sample]
        con = duckdb.connect()
        got = con.execute(f"SELECT * FROM '{target}' WHERE _resource_key IN (SELECT unnest(?::VARCHAR[]))", [ids])
        names = [d[0] for d in got.description or []]
        from_typed = [{k: v for k, v in zip(names, r, strict=True) if k != "_resource_key"} for r in got.fetchall()]
        con.close()
        same = _canon(naive) == _canon(from_typed)
        print(
            f"{name}: typed snapshot of {built.parsed:,} {rtype} in {build_s:.2f} s ({build_cpu:.2f} CPU-s); "
            f"view {rows:,} rows in {sql_s:.2f} s ({rows / sql_s:,.0f} rows/s, {rows / sql_cpu:,.0f} per CPU-s); "
            f"from JSON text {text_s:.2f} s ({rows / text_s:,.0f} rows/s, {rows / text_cpu:,.0f} per CPU-s), "
            f"differing rows {differences}; fhirpathpy {len(naive):,} rows in {naive_s:.2f} s; same rows on the "
            f"sample: {same}",
            file=sys.stderr,
        )
        result[name] = {
            "rows": rows,
            "typed_snapshot_resources": built.parsed,
            "typed_snapshot_build_s": round(build_s, 2),
            "typed_snapshot_build_cpu_s": round(build_cpu, 2),
            "typed_snapshot_resources_per_s": round(built.parsed / build_s),
            "typed_snapshot_resources_per_cpu_s": round(built.parsed / build_cpu),
            "typed_snapshot_mb": round(built.held.path.stat().st_size / 1e6, 1),
            "view_s": round(sql_s, 3),
            "view_cpu_s": round(sql_cpu, 2),
            "view_rows_per_s": round(rows / sql_s),
            # CPU seconds (all DuckDB threads): on a machine shared with other jobs, wall time mostly measures them
            "view_rows_per_cpu_s": round(rows / sql_cpu),
            "json_text_s": round(text_s, 3),
            "json_text_rows_per_s": round(rows / text_s),
            "json_text_rows_per_cpu_s": round(rows / text_cpu),
            "rows_differing_typed_vs_json_text": differences,
            "fhirpathpy_sample_resources": len(sample),
            "fhirpathpy_rows_per_s": round(len(naive) / naive_s),
            "fhirpathpy_rows_per_cpu_s": round(len(naive) / naive_cpu),
            "speedup": round((rows / sql_s) / (len(naive) / naive_s), 1),
            "speedup_per_cpu_s": round((rows / sql_cpu) / (len(naive) / naive_cpu), 1),
            "sample_rows_match": same,
        }
        for key, value in (("rows", rows), ("s", sql_s), ("cpu", sql_cpu)):
            totals[key] += value
        for key, value in (("naive_rows", len(naive)), ("naive_s", naive_s), ("naive_cpu", naive_cpu)):
            totals[key] += value
    result["load_average_end"] = os.getloadavg()
    result["view_rows_per_s"] = round(totals["rows"] / totals["s"])
    result["view_rows_per_cpu_s"] = round(totals["rows"] / totals["cpu"])
    result["fhirpathpy_rows_per_s"] = round(totals["naive_rows"] / totals["naive_s"])
    result["speedup"] = round(result["view_rows_per_s"] / result["fhirpathpy_rows_per_s"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
