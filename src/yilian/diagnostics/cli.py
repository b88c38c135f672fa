"""`yilian diagnostics ...` commands: thin calls into the diagnostics service."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from yilian import migrations
from yilian.db import get_engine, read_session, unit_of_work
from yilian.diagnostics import dicomweb, service

app = typer.Typer(no_args_is_help=True, help="Shared diagnostics: reading centres, recognition, teleconsultation")
err = Console(stderr=True)
out = Console()


@app.command("seed-demo")
def seed_demo(seed: Annotated[int, typer.Option(help="Same seed, same activity.")] = 1) -> None:
    """Add a month of orders, reports, recognition decisions and consultations to a built demo region."""
    from yilian.diagnostics.demo import seed_demo_activity

    migrations.require_current(get_engine())
    with unit_of_work() as session:
        activity = seed_demo_activity(session, seed=seed)
    err.print(f"[green]diagnostics demo[/]: {activity.summary()}" if activity.orders else "nothing added")


@app.command("catalogue")
def catalogue_command() -> None:
    """The recognised items with scope, validity window, price and how many facilities are qualified today."""
    migrations.require_current(get_engine())
    with read_session() as session:
        items = service.catalogue_out(session)
    table = Table()
    for col in ("code", "name", "LOINC", "modality", "scope", "days", "price (yuan)", "qualified"):
        table.add_column(col)
    for i in items:
        table.add_row(
            i.code,
            i.name,
            i.loinc or "",
            i.modality,
            i.scope,
            str(i.validity_days),
            f"{i.price_fen / 100:.2f}",
            str(len(i.qualified_facilities)),
        )
    out.print(table)


@app.command("turnaround")
def turnaround_command(days: Annotated[int, typer.Option(min=1, max=3660)] = 30) -> None:
    """Turnaround per centre and modality (minutes): ordered → received → reported."""
    migrations.require_current(get_engine())
    with read_session() as session:
        rows = service.turnaround(session, since=service.since_days(days))
    table = Table()
    for col in ("centre", "modality", "reports", "open", "overdue", "to read (median)", "total (median)"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.centre,
            r.modality,
            str(r.reports),
            str(r.open),
            str(r.overdue),
            str(r.to_read.median_minutes or ""),
            str(r.total.median_minutes or ""),
        )
    out.print(table)


@app.command("pacs")
def pacs(patient_id: Annotated[str | None, typer.Option(help="PatientID in the PACS.")] = None) -> None:
    """Query the configured PACS (YILIAN_DICOMWEB_URL) by QIDO-RS: checks the connection end to end."""
    for s in dicomweb.search_studies(patient_id=patient_id, limit=20):
        typer.echo(f"{s.study_uid}\t{s.study_date or ''}\t{','.join(s.modalities)}\t{s.description or ''}")
