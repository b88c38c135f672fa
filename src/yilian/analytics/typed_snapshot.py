"""The typed snapshot: the current state of each resource type as nested, typed Parquet columns.

`<data_dir>/analytics/typed/<Type>.parquet`, columns `res_id, _fhir` where `_fhir` is a STRUCT holding the members
that the views in effect on that type read — the union of their typed shapes (`CompiledView.shape`), e.g. for
Encounter `{id, status, class: {code}, type: [{coding: [{code}]}], …}`. A view whose shape the file covers is
materialised by reading these columns (`CompiledView.sql_over_typed`) instead of parsing each resource's JSON text
again; a view that needs a member the file lacks, or that only the JSON compiler can run, reads JSON text.

Why the union of the views' members rather than a full R4 schema (as Pathling encodes): a STRUCT of all R4 elements,
even depth-limited, has thousands of leaves per type (Observation alone ≈ 1,500 at depth 3), and writing and reading
them costs more than parsing the few dozen the views read; here the file holds exactly what is read. The price is
that a new view reading a member no earlier view read makes the next refresh rebuild that type's file once (one
JSON parse of every resource of the type, the same work as materialising one view from JSON text).

Kept up to date from the JSON snapshot (`snapshot.py`): the shape and the newest snapshot part folded in are stored
in the file's own Parquet key-value metadata (written together with the data, so they cannot disagree after an
interrupted run). A refresh rebuilds the file when the needed shape is not covered, and otherwise replaces only the
rows of resources that appear in newer parts (their newest version, parsed; a deleted resource simply loses its row).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from yilian.analytics import snapshot
from yilian.analytics.compiler import CompiledView, q
from yilian.analytics.dialect import DUCKDB

SHAPE_KEY = "yilian_shape"
PART_KEY = "yilian_part"
# what the view files and the typed snapshot are written with: DuckDB's defaults (snappy, 122,880-row groups) were
# measured against zstd, lz4 and no compression on the benchmark views: within 10 % of each other, snappy fastest
COPY_OPTIONS = "FORMAT parquet"


def typed_dir(root: Path | None = None) -> Path:
    return (root or snapshot.analytics_dir()) / "typed"


def path_for(resource_type: str, root: Path | None = None) -> Path:
    return typed_dir(root) / f"{resource_type}.parquet"


@dataclass(frozen=True)
class Held:
    """What a typed snapshot file holds: its STRUCT shape and the newest JSON snapshot part folded in."""

    path: Path
    shape: dict
    part: int


def held(resource_type: str, root: Path | None = None) -> Held | None:
    path = path_for(resource_type, root)
    if not path.is_file():
        return None
    con = duckdb.connect()
    try:
        meta = {
            bytes(k).decode(): bytes(v).decode()
            for k, v in con.execute(f"SELECT key, value FROM parquet_kv_metadata({q(str(path))})").fetchall()
        }
    finally:
        con.close()
    if SHAPE_KEY not in meta or PART_KEY not in meta:
        return None
    return Held(path, json.loads(meta[SHAPE_KEY]), int(meta[PART_KEY]))


# ---------------------------------------------------------------- shapes


def merge(a: object, b: object) -> object:
    """The smallest shape covering both (a member read as a STRUCT by one view and only for existence — "json" —
    by another is kept as the STRUCT: existence is the same test on either)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])]
    if a == "json" and isinstance(b, dict):
        return b
    if b == "json" and isinstance(a, dict):
        return a
    return b  # the same primitive kind (both come from the R4 model), or a view the other cannot serve


def missing(have: object, need: object, at: str = "") -> list[str]:
    """The member paths `need` reads that `have` lacks (or holds with another type); [] when `have` covers it."""
    if isinstance(need, dict):
        if not isinstance(have, dict):
            return [at or "(resource)"]
        out: list[str] = []
        for k, v in need.items():
            where = f"{at}.{k}" if at else k
            out += missing(have[k], v, where) if k in have else [where]
        return out
    if isinstance(need, list):
        return missing(have[0], need[0], at) if isinstance(have, list) else [at]
    if need == "json":
        return [] if have == "json" or isinstance(have, dict) else [at]
    return [] if have == need else [at]


def needed(views: Iterable[CompiledView]) -> dict[str, dict]:
    """Per resource type, the union of the shapes of the typed views on it."""
    out: dict[str, dict] = {}
    for view in views:
        if view.shape is None or view.engine != "typed (duckdb)":
            continue
        merged = merge(out.get(view.resource, {}), view.shape)
        assert isinstance(merged, dict)
        out[view.resource] = merged
    return out


