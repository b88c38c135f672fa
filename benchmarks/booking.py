"""Claim: expert-clinic booking is atomic under a crowd — N simultaneous requests for the last K numbers of a day give
exactly K bookings, every number sold once — and fast enough for a county's morning release (latency per booking).

    .venv/bin/python benchmarks/booking.py                       # SQLite file in a temp dir
    .venv/bin/python benchmarks/booking.py --db postgresql://postgres@127.0.0.1:5432/postgres   # a fresh database there
    .venv/bin/python benchmarks/booking.py --same-patient        # the crowd is one patient pressing "book" N times

The real app is served by uvicorn on a loopback port; the crowd is N threads posting at once through HTTP.
Progress first; the LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="PostgreSQL server URL (a database is created and dropped); default SQLite")
    parser.add_argument("--crowd", type=int, default=200, help="simultaneous booking requests")
    parser.add_argument("--quota", type=int, default=30)
    parser.add_argument("--left", type=int, default=5, help="numbers still free when the crowd arrives")
    parser.add_argument(
        "--same-patient", action="store_true", help="every request books the same patient: exactly one may succeed"
    )
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    name = f"yilian_bench_booking_{uuid.uuid4().hex[:6]}"
    admin = None
    if args.db:
        admin = create_engine(args.db.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.db.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/{name}.db"
    os.environ["YILIAN_DATABASE_URL"] = url
    os.environ.setdefault("YILIAN_DATA_DIR", tempfile.mkdtemp())
    os.environ.setdefault("YILIAN_OUTREACH_ALERT_INTERVAL_MINUTES", "0")  # only booking runs in this server
    try:
        print(json.dumps(run(args), ensure_ascii=False))
    finally:
        if admin is not None:
            from yilian import db

            db.reset_engines()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(args: argparse.Namespace) -> dict[str, object]:
    import httpx
    import uvicorn

    from yilian import db, migrations
    from yilian.app import create_app
    from yilian.network import service as network
    from yilian.network.models import Division
    from yilian.network.schemas import FacilityIn, PractitionerIn
    from yilian.outreach import clinics
    from yilian.outreach.schemas import ClinicIn, PatientIn
    from yilian.security import tokens
    from yilian.security.models import User

    engine = db.get_engine()
    migrations.upgrade(engine)
    day = clinics.local_now().date() + timedelta(days=1)
    with db.unit_of_work() as s:
        s.add(Division(code="3702", name="青岛市", level="city"))
        s.flush()
        top = network.create_facility(
            s, FacilityIn(code="QDSL", name="青岛市市立医院", level="tertiary", division_code="3702")
        )
        county = network.create_facility(
            s, FacilityIn(code="LXRM", name="莱西市人民医院", level="county_hospital", division_code="3702")
        )
        expert = network.create_practitioner(
            s,
            PractitionerIn(name="张三", gender="male", title="chief", specialty="cardiology", home_facility_id="QDSL"),
        )
        clinic = clinics.create_clinic(
            s, ClinicIn(practitioner_id=str(expert.id), facility="LXRM", daily_quota=args.quota, days=[day])
        )
        for i in range(args.quota - args.left):
            clinics.book(s, clinic.id, day, PatientIn(name=f"早到{i}", phone=f"1370000{i:04d}"))
        s.add(
            User(username="desk", display_name="desk", role="county_doctor", facility_id=county.id, password_hash="!")
        )
        clinic_id = str(clinic.id)
        del top
    token = tokens.issue("desk")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    print(f"server on :{port} ({engine.dialect.name}); {args.crowd} requests for the last {args.left} numbers")

    start_gate = threading.Barrier(args.crowd)

    def patient(i: int) -> dict[str, str]:
        if args.same_patient:
            return {"name": "心急的王先生", "phone": "13900000001"}
        return {"name": f"抢号{i}", "phone": f"139{i:08d}"}

    def attempt(i: int) -> tuple[int, float]:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            start_gate.wait()
            t0 = time.perf_counter()
            r = c.post(
                f"/api/v1/outreach/clinics/{clinic_id}/bookings",
                json={"day": str(day), "patient": patient(i), "waitlist": False},
                headers={"Authorization": f"Bearer {token}"},
            )
            return r.status_code, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.crowd) as pool:
        results = list(pool.map(attempt, range(args.crowd)))
    wall = time.perf_counter() - t0
    server.should_exit = True
    thread.join(timeout=10)

    from sqlalchemy import func, select

    from yilian.outreach.models import Appointment, Slot

    with db.read_session() as s:
        numbers = s.scalars(select(Slot.number).join(Appointment, Appointment.slot_id == Slot.id)).all()
        busy = s.scalar(select(func.count(Slot.id)).where(Slot.status == "busy"))
    statuses = [code for code, _ in results]
    latencies = sorted(ms for _, ms in results)
    booked = statuses.count(201)
    expected = min(1, args.left) if args.same_patient else args.left
    sold = args.quota - args.left + expected
    print(
        f"{booked} booked, {statuses.count(409)} refused (409: full, or the patient already has a number), others: {sorted(set(statuses) - {201, 409})}"
    )
    return {
        "db": engine.dialect.name,
        "crowd": args.crowd,
        "left": args.left,
        "same_patient": args.same_patient,
        "booked": booked,
        "refused_409": statuses.count(409),
        "errors": len([c for c in statuses if c not in (201, 409)]),
        "exactly_expected_booked": booked == expected,
        "numbers_sold_once": sorted(numbers) == list(range(1, sold + 1)) and busy == sold,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "wall_s": round(wall, 2),
        "machine": f"{os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    main()
