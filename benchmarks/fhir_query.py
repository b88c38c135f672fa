"""FHIR query latency: read by id and `Observation?patient=X&code=Y&date=ge...` under 8 concurrent clients.

Loads a Synthea-like data set into PostgreSQL (or reuses the database that `fhir_ingest.py --keep` left, topping it
up to --resources), serves it with `yilian serve` in a child process, and drives it over HTTP with bearer tokens from
8 client threads: every request goes through authentication, access policy, the audit row and JSON shaping, as a
real client's would. Prints p50/p95/p99 per kind; the last line is JSON.

    python benchmarks/fhir_query.py                                  # 1,000,000 resources
    python benchmarks/fhir_query.py --database yilian_bench_ingest_…  # reuse an ingest database (then drop it)
    python benchmarks/fhir_query.py --quick                          # 50,000 resources
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
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
from urllib.parse import urlencode

from proctime import proc_cpu  # benchmarks/ is the script's own directory

PG = os.environ.get("YILIAN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of a process and its descendants (uvicorn's worker processes), by pid."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return {pid: proc_cpu(pid) for pid in tree}


def _backends_cpu(admin: Any, name: str) -> dict[int, float]:
    from sqlalchemy import text

    with admin.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name}).scalars().all()
    return {pid: proc_cpu(pid) for pid in pids}


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


class KeepAlive:
    """One keep-alive HTTP/1.1 connection that sends GET requests and reads each answer whole (Content-Length or
    chunked). The load generator shares the two cores with the server and PostgreSQL: httpx cost ≈ 1.4 ms of CPU a
    request, more than a tenth of the total, and this ≈ a tenth of that, for the same bytes on the wire."""

    def __init__(self, host: str, port: int, head: bytes) -> None:
        self.address, self.head = (host, port), head
        self.sock: socket.socket | None = None
        self.file: Any = None

    def close(self) -> None:
        if self.sock is not None:
            self.file.close()
            self.sock.close()
        self.sock = self.file = None

    def get(self, target: str) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.file = self.sock.makefile("rb")
        self.sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\n" + self.head)
        status_line = self.file.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        if chunked:
            parts = []
            while size := int(self.file.readline().split(b";")[0], 16):
                parts.append(self.file.read(size))
                self.file.readline()
            self.file.readline()
            body = b"".join(parts)
        else:
            body = self.file.read(length)
        if close:
            self.close()
        return status, body


def _check(kind: str, status: int, body: bytes, res_id: str | None) -> tuple[str | None, int]:
    """What is wrong with an answer (None when it is what was asked for), and a search's number of entries."""
    if status != 200:
        return f"{status}", 0
    try:
        data = json.loads(body)
    except ValueError:
        return "not JSON", 0
    if kind == "read":
        ok = data.get("resourceType") == "Observation" and data.get("id") == res_id
        return (None if ok else "another resource"), 0
    entries = data.get("entry", [])
    ok = data.get("type") == "searchset" and all(e["resource"]["resourceType"] == "Observation" for e in entries)
    return (None if ok else "not a searchset of Observations"), len(entries)