def reads(view: CompiledView, have: Held | None) -> str:
    """How a materialisation of `view` reads its resources, in words (for progress lines and `explain`)."""
    if view.shape is None:
        return "JSON text (the JSON compiler runs this view)"
    if have is None:
        return f"JSON text (no typed snapshot of {view.resource} yet; `yilian views materialize` builds it)"
    lacking = missing(have.shape, view.shape)
    if lacking:
        return (
            f"JSON text (the typed snapshot of {view.resource} lacks {', '.join(lacking[:5])}"
            f"{' …' if len(lacking) > 5 else ''}; the next `yilian views materialize` widens it)"
        )
    return "typed snapshot"


def covers(have: Held | None, view: CompiledView) -> bool:
    return have is not None and view.shape is not None and not missing(have.shape, view.shape)


def relation(have: Held, only_ids: str | None = None) -> str:
    """SQL relation of `_fhir` rows (all current resources, or those whose res_id is in the relation only_ids)."""
    where = f" WHERE res_id IN (SELECT res_id FROM {only_ids})" if only_ids else ""
    return f"(SELECT _fhir FROM read_parquet({q(str(have.path))}){where})"


# ---------------------------------------------------------------- refresh


@dataclass(frozen=True)
class Refreshed:
    resource_type: str
    mode: str  # "full" | "incremental" | "up to date"
    parsed: int  # resources parsed from JSON text by this refresh
    held: Held


def refresh(resource_type: str, shape: dict, all_parts: list[tuple[int, Path]], root: Path | None = None) -> Refreshed:
    """Bring the typed snapshot of one type up to date with the JSON snapshot's parts, covering `shape`."""
    have = held(resource_type, root)
    last = all_parts[-1][0] if all_parts else 0
    paths = [p for _, p in all_parts]
    target = path_for(resource_type, root)
    con = duckdb.connect()
    try:
        if have is not None and not missing(have.shape, shape):
            if have.part == last:
                return Refreshed(resource_type, "up to date", 0, have)
            new = [p for n, p in all_parts if n > have.part]
            con.execute(
                f"CREATE TEMP TABLE changed_ids AS SELECT DISTINCT res_id FROM read_parquet({_files(new)}) "
                f"WHERE res_type = {q(resource_type)}"
            )
            found = con.execute("SELECT count(*) FROM changed_ids").fetchone()
            if not found or found[0] == 0:
                # newer parts, none about this type: the file is current (its part is left as it is, so the
                # next refresh looks at those parts again — a scan of two columns, cheaper than rewriting)
                return Refreshed(resource_type, "up to date", 0, have)
            mode, shape = "incremental", have.shape
            fresh = snapshot.current_sql(paths, resource_type, "changed_ids")
            query = (
                f"SELECT res_id, _fhir FROM read_parquet({q(str(have.path))}) "
                f"WHERE res_id NOT IN (SELECT res_id FROM changed_ids)\n"
                f"UNION ALL\nSELECT res_id, {DUCKDB.parse_json('resource', shape)} AS _fhir FROM ({fresh}) AS fresh"
            )
            counted = con.execute(f"SELECT count(*) FROM ({fresh}) AS fresh").fetchone()
        else:
            mode = "full"
            if have is not None:
                # keep what the file already serves: views read through it were covered, and stay covered
                merged = merge(have.shape, shape)
                assert isinstance(merged, dict)
                shape = merged
            every = snapshot.current_sql(paths, resource_type)
            query = f"SELECT res_id, {DUCKDB.parse_json('resource', shape)} AS _fhir FROM ({every}) AS current"
            counted = None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.parquet")
        meta = {SHAPE_KEY: json.dumps(shape, separators=(",", ":")), PART_KEY: str(last)}
        kv = "{" + ", ".join(f"{k}: {q(v)}" for k, v in meta.items()) + "}"
        written = con.execute(f"COPY ({query}) TO {q(str(tmp))} ({COPY_OPTIONS}, KV_METADATA {kv})").fetchone()
        counted = counted or written  # a full build parses every row it writes
    finally:
        con.close()
    tmp.replace(target)
    return Refreshed(resource_type, mode, int(counted[0]) if counted else 0, Held(target, shape, last))


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(q(str(p)) for p in paths) + "]"
