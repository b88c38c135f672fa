"""Notifications survive a crash: the outbox worker is killed mid-delivery, restarted, and every referral event
reaches each facility's inbox exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import Engine, func, select

from yilian.db import read_session, unit_of_work
from yilian.events.models import OutboxEvent
from yilian.referrals import service
from yilian.referrals.models import ReferralInboxItem
from yilian.referrals.schemas import ReferralIn
from yilian.security import service as security

from .conftest import Net, make_patient


def _pending() -> int:
    with read_session() as session:
        return int(
            session.scalar(
                select(func.count()).where(OutboxEvent.status == "pending", OutboxEvent.topic.like("referral.%"))
            )
            or 0
        )


def _worker(engine: Engine) -> subprocess.Popen[bytes]:
    env = {**os.environ, "YILIAN_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.Popen([sys.executable, "-m", "yilian", "worker"], env=env, stderr=subprocess.DEVNULL)


def test_it_delivers_every_referral_event_to_the_inboxes_exactly_once_across_a_worker_crash(
    net: Net, engine: Engine
) -> None:
    patients = [make_patient() for _ in range(100)]
    with unit_of_work() as session:
        village = security.actor_for(session, "village")
        coordinator = security.actor_for(session, "coordinator")
        for patient in patients:
            r = service.create(
                session, village, ReferralIn(patient=patient, reason="r", consent=True, diagnosis_codes=["I10"])
            )
            service.submit(session, village, r.id)
            service.triage(session, coordinator, r.id)
            service.offer(session, coordinator, r.id, net.facilities["county"])
    total = _pending()
    assert total >= 300

    first = _worker(engine)
    deadline = time.monotonic() + 60
    # Kill it once its first batch (100 events) is committed: three batches' worth leaves it mid-delivery however
    # fast the machine (with fewer, a fast worker finished the last small batch before the kill landed).
    while _pending() >= total and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-delivery: no clean shutdown
    first.wait(timeout=10)
    assert _pending() > 0, "the worker finished before it could be killed; make the batch bigger"

    second = _worker(engine)
    try:
        deadline = time.monotonic() + 120
        while _pending() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        second.terminate()
        second.wait(timeout=20)
    assert _pending() == 0

    with read_session() as session:
        delivered = list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic.like("referral.%"), OutboxEvent.status == "delivered")
            )
        )
        items = list(session.scalars(select(ReferralInboxItem)))
    expected = sum(len({e.payload[k] for k in ("sender", "receiver", "down") if e.payload.get(k)}) for e in delivered)
    assert len(items) == expected  # nothing lost, nothing twice
    assert len({(i.event_id, i.facility_id) for i in items}) == len(items)

    with net.client("county") as c:
        news = c.get("/api/v1/referrals/inbox", params={"limit": 500}).json()
    assert any(n["topic"] == "referral.offered" for n in news)
