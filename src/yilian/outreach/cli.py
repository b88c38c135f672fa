"""`yilian outreach ...`: seed demo activity, list programmes, solve a month's roster, check residents' days on site."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from yilian.db import read_session, unit_of_work
from yilian.outreach import clinics, demo, jobs, service, visits
from yilian.outreach.rostering import SolverOptions

app = typer.Typer(no_args_is_help=True, help="Expert outreach: programmes, clinics, rosters, compliance.")
err = Console(stderr=True)
out = Console()


@app.command("demo")
def demo_command() -> None:
    """Add outreach activity (two programmes, clinics, bookings, check-ins, rosters) to a built demo region."""
    with unit_of_work() as session:
        seeded = demo.seed_demo(session)
    err.print(f"[green]{seeded.summary()}[/]")


@app.command("programmes")
def programmes_command() -> None:
    """Programmes with their ids."""
    with read_session() as session:
        for p in service.list_programmes(session):
            typer.echo(f"{p.id}\t{p.name}\t{len(service.list_postings(session, p.id))} postings")


@app.command("roster")
def roster_command(
    programme: Annotated[str, typer.Argument(help="Programme id")],
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    time_limit: Annotated[float, typer.Option(help="Solver time limit in seconds.")] = 20,
) -> None:
    """Solve (or re-solve around locks) a programme's month; prints the validator's verdict as JSON."""
    with unit_of_work() as session:
        roster = service.solve_roster(session, programme, month, SolverOptions(time_limit_seconds=time_limit))
    for s in roster.shortfalls:
        err.print(f"[yellow]{s['message']}[/]")
    typer.echo(
        json.dumps(
            {
                "roster": str(roster.id),
                "status": roster.solver_status,
                "feasible": roster.feasible,
                "entries": len(roster.entries),
                "unmet_sessions": roster.unmet_sessions,
                "violations": len(roster.violations),
            }
        )
    )


@app.command("compliance")
def compliance_command(
    programme: Annotated[str, typer.Argument(help="Programme id")],
    weeks: Annotated[int, typer.Option(help="How many past weeks to show.")] = 4,
    alert: Annotated[bool, typer.Option("--alert", help="Queue an alert for each short week just ended.")] = False,
) -> None:
    """Residents' days on site per week against their rule; short weeks in red."""
    today = clinics.local_now().date()
    monday = today - timedelta(days=today.weekday())
    first: date = monday - timedelta(days=7 * weeks)
    with unit_of_work() as session:
        rows = visits.compliance(session, programme, first, today)
        queued = visits.raise_compliance_alerts(session, programme, monday - timedelta(days=7)) if alert else 0
    table = Table("expert", "hospital", "rule", *[f"{w.week_start:%m-%d}" for w in (rows[0].weeks if rows else [])])
    for row in rows:
        cells = [
            f"[red]{w.on_site}/{w.required}[/]" if w in row.alerts else f"{w.on_site}/{w.required}" for w in row.weeks
        ]
        table.add_row(row.practitioner_name, row.facility_name, f"≥{row.min_days_per_week}/wk", *cells)
    out.print(table)
    if alert:
        err.print(f"{queued} new alert(s) queued (an expert-week already alerted is not alerted again)")


@app.command("alerts")
def alerts_command(
    today: Annotated[str | None, typer.Option(help="Run as if today were this date (YYYY-MM-DD).")] = None,
) -> None:
    """Raise the attendance alerts of every programme for the last finished weeks, once per expert-week: for cron
    (`0 * * * * yilian outreach alerts`) where the server's own job is off (YILIAN_OUTREACH_ALERT_INTERVAL_MINUTES=0).
    Prints {"new_alerts": N} as JSON."""
    try:
        day = date.fromisoformat(today) if today else None
    except ValueError:
        raise typer.BadParameter(f"{today!r} is not YYYY-MM-DD", param_hint="--today") from None
    typer.echo(json.dumps({"new_alerts": jobs.raise_alerts_once(day)}))
