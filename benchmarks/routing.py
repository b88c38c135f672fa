"""Referral submit + route through the HTTP API on a generated national-size network.

Generates a network of ≥ 20,000 facilities (provinces → cities → counties → townships → villages, a county medical
community per county, tertiary hospitals with chest-pain/stroke centres, regional centres), patients in the FHIR store,
and one village doctor per county; serves the real app with uvicorn in a child process; then village doctors send
referrals (`POST /api/v1/referrals`: criteria, routing over the registry, SLA, event, audit, FHIR ServiceRequest+Task,
outbox — one transaction each) from concurrent clients. Reports per-request latency and sustained referrals/s.

    python benchmarks/routing.py --quick            # 20,000 facilities, ≤ 1,200 referrals or 30 s of load (< 2 min)
    python benchmarks/routing.py                    # 40,000 facilities, ≤ 10,000 referrals or 300 s of load
    python benchmarks/routing.py --db sqlite        # the embedded database instead of PostgreSQL

The last line is JSON: facilities, referrals, p50_ms, p95_ms, referrals_per_s, db, machine, plus the CPU time per
referral of the server processes, of the PostgreSQL backends (from /proc: on a shared machine, wall-clock rates
measure the neighbours as much as the code) and of this script's own client threads, how many requests per referral
had to read their user from the database (the server's actor cache missed), and the load average during the run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from proctime import proc_cpu  # benchmarks/ is the script's own directory
from sqlalchemy import create_engine, insert, text

from yilian.network.rules import CAPABILITIES

PG_ADMIN = os.environ.get("YILIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DEPTS = {
    "national_regional_centre": ["急诊科", "心血管内科", "神经内科", "内分泌科", "呼吸与危重症医学科"],
    "tertiary": ["急诊科", "心血管内科", "神经内科", "内分泌科", "呼吸与危重症医学科", "肾内科"],
    "county_hospital": ["急诊科", "心血管内科", "内分泌科", "呼吸内科", "普通外科", "妇产科", "儿科"],
    "township_centre": ["全科医学科", "中医科"],
    "village_clinic": ["全科诊疗"],
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_database(kind: str, root: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{root / 'bench.db'}", lambda: None
    name = f"yilian_bench_routing_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from yilian import db

        db.reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def generate(url: str, facilities_target: int, patients: int, seed: int = 7) -> dict[str, Any]:
    """Bulk-insert divisions, facilities, consortia and patients. Returns the village doctors' usernames."""
    from yilian import migrations
    from yilian.db import get_engine, unit_of_work
    from yilian.fhir import store
    from yilian.network.models import Consortium, ConsortiumMember, Division, Facility
    from yilian.security.models import User
    from yilian.security.passwords import hash_password

    rng = random.Random(seed)
    engine = get_engine(url)
    migrations.upgrade(engine)
    villages_per_town, towns_per_county = 9, 10
    per_county = 2 + towns_per_county * (1 + villages_per_town)
    counties = max(1, facilities_target // per_county + 1)
    cities = max(1, counties // 10)
    divisions: list[dict[str, Any]] = [{"code": "14", "name": "省", "level": "province", "parent_code": None}]
    facilities: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    consortia: list[dict[str, Any]] = []
    villages: list[uuid.UUID] = []

    def fac(code: str, level: str, division: str, lon: float, lat: float, **kw: Any) -> uuid.UUID:
        fid = uuid.uuid4()
        row = {
            "id": fid,
            "code": code,
            "name": f"{level}-{code}",
            "level": level,
            "kind": "general",
            "ownership": "public",
            "division_code": division,
            "lon": lon,
            "lat": lat,
            "position_approximate": True,
            "beds": 0,
            "doctors": 1,
            "nurses": 1,
            "staff_total": 2,
            "departments": DEPTS[level],
            "active": True,
            "parent_id": kw.pop("parent_id", None),
        }
        for cap in CAPABILITIES:
            row[cap] = kw.get(cap, False)
        facilities.append(row)
        return fid

    # Spread cities over a China-sized box so that the router's bounding box has real work to do.
    for ci in range(cities):
        city = f"14{ci:02d}"
        clon, clat = 100 + (ci % 10) * 2.5, 25 + (ci // 10) * 2.5
        divisions.append({"code": city, "name": city, "level": "city", "parent_code": "14", "lon": clon, "lat": clat})
        fac(f"T{city}", "tertiary", city, clon, clat, chest_pain_centre=True, stroke_centre=True)
        if ci % 5 == 0:
            fac(f"R{city}", "national_regional_centre", city, clon + 0.1, clat + 0.1, chest_pain_centre=True)
    for k in range(counties):
        city = f"14{k % cities:02d}"
        county = f"{city}{k // cities + 1:02d}"
        ci = k % cities
        lon = 100 + (ci % 10) * 2.5 + rng.uniform(-0.8, 0.8)
        lat = 25 + (ci // 10) * 2.5 + rng.uniform(-0.8, 0.8)
        divisions.append(
            {"code": county, "name": county, "level": "county", "parent_code": city, "lon": lon, "lat": lat}
        )
        hospital = fac(f"C{county}", "county_hospital", county, lon, lat)
        fac(f"M{county}", "county_hospital", county, lon + 0.01, lat, parent_id=None)
        cid = uuid.uuid4()
        consortia.append(
            {"id": cid, "name": f"医共体{county}", "form": "county_medical_community", "lead_facility_id": hospital}
        )
        members.append({"id": uuid.uuid4(), "consortium_id": cid, "facility_id": hospital, "role": "lead"})
        for t in range(towns_per_county):
            town = f"{county}{t + 100:03d}"
            tlon, tlat = lon + rng.uniform(-0.3, 0.3), lat + rng.uniform(-0.3, 0.3)
            divisions.append(
                {"code": town, "name": town, "level": "township", "parent_code": county, "lon": tlon, "lat": tlat}
            )
            centre = fac(f"S{town}", "township_centre", town, tlon, tlat, parent_id=hospital)
            members.append({"id": uuid.uuid4(), "consortium_id": cid, "facility_id": centre, "role": "member"})
            for v in range(villages_per_town):
                vid = fac(
                    f"V{town}{v:02d}",
                    "village_clinic",
                    town,
                    tlon + rng.uniform(-0.05, 0.05),
                    tlat + rng.uniform(-0.05, 0.05),
                    parent_id=centre,
                )
                members.append({"id": uuid.uuid4(), "consortium_id": cid, "facility_id": vid, "role": "member"})
                if v == 0 and t == 0:
                    villages.append(vid)
    log(f"generating {len(facilities):,} facilities, {len(consortia):,} consortia, {len(divisions):,} divisions …")
    with unit_of_work(engine) as session:
        for table, rows in ((Division, divisions), (Facility, facilities), (Consortium, consortia)):
            for i in range(0, len(rows), 5000):
                session.execute(insert(table), rows[i : i + 5000])
        session.flush()
        for i in range(0, len(members), 5000):
            session.execute(insert(ConsortiumMember), members[i : i + 5000])
        users = []
        hashed = hash_password("benchmark-pw")  # argon2 takes about a second: hash once, share it
        for n, vid in enumerate(villages):
            name = f"village{n}"
            session.add(
                User(username=name, display_name=name, role="village_doctor", facility_id=vid, password_hash=hashed)
            )
            users.append(name)
        patient_refs = []
        batch = []
        for _ in range(patients):
            pid = str(uuid.uuid4())
            batch.append({"resourceType": "Patient", "id": pid, "name": [{"text": "患者"}], "gender": "female"})
            patient_refs.append(f"Patient/{pid}")
            if len(batch) == 2000:
                store.bulk_put(session, batch)
                batch = []
        if batch:
            store.bulk_put(session, batch)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return {"facilities": len(facilities), "users": users, "patients": patient_refs}


def serve(url: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "YILIAN_DATABASE_URL": url, "YILIAN_DATA_DIR": str(data_dir)}
    cmd = [
        sys.executable, "-m", "yilian", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-worker",  # as deployed; outbox delivery is not part of the claim
    ]  # fmt: skip
    logfile = data_dir / "serve.log"
    proc = subprocess.Popen(cmd, env=env, stdout=logfile.open("wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_until_up(proc: subprocess.Popen[bytes], base: str, data_dir: Path) -> None:
    logfile = data_dir / "serve.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the server did not come up:\n{logfile.read_text(errors='replace')[-3000:]}")


def _tree(pid: int) -> list[int]:
    """A process and its descendants (uvicorn's supervisor and its worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return out


def _backends(url: str) -> list[int]:
    if not url.startswith("postgresql"):
        return []
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN)
    try:
        with admin.connect() as conn:
            rows = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            return [int(p) for p in rows]
    finally:
        admin.dispose()


def actor_loads(url: str) -> int | None:
    """Reads of the user table so far (PostgreSQL's statistics): one per request whose actor was not in the
    server's per-process cache. None on SQLite."""
    if not url.startswith("postgresql"):
        return None
    time.sleep(1.5)  # idle backends report their statistics within a second
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    text("SELECT coalesce(idx_scan, 0) + seq_scan FROM pg_stat_user_tables WHERE relname = 'app_user'")
                )
                or 0
            )
    finally:
        engine.dispose()


def cpu_snapshot(server_pid: int, url: str) -> dict[int, float]:
    """CPU seconds so far of the server's processes (positive keys) and our database's backends (negative pids)."""
    snap = {pid: proc_cpu(pid) for pid in _tree(server_pid)}
    snap.update({-pid: proc_cpu(pid) for pid in _backends(url)})
    return snap


def load(
    base: str, tokens: list[str], patients: list[str], total: int, clients: int, seconds: float = 1e9
) -> tuple[list[float], float, int]:
    """Send referrals from `clients` threads, each over one keep-alive connection, until `total` are sent or
    `seconds` have passed. Every answer is read and checked (201 with a ranking) before the next is sent.

    The client is the standard library's http.client rather than httpx: same requests on the wire (HTTP/1.1, JSON,
    bearer token, TCP_NODELAY), at about a tenth of the CPU per request, so that the load generator's share of the
    shared cores goes to the server and the database instead."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    stop_at = time.perf_counter() + seconds
    url = urlsplit(base)

    def worker(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        try:
            while True:
                with lock:
                    i = next(counter, None) if time.perf_counter() < stop_at else None
                if i is None:
                    return
                body = {
                    "patient": patients[i % len(patients)],
                    "diagnosis_codes": [rng.choice(["I10", "E11.9", "J44.1", "I20.0"])],
                    "systolic": rng.choice([150, 186]),
                    "diastolic": rng.choice([95, 114]),
                    "reason": "benchmark",
                    "consent": True,
                }
                headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Content-Type": "application/json"}
                t0 = time.perf_counter()
                try:
                    conn.request("POST", "/api/v1/referrals", body=json.dumps(body).encode(), headers=headers)
                    res = conn.getresponse()
                    data = res.read()
                    ok = res.status == 201 and bool(json.loads(data)["routing"])
                except (OSError, http.client.HTTPException, ValueError, KeyError):
                    conn.close()  # counted as an error; the next request opens a new connection
                    ok = False
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        errors += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, help="stop sending after this long (quick: 30, full: 300)")
    args = parser.parse_args()
    facilities, referrals = (20_000, 1_200) if args.quick else (40_000, 10_000)
    seconds = args.seconds or (30.0 if args.quick else 300.0)
    root = Path(tempfile.mkdtemp(prefix="yilian-bench-routing-"))
    os.environ["YILIAN_DATA_DIR"] = str(root)
    url, drop = make_database(args.db, root)
    os.environ["YILIAN_DATABASE_URL"] = url
    proc = None
    try:
        t0 = time.perf_counter()
        from yilian import migrations
        from yilian.config import get_settings
        from yilian.db import get_engine
        from yilian.security import tokens

        # The server's start-up (imports) overlaps the generation: migrate and fix the signing key first.
        migrations.upgrade(get_engine(url))
        get_settings().resolved_secret_key()
        proc, base = serve(url, root, args.workers)
        built = generate(url, facilities, patients=min(referrals, 5000))
        log(f"network ready in {time.perf_counter() - t0:.1f} s")
        toks = [tokens.issue(u) for u in built["users"]]
        wait_until_up(proc, base, root)
        log(f"server up after {time.perf_counter() - t0:.1f} s")
        warm, _, _ = load(base, toks, built["patients"], 50, 2, 15)  # warm caches and connection pools
        log(
            f"warm-up p50 {statistics.median(warm):.1f} ms; sending {referrals:,} referrals with {args.clients} clients"
        )
        loads_before = actor_loads(url)
        load_before = os.getloadavg()[0]
        cpu_before = cpu_snapshot(proc.pid, url)
        client_before = time.process_time()  # this process: the client threads (is the load generator the limit?)
        latencies, wall, errors = load(base, toks, built["patients"], referrals, args.clients, seconds)
        client_cpu = time.process_time() - client_before
        cpu_after = cpu_snapshot(proc.pid, url)
        load_after = os.getloadavg()[0]
        loads_after = actor_loads(url)
        server_cpu = sum(v - cpu_before.get(k, 0.0) for k, v in cpu_after.items() if k > 0)
        db_cpu = sum(v - cpu_before.get(k, 0.0) for k, v in cpu_after.items() if k < 0)
        done = max(len(latencies), 1)
        latencies.sort()
        result = {
            "facilities": built["facilities"],
            "referrals": len(latencies),
            "errors": errors,
            "clients": args.clients,
            "server_workers": args.workers,
            "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
            "referrals_per_s": round(len(latencies) / wall, 1),
            "server_cpu_ms_per_referral": round(server_cpu * 1000 / done, 1),
            "db_cpu_ms_per_referral": round(db_cpu * 1000 / done, 1),
            "client_cpu_ms_per_referral": round(client_cpu * 1000 / done, 1),
            # Requests that read the user (actor cache miss) per referral sent; None on SQLite.
            "actor_loads_per_referral": (
                round((loads_after - loads_before) / done, 2)
                if loads_after is not None and loads_before is not None
                else None
            ),
            "load_seconds": round(wall, 1),
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "db": args.db,
            "machine": f"{os.cpu_count()} cores (shared)",
        }
        print(json.dumps(result))
    finally:
        try:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:  # a loaded machine: don't leave the server (or the database) behind
                    proc.kill()
                    proc.wait(timeout=20)
        finally:
            drop()


if __name__ == "__main__":
    main()