def _load(wanted: int, *, seed: int) -> None:
    """Set-up, not the claim: write generated resources with the store's bulk writer (`store.bulk_put`: COPY into the
    resource, version and index tables, search-index extraction included), in batches of one transaction each.

    The generator's resources are valid R4 (`fhir_ingest.py` imports the same data through the validating
    `yilian fhir import`, which is the import claim); skipping validation here makes a 1,000,000-resource load take
    minutes instead of an hour."""
    import fhir_synthetic

    from yilian.db import unit_of_work
    from yilian.fhir import store

    patients = max(1, wanted // 509 + 1)
    print(f"loading {patients:,} patients (≈ {patients * 509:,} resources) with store.bulk_put …", file=sys.stderr)
    t0, done, batch = time.perf_counter(), 0, []

    def flush() -> None:
        nonlocal done
        with unit_of_work() as session:
            store.bulk_put(session, batch)
        done += len(batch)
        batch.clear()
        if done % 100_000 < 5_000:
            print(f"  {done:,} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    for res in fhir_synthetic.resources(patients, 500, seed=seed):
        batch.append(res)
        if len(batch) >= 5_000:
            flush()
    if batch:
        flush()
    print(f"  loaded {done:,} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def _serve_profiled(port: int, path: str) -> None:
    """The app in this process (as one uvicorn worker would run it) under cProfile, every thread included, timed in
    each thread's CPU time; the statistics are written when uvicorn stops (SIGTERM from the benchmark)."""
    import cProfile
    import pstats

    import uvicorn

    from yilian.web.serving import TCPConfig

    profiles: list[cProfile.Profile] = []
    guard = threading.Lock()

    def start() -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU of this thread: waits for PostgreSQL are not work
        with guard:
            profiles.append(profile)
        profile.enable()

    def first_event(*_: Any) -> None:  # a new thread's first call: give it a profiler of its own
        sys.setprofile(None)
        start()

    from yilian.app import create_app

    app = create_app()  # imports and set-up outside the profile: it is about requests
    config = TCPConfig(app, host="127.0.0.1", port=port, log_level="warning")
    threading.setprofile(first_event)
    # uvicorn re-raises the SIGTERM it shut down on, under the handler that was there before: make it one that
    # returns, so that the statistics get written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    start()
    try:
        uvicorn.Server(config).run()
    finally:
        stats = None
        for profile in profiles:
            profile.disable()
            profile.create_stats()
            if profile.stats:  # type: ignore[attr-defined]
                stats = pstats.Stats(profile) if stats is None else stats.add(profile)
        if stats is not None:
            stats.dump_stats(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        help="a database to build once and reuse: created when missing, topped up to --resources, never dropped",
    )
    parser.add_argument("--load-only", action="store_true", help="build/top up the database, then stop")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (`yilian serve --workers`)")
    parser.add_argument("--requests", type=int, default=4000, help="in all, half reads and half searches")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="serve with one process under cProfile (every thread: the event loop and the route threads) instead of "
        "`yilian serve`, and write the statistics to PATH (pstats) when the run ends; its times are not comparable",
    )
    parser.add_argument("--serve-profiled", nargs=2, metavar=("PORT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_profiled:
        _serve_profiled(int(args.serve_profiled[0]), args.serve_profiled[1])
        return
    if args.quick:
        args.resources, args.requests = 50_000, 1000

    from sqlalchemy import create_engine, text

    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    name = args.database or f"yilian_bench_query_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="fhir-query-"))
    env = {**os.environ, "YILIAN_DATABASE_URL": url, "YILIAN_DATA_DIR": str(work / "data")}
    os.environ.update(env)

    import httpx

    from yilian import db, migrations
    from yilian.db import unit_of_work
    from yilian.errors import Conflict
    from yilian.security import service, tokens

    server = None
    try:
        engine = db.get_engine()
        migrations.upgrade(engine)
        with engine.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM fhir_resource")).scalar_one()
        if have < args.resources:
            _load(args.resources - have, seed=1000 + have)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            total = conn.execute(text("SELECT count(*) FROM fhir_resource")).scalar_one()
            # As autovacuum leaves a table some time after a load: statistics, and the visibility map without which
            # index-only scans visit the heap and the planner probes fresh index ends (≈ 2 ms of planning a search).
            # Autocommit: VACUUM runs outside a transaction.
            conn.execute(text("VACUUM (ANALYZE)"))
            sample = "TABLESAMPLE SYSTEM (2)" if total > 200_000 else ""  # a random page sample, or every row
            observations = list(
                conn.execute(
                    text(f"SELECT res_id FROM fhir_resource {sample} WHERE res_type = 'Observation' LIMIT 2000")
                ).scalars()
            )
            patients_ = list(
                conn.execute(
                    text("SELECT res_id FROM fhir_resource WHERE res_type = 'Patient' ORDER BY random() LIMIT 500")
                ).scalars()
            )
        if args.load_only:
            print(json.dumps({"database": name, "resources": total}))
            return
        try:
            with unit_of_work() as session:
                service.create_user(session, username="bench.admin", password="benchmark-only", role="system_admin")
        except Conflict:  # a reused database keeps the user of an earlier run
            pass
        token = tokens.issue("bench.admin")
        db.reset_engines()

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        if args.profile:
            command = [sys.executable, __file__, "--serve-profiled", str(port), str(Path(args.profile).resolve())]
        else:
            command = [sys.executable, "-m", "yilian", "serve", "--port", str(port), "--no-worker"]
            command += ["--workers", str(args.workers)]
        server = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600  # under load, importing the app in each worker takes minutes
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")

        head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nAccept: application/fhir+json\r\n\r\n"
        lat: dict[str, list[float]] = {"read": [], "search": []}
        sizes: list[int] = []
        errors: list[str] = []
        lock = threading.Lock()
        per_client = args.requests // args.clients

        def client(seed: int) -> None:
            rng = random.Random(seed)
            http = KeepAlive("127.0.0.1", port, head.encode())
            try:
                for n in range(per_client + 10):
                    if n % 2 == 0:
                        kind, res_id = "read", rng.choice(observations)
                        target = f"/fhir/Observation/{res_id}"
                    else:
                        kind = "search"
                        query = {
                            "patient": rng.choice(patients_),
                            "code": "http://loinc.org|8480-6",
                            "date": f"ge{rng.randint(2019, 2023)}-{rng.randint(1, 12):02d}-01",
                        }
                        target = f"/fhir/Observation?{urlencode(query)}"
                    t0 = time.perf_counter()
                    try:
                        status, body = http.get(target)
                    except OSError as exc:
                        with lock:
                            errors.append(f"{type(exc).__name__} {target}")
                        http.close()
                        continue
                    ms = (time.perf_counter() - t0) * 1000
                    problem, hits = _check(kind, status, body, res_id if kind == "read" else None)
                    if n < 10:
                        continue  # warm-up: connection set-up and first queries
                    with lock:
                        if problem:
                            errors.append(f"{problem} {target}")
                        lat[kind].append(ms)
                        if kind == "search":
                            sizes.append(hits)
            finally:
                http.close()

        load_start = os.getloadavg()
        server_before, db_before = _tree_cpu(server.pid), _backends_cpu(admin, name)
        client_before = time.process_time()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        server_cpu = _used(server_before, _tree_cpu(server.pid))
        db_cpu = _used(db_before, _backends_cpu(admin, name))
        client_cpu = time.process_time() - client_before
        done = len(lat["read"]) + len(lat["search"])
        sent = args.clients * (per_client + 10)  # warm-up requests included: the CPU counters saw them
        result = {
            "resources": total,
            "clients": args.clients,
            "requests": done,
            "errors": len(errors),
            "read_p50_ms": _pct(lat["read"], 0.50),
            "read_p95_ms": _pct(lat["read"], 0.95),
            "read_p99_ms": _pct(lat["read"], 0.99),
            "search_p50_ms": _pct(lat["search"], 0.50),
            "search_p95_ms": _pct(lat["search"], 0.95),
            "search_p99_ms": _pct(lat["search"], 0.99),
            "search_mean_hits": round(statistics.mean(sizes), 1) if sizes else 0,
            "requests_per_s": round(sent / wall, 1),
            # CPU per request over the timed phase (warm-up included), load-independent: the server's processes,
            # the PostgreSQL backends of its connections, and the 8 client threads of this script.
            "server_cpu_ms_per_request": round(server_cpu / sent * 1000, 2),
            "db_cpu_ms_per_request": round(db_cpu / sent * 1000, 2),
            "client_cpu_ms_per_request": round(client_cpu / sent * 1000, 2),
            "server": "one process under cProfile" if args.profile else f"yilian serve --workers {args.workers}",
            "db": "postgresql",
            "machine": f"{os.cpu_count()} cores, shared",
            "load_avg_1m_start": round(load_start[0], 1),
            "load_avg_1m_end": round(os.getloadavg()[0], 1),
        }
        if errors:
            print(f"errors, e.g. {errors[:3]}", file=sys.stderr)
        print(json.dumps(result))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        db.reset_engines()
        if not (args.keep or args.database):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
