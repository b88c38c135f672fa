"""SLA timers that run by themselves: the server sweeps without anyone asking, and `yilian referrals sweep` does the
same once for cron."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from yilian.db import unit_of_work
from yilian.referrals import service

from .conftest import Net
from .test_workflow import send_hypertensive, step


def _overdue(rid: str, by: timedelta) -> None:
    """Move a referral's deadline into the past, as if that much time had gone by (the clock is not ours to turn)."""
    with unit_of_work() as session:
        r = service.by_task(session, rid)
        assert r is not None and r.sla_due_at is not None
        r.sla_due_at = datetime.now(UTC) - by


class SweepingServer:
    """The real app on a loopback port with the background sweep switched on, as `yilian serve` runs it."""

    def __init__(self, interval: float):
        from yilian.app import create_app

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        before = os.environ.get("YILIAN_REFERRALS_SWEEP_SECONDS")
        os.environ["YILIAN_REFERRALS_SWEEP_SECONDS"] = str(interval)  # read once by the app's start-up
        try:
            self.server = uvicorn.Server(
                uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
            )
            self.thread = threading.Thread(target=self.server.run, daemon=True)
            self.thread.start()
            deadline = time.monotonic() + 60
            while not self.server.started:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sweeping server did not start")
                time.sleep(0.05)
        finally:
            if before is None:
                os.environ.pop("YILIAN_REFERRALS_SWEEP_SECONDS")
            else:
                os.environ["YILIAN_REFERRALS_SWEEP_SECONDS"] = before

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def sweeping_server(net: Net) -> Iterator[SweepingServer]:
    server = SweepingServer(interval=0.5)
    yield server
    server.stop()


def _wait_for(net: Net, rid: str, done: Callable[[dict[str, Any]], Any], seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    with net.client("coordinator") as c:
        while True:
            got: dict[str, Any] = c.get(f"/api/v1/referrals/{rid}").json()
            if done(got):
                return got
            assert time.monotonic() < deadline, f"the server did not sweep in {seconds} s: {got['state']}"
            time.sleep(0.3)


def test_the_running_server_escalates_an_overdue_referral_and_expires_a_stale_one_by_itself(
    net: Net, sweeping_server: SweepingServer
) -> None:
    overdue = send_hypertensive(net)["id"]  # urgent: 4 h to accept, expires after 24 h
    stale = send_hypertensive(net)["id"]
    _overdue(overdue, timedelta(minutes=5))
    _overdue(stale, timedelta(days=1))

    escalated = _wait_for(net, overdue, lambda r: r["escalated_at"])
    assert escalated["state"] == "submitted"
    assert escalated["history"][-1]["action"] == "escalate" and escalated["history"][-1]["username"] == "system"
    with net.client("coordinator") as c:
        queue = c.get("/api/v1/referrals", params={"queue": "escalated"}).json()["items"]
    assert overdue in [x["id"] for x in queue]

    expired = _wait_for(net, stale, lambda r: r["state"] == "expired")
    assert expired["history"][-1]["note"] == "unanswered past the SLA"

    time.sleep(1.5)  # three more sweeps: an escalation happens once
    with net.client("coordinator") as c:
        history = c.get(f"/api/v1/referrals/{overdue}").json()["history"]
    assert [e["action"] for e in history].count("escalate") == 1


def test_it_expires_a_referral_accepted_but_never_booked_and_one_whose_patient_never_came(net: Net) -> None:
    never_booked = send_hypertensive(net)["id"]
    no_show = send_hypertensive(net)["id"]
    for rid in (never_booked, no_show):
        step(net, "coordinator", rid, "triage")
        step(net, "coordinator", rid, "offer", {})
        accepted = step(net, "county", rid, "accept")
        assert accepted["sla_due_at"]  # the booking clock runs
    start = datetime.now(UTC) + timedelta(hours=2)
    booked = step(net, "county", no_show, "book", {"start": start.isoformat(), "kind": "outpatient"})
    assert datetime.fromisoformat(booked["sla_due_at"]) > start  # the patient has until a while after the time

    with unit_of_work() as session:
        nothing = service.sweep(session, now=datetime.now(UTC) + timedelta(days=1))
    assert {str(r.id) for r in nothing.expired} & {never_booked, no_show} == set()
    with unit_of_work() as session:
        swept = service.sweep(session, now=datetime.now(UTC) + timedelta(days=8))
        expired = {str(r.id): r.state for r in swept.expired}
    assert expired.get(never_booked) == "expired" and expired.get(no_show) == "expired"
    with net.client("village") as c:
        got = c.get(f"/api/v1/referrals/{no_show}").json()
    assert got["history"][-1]["note"] == "the patient did not arrive"


def test_yilian_referrals_sweep_runs_the_timers_once_for_cron(net: Net) -> None:
    rid = send_hypertensive(net)["id"]
    _overdue(rid, timedelta(minutes=1))
    done = subprocess.run(
        [sys.executable, "-m", "yilian", "referrals", "sweep"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert rid in out["escalated"]
    assert "escalated" in done.stderr
    with httpx.Client(base_url=net.url, headers={"Authorization": f"Bearer {net.users['coordinator']}"}) as c:
        assert c.get(f"/api/v1/referrals/{rid}").json()["escalated_at"]
