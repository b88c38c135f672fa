"""`yilian views materialize`: the views in effect as Parquet files, kept up to date incrementally from the snapshot,
and registered (table analytics_materialized_view) so that the indicator engine reads them by name.

Per view: nothing to do when neither its definition nor the snapshot changed; only the resources in the new snapshot
parts are recomputed when just the data changed (their old rows are dropped, their new rows appended); everything is
recomputed when the definition changed. Files are written beside the target and renamed into place, so a reader never
sees half a file and an interrupted run is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.analytics import definitions, snapshot, typed, typed_snapshot
from yilian.analytics.compiler import KEY_COLUMN, CompiledView, compile_view, q, qi
from yilian.analytics.models import MaterializedView
from yilian.analytics.runner import _clean, connect
from yilian.db import utcnow
from yilian.errors import Invalid, NotFound, YilianError


@dataclass(frozen=True)
class Outcome:
    name: str
    rows: int
    mode: str  # "full" | "incremental" | "up to date"
    path: Path
    source: str
    reads: str = ""  # "typed snapshot", or "JSON text (why)": what the rows were computed from


def views_dir(root: Path | None = None) -> Path:
    return (root or snapshot.analytics_dir()) / "views"


def materialize_views(
    session: Session,
    names: list[str] | None = None,
    *,
    root: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Snapshot the store, then bring each view (all in effect, or `names`) up to date; register what was written."""
    say = progress or (lambda _: None)
    in_effect = definitions.views_in_effect(session)
    for name in names or []:
        if name not in in_effect:
            raise NotFound(f"no view named {name!r}; known: {', '.join(in_effect)}", field="--view")
    taken = snapshot.take(session, root)
    say(f"snapshot: part {taken.part}, {taken.new_versions} new resource versions")
    all_parts = snapshot.parts(root)
    todo = names or list(in_effect)
    compiled = {}
    for name, entry in in_effect.items():
        try:
            compiled[name] = typed.fast(compile_view(entry.definition))
        except YilianError:
            if name in todo:
                raise
            # a view not materialised now does not get to stop the others; it only widens no typed snapshot
    # the typed snapshot of each type these views read, covering every view in effect on it (not only the ones
    # materialised now: a later `--view` run then finds its members there instead of rebuilding the file)
    held: dict[str, typed_snapshot.Held] = {}
    for rtype, shape in typed_snapshot.needed(compiled.values()).items():
        if any(compiled[n].resource == rtype for n in todo):
            done = typed_snapshot.refresh(rtype, shape, all_parts, root)
            held[rtype] = done.held
            if done.mode != "up to date":
                say(f"typed snapshot {rtype}: {done.mode}, {done.parsed} resources parsed")
    out = []
    for name in todo:
        done_view = _one(
            session, in_effect[name], compiled[name], held.get(compiled[name].resource), all_parts, views_dir(root)
        )
        out.append(done_view)
        how = f"; from {done_view.reads}" if done_view.reads else ""
        say(f"{name}: {done_view.rows} rows ({done_view.mode}) → {done_view.path}{how}")
    return out


def view_sql(
    compiled: CompiledView,
    paths: list[Path],
    have: typed_snapshot.Held | None,
    only_ids: str | None = None,
) -> tuple[str, str]:
    """(query, what it reads) for the keyed rows of a view: column reads from the typed snapshot when it covers the
    view, else the view over the JSON snapshot; only_ids restricts to the resources in that relation (`res_id`)."""
    reads = typed_snapshot.reads(compiled, have)
    if have is not None and typed_snapshot.covers(have, compiled):
        return compiled.sql_over_typed(typed_snapshot.relation(have, only_ids), keyed=True), reads
    return compiled.sql(f"({snapshot.current_sql(paths, compiled.resource, only_ids)})", keyed=True), reads


def _one(
    session: Session,
    entry: definitions.ViewEntry,
    compiled: CompiledView,
    have: typed_snapshot.Held | None,
    all_parts: list[tuple[int, Path]],
    out_dir: Path,
) -> Outcome:
    last = all_parts[-1][0] if all_parts else 0
    reg = session.get(MaterializedView, entry.name)
    target = out_dir / f"{entry.name}.parquet"
    usable = reg is not None and reg.fingerprint == entry.fingerprint and Path(reg.path).is_file()
    if usable and reg is not None and reg.snapshot_part == last:
        return Outcome(entry.name, reg.rows, "up to date", Path(reg.path), entry.source)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.parquet")
    paths = [p for _, p in all_parts]
    con = connect()
    try:
        if usable and reg is not None:
            mode = "incremental"
            new = [p for n, p in all_parts if n > reg.snapshot_part]
            con.execute(
                "CREATE OR REPLACE TEMP TABLE changed_ids AS SELECT DISTINCT res_id FROM read_parquet("
                + "["
                + ", ".join(q(str(p)) for p in new)
                + f"]) WHERE res_type = {q(compiled.resource)}"
            )
            changed = con.execute("SELECT count(*) FROM changed_ids").fetchone()
            if not changed or changed[0] == 0:
                # new parts, none of them about this view's resource type: the file is already current
                reg.snapshot_part = last
                session.flush()
                return Outcome(entry.name, reg.rows, "up to date", Path(reg.path), entry.source)
            fresh, reads = view_sql(compiled, paths, have, "changed_ids")
            kept = (
                f"SELECT * FROM read_parquet({q(reg.path)}) WHERE {KEY_COLUMN} NOT IN (SELECT res_id FROM changed_ids)"
            )
            query = f"{kept}\nUNION ALL BY NAME\n{fresh}"
        else:
            mode = "full"
            query, reads = view_sql(compiled, paths, have)
        try:
            result = con.execute(f"COPY ({query}) TO {q(str(tmp))} ({typed_snapshot.COPY_OPTIONS})").fetchone()
        except duckdb.Error as exc:
            raise Invalid(f"view {entry.name!r} failed on the data: {_clean(exc)}", field="ViewDefinition") from exc
    finally:
        con.execute("DROP TABLE IF EXISTS changed_ids")
        con.close()
    tmp.replace(target)
    rows = int(result[0]) if result else 0
    if reg is None:
        reg = MaterializedView(name=entry.name)
        session.add(reg)
    reg.resource_type = compiled.resource
    reg.fingerprint = entry.fingerprint
    reg.source = entry.source[:255]
    reg.path = str(target.resolve())
    reg.rows = rows
    reg.snapshot_part = last
    reg.materialized_at = utcnow()
    session.flush()
    return Outcome(entry.name, rows, mode, target, entry.source, reads)


# ---------------------------------------------------------------- what the indicator engine calls


def registered(session: Session) -> list[MaterializedView]:
    return list(session.scalars(select(MaterializedView).order_by(MaterializedView.name)))


def view_path(session: Session, name: str) -> Path:
    """The Parquet file of a materialised view (columns as the view declares, plus _resource_key)."""
    reg = session.get(MaterializedView, name)
    if reg is None or not Path(reg.path).is_file():
        raise NotFound(f"view {name!r} is not materialised: run `yilian views materialize --view {name}`", field=name)
    return Path(reg.path)


def open_views(session: Session, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where every materialised view is a table by its name (`SELECT … FROM encounter`)."""
    con = con or duckdb.connect()
    for reg in registered(session):
        if Path(reg.path).is_file():
            con.execute(
                f"CREATE OR REPLACE VIEW {qi(reg.name)} AS "
                f"SELECT * EXCLUDE ({KEY_COLUMN}) FROM read_parquet({q(reg.path)})"
            )
    return con
