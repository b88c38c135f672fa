"""Work the server does by itself: raising attendance alerts (a resident expert below the days-on-site rule in a
week) every `YILIAN_OUTREACH_ALERT_INTERVAL_MINUTES` (default 60; 0 turns it off), started and stopped with the web
app. `yilian outreach alerts` runs the same once, for cron. Both are safe together: an alert is raised once per
expert and week (unique key), however many runs see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from yilian.db import unit_of_work
from yilian.outreach import visits
from yilian.outreach.settings import outreach_settings

log = logging.getLogger("yilian.outreach.jobs")


def raise_alerts_once(today: date | None = None) -> int:
    """One run in its own transaction; returns how many alerts were new."""
    with unit_of_work() as session:
        return visits.raise_due_alerts(session, today=today)


async def _every(minutes: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            # The database work is synchronous: keep it off the event loop that serves requests.
            new = await asyncio.to_thread(raise_alerts_once)
            if new:
                log.info("outreach: %d attendance alert(s) raised", new)
        except Exception:  # a failed run (database briefly away) must not end the job; the next run catches up
            log.exception("outreach: raising attendance alerts failed; retrying at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=minutes * 60)


@asynccontextmanager
async def alert_job(minutes: float | None = None) -> AsyncIterator[asyncio.Task[None] | None]:
    """Run the alert job for as long as the context is open (the app's lifespan); yields the task, or None when the
    interval is 0."""
    interval = outreach_settings().alert_interval_minutes if minutes is None else minutes
    if interval <= 0:
        yield None
        return
    stop = asyncio.Event()
    task = asyncio.create_task(_every(interval, stop), name="outreach-alerts")
    try:
        yield task
    finally:
        stop.set()
        # A run in progress finishes its transaction (it is in a thread); shutdown waits for it briefly.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=30)
