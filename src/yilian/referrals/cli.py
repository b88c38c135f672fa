"""`yilian referrals ...`: the SLA timers (for cron or a systemd timer) and demo activity."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Two-way referral: SLA timers (sweep), demo referrals")
err = Console(stderr=True)


@app.command("sweep")
def sweep() -> None:
    """Run the SLA timers once: escalate referrals past their acceptance deadline to the referral centre, expire
    stale ones (unanswered, accepted but never booked, booked but the patient never came). For cron or a systemd
    timer; `yilian serve` also sweeps by itself every YILIAN_REFERRALS_SWEEP_SECONDS (default 60, 0 = off)."""
    from yilian.referrals import timers

    swept = timers.sweep_once()
    err.print(f"{len(swept.escalated)} referral(s) escalated, {len(swept.expired)} expired")
    typer.echo(json.dumps(swept.as_dict()))


@app.command("sla", hidden=True)
def sla() -> None:
    """The former name of `sweep`."""
    sweep()


@app.command("seed-demo")
def seed_demo(count: Annotated[int, typer.Option(help="How many referrals to add.")] = 60) -> None:
    """Add demo referrals (both directions, every step of the loop) to a built demo region."""
    from yilian.db import unit_of_work
    from yilian.referrals.demo import seed_demo_referrals

    with unit_of_work() as session:
        states = seed_demo_referrals(session, count=count)
    typer.echo(json.dumps(states, ensure_ascii=False))
