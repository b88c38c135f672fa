"""`yilian referrals ...`: the SLA timers (for cron or a systemd timer) and demo activity."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Two-way referral: SLA timers, demo referrals")
err = Console(stderr=True)


@app.command("sla")
def sla() -> None:
    """Escalate referrals past their acceptance SLA to the referral centre; expire long-unanswered ones."""
    from yilian.db import unit_of_work
    from yilian.referrals import service

    with unit_of_work() as session:
        escalated = service.escalate_overdue(session)
        ids = [str(r.id) for r in escalated]
    err.print(f"{len(ids)} referral(s) escalated")
    typer.echo(json.dumps({"escalated": ids}))


@app.command("seed-demo")
def seed_demo(count: Annotated[int, typer.Option(help="How many referrals to add.")] = 60) -> None:
    """Add demo referrals (both directions, every step of the loop) to a built demo region."""
    from yilian.db import unit_of_work
    from yilian.referrals.demo import seed_demo_referrals

    with unit_of_work() as session:
        states = seed_demo_referrals(session, count=count)
    typer.echo(json.dumps(states, ensure_ascii=False))
