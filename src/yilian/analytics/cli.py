"""`yilian views ...` commands."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from yilian.analytics import catalogue
from yilian.analytics.compiler import CompiledView, compile_view
from yilian.analytics.runner import connect, drop_source, execute, materialize, register_source, write_rows
from yilian.errors import YilianError

app = typer.Typer(no_args_is_help=True, help="SQL on FHIR ViewDefinitions: run, materialise, explain")
err = Console(stderr=True)

FORMATS = ("json", "csv", "parquet")


def _fail(exc: YilianError) -> None:
    field = f" ({exc.field})" if exc.field else ""
    err.print(f"[red]error{field}:[/] {escape(exc.message)}", highlight=False)
    raise typer.Exit(2)


def load_view(spec: str) -> dict:
    """A ViewDefinition from a JSON file, or one of the views shipped with Yilian by name."""
    from yilian.errors import Invalid

    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise Invalid(f"{spec}: no such file", field="VIEW")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise Invalid(f"{spec}: not JSON ({exc.msg} at line {exc.lineno})", field="VIEW") from exc
        if not isinstance(data, dict):
            raise Invalid(f"{spec}: a ViewDefinition is a JSON object", field="VIEW")
        return data
    return catalogue.get(spec)


def _write_json(rows: list[dict[str, Any]], out: Any) -> None:
    out.write("[")
    for i, row in enumerate(rows):
        out.write(("\n" if i == 0 else ",\n") + json.dumps(row, ensure_ascii=False, default=str))
    out.write("\n]\n" if rows else "]\n")


def _write_csv(compiled: CompiledView, rows: list[dict[str, Any]], out: Any) -> None:
    writer = csv.writer(out)
    names = [c.name for c in compiled.columns]
    writer.writerow(names)
    for row in rows:
        writer.writerow(
            [
                ""
                if row[n] is None
                else json.dumps(row[n], ensure_ascii=False)
                if isinstance(row[n], list | dict)
                else row[n]
                for n in names
            ]
        )


@app.command("run")
def run(
    view: Annotated[
        str, typer.Argument(help="ViewDefinition JSON file, or the name of a shipped view (yilian views list).")
    ],
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Resources: NDJSON (.ndjson/.jsonl), JSON (resource, array or Bundle) or Parquet snapshot."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json (a list of objects), csv or parquet.")] = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print the generated SQL and any Python-fallback columns; run nothing.")
    ] = False,
) -> None:
    """Evaluate a view over the given resources and print the rows."""
    try:
        compiled = compile_view(load_view(view))
        if explain:
            typer.echo(compiled.explain())
            return
        if fmt not in FORMATS:
            raise _invalid(f"--format must be one of {', '.join(FORMATS)}", "--format")
        if not files:
            raise _invalid("give at least one file of resources (NDJSON, JSON, Bundle or Parquet)", "FILES")
        if fmt == "parquet" and output is None:
            raise _invalid("--format parquet needs --output FILE", "--output")
        con = connect()
        relation = register_source(con, [str(f) for f in files])
        try:
            if output is not None and fmt in ("csv", "parquet"):
                n = write_rows(con, compiled, relation, fmt, str(output))
                err.print(f"{n} rows → {output}", highlight=False)
                return
            rows = execute(con, compiled, relation)
        finally:
            drop_source(con, relation)
            con.close()
        if output is not None:
            with output.open("w", encoding="utf-8", newline="") as fh:
                _write_json(rows, fh)
            err.print(f"{len(rows)} rows → {output}", highlight=False)
        elif fmt == "csv":
            _write_csv(compiled, rows, sys.stdout)
        else:
            _write_json(rows, sys.stdout)
    except YilianError as exc:
        _fail(exc)


def _invalid(message: str, field: str) -> YilianError:
    from yilian.errors import Invalid

    return Invalid(message, field=field)


@app.command("explain")
def explain_cmd(
    view: Annotated[str, typer.Argument(help="ViewDefinition JSON file or shipped view name.")],
    spark_sql: Annotated[
        bool, typer.Option("--spark", help="Print the Spark SQL instead (over a relation `resources`).")
    ] = False,
) -> None:
    """Print a view's columns, the DuckDB SQL it compiles to, what falls back to Python, and whether
    `yilian views materialize` reads it from the typed snapshot's columns or from JSON text."""
    try:
        if spark_sql:
            from yilian.analytics.spark import compile_spark

            typer.echo(compile_spark(load_view(view)).sql("resources"))
        else:
            from yilian.analytics import typed, typed_snapshot

            compiled = compile_view(load_view(view))
            typer.echo(compiled.explain())
            runs = typed.fast(compiled)
            have = typed_snapshot.held(runs.resource) if runs.shape is not None else None
            typer.echo(f"materialize reads: {typed_snapshot.reads(runs, have)}")
    except YilianError as exc:
        _fail(exc)


@app.command("list")
def list_views() -> None:
    """The views in effect: shipped with Yilian, or stored at /fhir/ViewDefinition (when the database is there)."""
    from sqlalchemy.exc import SQLAlchemyError

    from yilian.analytics import definitions
    from yilian.db import read_session

    try:
        with read_session() as session:
            views = definitions.views_in_effect(session)
    except SQLAlchemyError:  # no database yet (or not migrated): the shipped views are still in effect
        views = definitions.views_in_effect(None)
    for name, entry in views.items():
        compiled = compile_view(entry.definition)
        columns = ", ".join(c.name for c in compiled.columns)
        typer.echo(f"{name}\t{compiled.resource}\t{entry.source}\t{columns}")


@app.command("materialize")
def materialize_cmd(
    source: Annotated[
        list[Path] | None,
        typer.Argument(help="Snapshot files (Parquet with a 'resource' column, or NDJSON). Default: the FHIR store."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="With SOURCE files: directory for VIEW.parquet (default var/views).")
    ] = None,
    view: Annotated[
        list[str] | None,
        typer.Option("--view", help="View name (or file, with SOURCE); repeat for several. Default: all."),
    ] = None,
) -> None:
    """Write views as Parquet. Without SOURCE: snapshot the FHIR store (only what changed), bring every view in effect
    up to date incrementally and register it for the indicator engine."""
    try:
        if source:
            target_dir = out or Path("var/views")
            for spec in view or catalogue.names():
                compiled = compile_view(load_view(spec))
                target = target_dir / f"{compiled.name}.parquet"
                n = materialize(compiled, [str(s) for s in source], target)
                err.print(f"{compiled.name}: {n} rows → {target}", highlight=False)
            return
        from yilian.analytics.materialize import materialize_views
        from yilian.db import unit_of_work

        with unit_of_work() as session:
            materialize_views(session, view, progress=lambda line: err.print(line, highlight=False, soft_wrap=True))
    except YilianError as exc:
        _fail(exc)


@app.command("registered")
def registered_cmd() -> None:
    """The materialised views the indicator engine reads: name, rows, source definition, file."""
    from yilian.analytics.materialize import registered
    from yilian.db import read_session

    with read_session() as session:
        for reg in registered(session):
            typer.echo(f"{reg.name}\t{reg.rows}\t{reg.source}\t{reg.materialized_at:%Y-%m-%d %H:%M}Z\t{reg.path}")


if __name__ == "__main__":
    # `python -m yilian.analytics.cli` is `yilian views` without importing every other domain's commands
    app()
