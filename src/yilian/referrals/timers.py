"""SLA timers that run by themselves: a sweep the web app starts with itself, every `YILIAN_REFERRALS_SWEEP_SECONDS`.

Without it a referral escalated only when somebody called the timers. The sweep runs in every server process (a
second server sweeping at the same time skips the rows the first holds), and `yilian referrals sweep` runs it once for
cron or a systemd timer where the server's own sweep is switched off (0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yilian.db import unit_of_work
from yilian.referrals import service

log = logging.getLogger("yilian.referrals.timers")


class TimerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YILIAN_REFERRALS_", extra="ignore")

    sweep_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the server runs the SLA timers (escalation, expiry); 0 = never (run the CLI from cron).",
    )


@dataclass(frozen=True)
class Swept:
    escalated: list[str]
    expired: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"escalated": self.escalated, "expired": self.expired}


def sweep_once(now: datetime | None = None) -> Swept:
    """One sweep in its own transaction."""
    with unit_of_work() as session:
        result = service.sweep(session, now)
        return Swept([str(r.id) for r in result.escalated], [str(r.id) for r in result.expired])


async def run_periodically(interval: float) -> None:
    """Sweep, wait `interval` seconds, repeat, until cancelled. A failed sweep is logged and tried again next time:
    the timers must outlive a database restart."""
    while True:
        try:
            swept = await anyio.to_thread.run_sync(sweep_once)
            if swept.escalated or swept.expired:
                log.info("referral SLA sweep: %d escalated, %d expired", len(swept.escalated), len(swept.expired))
        except Exception:
            log.exception("referral SLA sweep failed; trying again in %s s", interval)
        await asyncio.sleep(interval)


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """Start the sweep with the web app and stop it with it (attached to the referrals' router)."""
    interval = TimerSettings().sweep_seconds  # read at start-up, not cached: each server reads its own environment
    if interval <= 0:
        yield
        return
    task = asyncio.create_task(run_periodically(interval), name="referral-sla-sweep")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
