"""`yilian twin ...`: run a scenario, compare two, regenerate the calibration report. Results on stdout, progress on stderr."""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yilian.db import unit_of_work
from yilian.errors import Invalid
from yilian.twin import calibration, engine, scenarios

app = typer.Typer(
    no_args_is_help=True, help="Digital twin: simulate patient flows of a region and test reforms before making them."
)
err = Console(stderr=True)
out = Console()

Years = Annotated[float, typer.Option(help="Simulated years.")]
Reps = Annotated[int, typer.Option(help="Replications (independent random streams).")]
Seed = Annotated[int, typer.Option(help="Seed: the same seed gives the same output.")]
Scale = Annotated[
    float | None, typer.Option(help="Share of the census population to simulate (default: the scenario's).")
]
Region = Annotated[
    str | None, typer.Option(help="Comma-separated county, city or province codes (default: the scenario's).")
]
Workers = Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")]
Format = Annotated[str, typer.Option("--format", help="json or table.")]


def _region(region: str | None) -> list[str] | None:
    if not region:
        return None
    from yilian.twin.population import counties_of

    return [c for code in region.split(",") if code.strip() for c in counties_of(code.strip())]


def _progress(total: int, label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
    )


def _clean(obj: Any) -> Any:
    """JSON has no NaN: an indicator that cannot be computed (no events) is null."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else round(obj, 6)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _check_format(fmt: str) -> None:
    if fmt not in ("json", "table"):
        raise Invalid("format must be json or table", field="format")


@app.command("run")
def run_cmd(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario YAML file or the name of a shipped scenario.")],
    years: Years = 1.0,
    replications: Reps = 10,
    seed: Seed = 1,
    scale: Scale = None,
    region: Region = None,
    workers: Workers = None,
    fmt: Format = "json",
    registry: Annotated[
        bool, typer.Option("--registry", help="Take facilities from the registry database instead of synthetic ones.")
    ] = False,
) -> None:
    """Run a scenario and print the indicator set with 95 % intervals, per county and for the region."""
    _check_format(fmt)
    sc = scenarios.load(scenario)
    with ExitStack() as stack:
        # The registry is read once while the world is built; the simulation itself never touches the database.
        session = stack.enter_context(unit_of_work()) if registry else None
        with _progress(replications, f"[bold]{sc.name}[/]") as bar:
            task = bar.add_task("run", total=replications)
            world, per_rep, timing = scenarios.run(
                sc,
                years=years,
                replications=replications,
                seed=seed,
                scale=scale,
                region=_region(region),
                workers=workers,
                on_done=lambda k: bar.update(task, completed=k),
                session=session,
            )
    doc = scenarios.result_document(sc, world, per_rep, timing, years=years, seed=seed)
    err.print(
        f"[green]done[/]: {timing['events']:,.0f} events in {timing['simulate_s']:.1f} s ({timing['events_per_s']:,.0f} events/s)"
    )
    if fmt == "json":
        typer.echo(json.dumps(_clean(doc), ensure_ascii=False))
    else:
        _print_table(f"{sc.name}", doc["region"])


@app.command("compare")
def compare_cmd(
    base: Annotated[str, typer.Argument(help="Baseline scenario YAML (or shipped name).")],
    new: Annotated[str, typer.Argument(help="Scenario to compare with it.")],
    years: Years = 1.0,
    replications: Reps = 10,
    seed: Seed = 1,
    scale: Scale = None,
    region: Region = None,
    workers: Workers = None,
    fmt: Format = "json",
) -> None:
    """Differences NEW − BASE per indicator with 95 % intervals (same population and random streams)."""
    _check_format(fmt)
    b, n = scenarios.load(base), scenarios.load(new)
    with _progress(2 * replications, f"[bold]{b.name} vs {n.name}[/]") as bar:
        task = bar.add_task("compare", total=2 * replications)
        state = {"offset": 0}

        def done(k: int) -> None:
            bar.update(task, completed=state["offset"] + k)
            if k == replications:
                state["offset"] += replications

        doc = scenarios.compare(
            b,
            n,
            years=years,
            replications=replications,
            seed=seed,
            scale=scale,
            region=_region(region),
            workers=workers,
            on_done=done,
        )
    if fmt == "json":
        typer.echo(json.dumps(_clean(doc), ensure_ascii=False))
    else:
        _print_table(f"{n.name} − {b.name}", doc["difference"]["region"])
        for code, vals in doc["difference"]["counties"].items():
            _print_table(f"{vals.get('name', code)} ({code})", {k: v for k, v in vals.items() if k != "name"})


@app.command("calibrate")
def calibrate_cmd(
    output: Annotated[Path, typer.Option(help="Where to write the report.")] = calibration.REPORT,
    replications: Reps = 4,
    seed: Seed = 1,
    scale: Annotated[float, typer.Option(help="Share of the census population to simulate.")] = 0.1,
    workers: Workers = None,
) -> None:
    """Run the baseline against the calibration targets and regenerate docs/twin-calibration.md."""
    with _progress(2 * replications, "[bold]calibration[/]") as bar:
        task = bar.add_task("calibrate", total=2 * replications)
        state = {"offset": 0}

        def done(k: int) -> None:
            bar.update(task, completed=state["offset"] + k)
            if k == replications:
                state["offset"] += replications

        report = calibration.calibrate(replications=replications, seed=seed, scale=scale, workers=workers, on_done=done)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(calibration.to_markdown(report), encoding="utf-8")
    passed = sum(1 for r in report["rows"] if r["pass"])
    err.print(f"[green]wrote {output}[/]: {passed}/{len(report['rows'])} targets within tolerance")
    if passed < len(report["rows"]):
        raise typer.Exit(1)


@app.command("scenarios")
def list_scenarios() -> None:
    """List the scenarios shipped with Yilian."""
    for path in scenarios.shipped():
        sc = scenarios.load(path)
        typer.echo(f"{path.name}\t{sc.name}\t{len(sc.region)} counties\t{len(sc.changes)} changes")


def _print_table(title: str, values: dict[str, dict[str, float]]) -> None:
    table = Table(title=title)
    for col in ("indicator", "mean", "95% interval"):
        table.add_column(col)
    for key, v in values.items():
        if not isinstance(v, dict):
            continue
        table.add_row(engine.INDICATORS.get(key, key), f"{v['mean']:,.3f}", f"{v['low']:,.3f} – {v['high']:,.3f}")
    out.print(table)
