"""`yilian fhir ...` commands."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from yilian import migrations
from yilian.config import get_settings
from yilian.db import get_engine

app = typer.Typer(no_args_is_help=True, help="FHIR store: bulk import and export")
err = Console(stderr=True)


@app.command("import")
def import_(
    paths: Annotated[
        list[Path], typer.Argument(help="NDJSON files (one resource a line), Bundle JSON files or folders.")
    ],
    batch: Annotated[int, typer.Option(help="Resources per transaction.", min=1, max=10000)] = 500,
    report: Annotated[
        Path | None, typer.Option(help="Where rejected lines go (NDJSON with their OperationOutcome).")
    ] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Forget checkpoints and import every file again.")] = False,
    workers: Annotated[
        int, typer.Option(help="Processes that parse and validate NDJSON (0: one per CPU, at most 4).", min=0, max=32)
    ] = 0,
) -> None:
    """Import FHIR resources. Re-running resumes after an interruption; the last stdout line is a JSON summary.

    Exit status 0 when everything was imported, 3 when some resources were rejected (see the report)."""
    from yilian.fhir import bulk

    migrations.require_current(get_engine())
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"[red]no such file:[/] {', '.join(missing)}")
        raise typer.Exit(2)
    files = bulk.expand_paths(paths)
    if report is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        report = get_settings().data_dir / "import-reports" / f"fhir-import-{stamp}.ndjson"
    sizes = {f: max(1, sum(1 for _ in f.open("rb")) if f.suffix == ".ndjson" else 1) for f in files}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        tasks = {f: progress.add_task(f.name[:40], total=sizes[f]) for f in files}

        def on_progress(path: Path, done: int, _n: int) -> None:
            task = tasks.get(path)
            if task is not None:
                total = sizes[path] if path.suffix == ".ndjson" else max(done, 1)
                progress.update(task, completed=done, total=total)

        summary = bulk.import_files(
            files,
            batch_size=batch,
            report_path=report,
            restart=restart,
            workers=workers or min(4, os.cpu_count() or 1),
            on_progress=on_progress,
        )
    result = summary.as_dict()
    if summary.rejected:
        err.print(f"[yellow]{summary.rejected} rejected[/]: see {report}")
    elif report.exists() and report.stat().st_size == 0:
        report.unlink()
        result["report"] = None
    typer.echo(json.dumps(result, ensure_ascii=False))
    if summary.rejected:
        raise typer.Exit(3)
