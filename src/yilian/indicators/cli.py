"""`yilian indicators …`: list the sets, take a snapshot, compute a set for a period, drill into a number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from yilian.db import unit_of_work
from yilian.errors import Invalid
from yilian.indicators import definitions, fhir, rules, service

app = typer.Typer(no_args_is_help=True, help="Indicators: the official monitoring sets computed from the data.")
err = Console(stderr=True)


@app.command("sets")
def sets_command() -> None:
    """List the indicator sets and their indicators."""
    for s in definitions.load_all().values():
        typer.echo(f"{s.id}\t{s.name.zh}\t{s.name.en}")
        for ind in s.indicators:
            typer.echo(f"  {ind.id}\t{ind.unit}\t{ind.name.zh}")


@app.command("snapshot")
def snapshot_command() -> None:
    """Bring the views up to date and freeze what changed into a new snapshot (the last one if nothing changed)."""
    with unit_of_work() as session:
        snap = service.refresh(session, progress=lambda m: err.print(f"  {m}"))
    typer.echo(snap.id)


@app.command("compute")
def compute_command(
    set_id: Annotated[str, typer.Option("--set", help="Indicator set: county-community, referrals, …")],
    period: Annotated[str, typer.Option(help="A year (2026), a month (2026-10) or a range (2026-01..2026-06).")],
    scope: Annotated[str | None, typer.Option(help="Division code (1410, 141021) or consortium id.")] = None,
    format_: Annotated[str, typer.Option("--format", help="json, csv or xlsx.")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output.")] = None,
    snapshot_id: Annotated[str | None, typer.Option("--snapshot", help="Compute on this snapshot.")] = None,
    refresh: Annotated[bool, typer.Option(help="Take a snapshot first (incremental).")] = True,
    measure_report: Annotated[
        bool, typer.Option("--measure-report", help="JSON as a FHIR Bundle of MeasureReports.")
    ] = False,
    lang: Annotated[str, typer.Option(help="zh or en (names in xlsx).")] = "zh",
    by: Annotated[
        str, typer.Option(help="county (every county under the scope) or city (a province city by city).")
    ] = ("county"),
) -> None:
    """Compute a set for a period and print one object per indicator and scope."""
    if format_ not in service.FORMATS:
        raise Invalid(f"--format must be one of {', '.join(service.FORMATS)}", field="--format")
    if by not in ("county", "city"):
        raise Invalid("--by must be county or city", field="--by")
    definitions.get_set(set_id, field="--set")
    rules.parse_period(period, field="--period")
    if format_ == "xlsx" and output is None:
        raise Invalid("xlsx needs --output FILE", field="--output")
    if refresh and snapshot_id is None:
        with unit_of_work() as session:
            snap = service.refresh(session, progress=lambda m: err.print(f"  {m}"))
        snapshot_id = snap.id
    engine = service.open_engine(snapshot_id)
    with err.status(f"computing {set_id} for {period} on snapshot {engine.snap.id}"):
        computed = service.compute(engine, set_id, period, scope, by_city=by == "city")
    err.print(f"[green]{len(computed.results)} results[/] on snapshot {computed.snapshot.id}")
    if format_ == "xlsx":
        assert output is not None
        output.write_bytes(service.to_xlsx(computed, lang))
        err.print(f"wrote {output}")
        return
    if measure_report:
        text = json.dumps(fhir.measure_report_bundle(computed), ensure_ascii=False, indent=1)
    else:
        text = service.to_json(computed.results) if format_ == "json" else service.to_csv(computed.results)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        typer.echo(text)


@app.command("drill")
def drill_command(
    indicator: Annotated[str, typer.Argument(help="Indicator id, e.g. cc.primary_visit_share.")],
    period: Annotated[str, typer.Option()],
    scope: Annotated[str, typer.Option(help="One county, consortium or facility.")],
    part: Annotated[str, typer.Option(help="numerator or denominator")] = "numerator",
    limit: Annotated[int, typer.Option()] = 50,
    snapshot_id: Annotated[str | None, typer.Option("--snapshot")] = None,
) -> None:
    """The rows behind a numerator (or a denominator): the encounters, referrals … that were counted."""
    engine = service.open_engine(snapshot_id)
    rows, total = service.drill(engine, indicator, period, scope, part, limit)
    err.print(f"{total} rows ({len(rows)} shown) on snapshot {engine.snap.id}")
    typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
