"""Run compiled ViewDefinitions on DuckDB over resources from Python, NDJSON, JSON/Bundle or Parquet snapshots.

The resources relation every compiled view reads is `resources(resource_type VARCHAR, resource JSON)`. A Parquet
snapshot has a `resource` column (JSON text) and, ideally, `resource_type`; NDJSON files are read by DuckDB directly.
"""

from __future__ import annotations

import atexit
import calendar
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
from duckdb import func as duckdb_func

from yilian.analytics import typed
from yilian.analytics.compiler import KEY_COLUMN, MACROS, CompiledView, compile_view, q
from yilian.errors import Invalid

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[dict[str, Any]]


# ---------------------------------------------------------------- the Python fallback (fhirpathpy)


def fp_boundary(value: str, hint: str, high: bool) -> str | None:
    """lowBoundary()/highBoundary() of one JSON value; hint is the FHIR type when the view names it (ofType)."""
    result = _boundary(json.loads(value, parse_float=Decimal), high, hint)
    return None if result is None else json.dumps(result, default=_json_default)


def _boundary(value: Any, high: bool, hint: str = "") -> Any:
    """lowBoundary()/highBoundary() for decimals, dates, dateTimes and times (fhirpathpy lacks them)."""
    text = str(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        d = Decimal(text)
        exp = d.as_tuple().exponent
        places = -exp if isinstance(exp, int) and exp < 0 else 0
        half = Decimal(5) * Decimal(10) ** -(places + 1)
        return float(d + half if high else d - half)
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text)
    if m and hint in ("dateTime", "instant"):
        date = _boundary(text, high)
        return f"{date}T{_time_boundary('', high)}{'-12:00' if high else '+14:00'}"
    if m:
        year = int(m.group(1))
        month = int(m.group(2) or (12 if high else 1))
        last = calendar.monthrange(year, month)[1]
        day = int(m.group(3) or (last if high else 1))
        return f"{year:04d}-{month:02d}-{day:02d}"
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)(Z|[+-]\d{2}:\d{2})?", text)
    if m:
        tz = m.group(3) or ("-12:00" if high else "+14:00")
        return f"{m.group(1)}T{_time_boundary(m.group(2), high)}{tz}"
    m = re.fullmatch(r"T?(\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)", text)
    if m:
        return _time_boundary(m.group(1), high)
    return None


def _time_boundary(t: str, high: bool) -> str:
    parts = t.split(":") if t else []
    hh = parts[0] if parts else ("23" if high else "00")
    mm = parts[1] if len(parts) > 1 else ("59" if high else "00")
    ss = parts[2] if len(parts) > 2 else ("59.999" if high else "00.000")
    if "." not in ss:
        ss += ".999" if high else ".000"
    return f"{hh}:{mm}:{ss}"


_USER_FUNCTIONS = {
    "lowBoundary": {"fn": lambda coll: [_boundary(_plain(v), False) for v in coll], "arity": {0: []}},
    "highBoundary": {"fn": lambda coll: [_boundary(_plain(v), True) for v in coll], "arity": {0: []}},
}


def _plain(v: Any) -> Any:
    data = getattr(v, "data", v)
    return str(data) if type(data).__name__.startswith("FP_") else data


@lru_cache(maxsize=256)
def _compiled_fhirpath(expression: str) -> Any:
    import fhirpathpy
    from fhirpathpy.models import models

    return fhirpathpy.compile(expression, models["r4"], options={"userInvocationTable": _USER_FUNCTIONS})


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    return str(v)


def fp_eval(expression: str, this: str | None, resource: str | None, row_index: int | None, constants: str) -> str:
    """Evaluate one FHIRPath with fhirpathpy: the fallback for what the SQL compiler cannot express."""
    if this is None:
        return "[]"
    focus = json.loads(this)
    env = json.loads(constants)
    env["rowIndex"] = row_index or 0
    if resource is not None:
        env["resource"] = json.loads(resource)
        env["rootResource"] = env["resource"]
    result = _compiled_fhirpath(expression)(focus, env)
    return json.dumps([getattr(r, "data", r) for r in result], default=_json_default)


# ---------------------------------------------------------------- connections and sources


@lru_cache(maxsize=1)
def _database() -> duckdb.DuckDBPyConnection:
    # Opening DuckDB costs ~0.1 s; one in-memory database per process holds the macros and the fallback UDF, and each
    # run works in its own cursor with uniquely named relations.
    con = duckdb.connect(":memory:")
    for name, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
    con.create_function(
        "fp_eval",
        fp_eval,
        ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR"],
        "VARCHAR",
        null_handling=duckdb_func.SPECIAL,
        side_effects=False,
    )
    con.create_function("fp_boundary", fp_boundary, ["VARCHAR", "VARCHAR", "BOOLEAN"], "VARCHAR", side_effects=False)
    # closing before interpreter shutdown keeps the binding from reporting leaked objects on stderr
    atexit.register(con.close)
    return con


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB cursor with the compiler's macros and the Python functions installed."""
    con = _database().cursor()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


_counter = itertools.count(1)


def fresh_name(prefix: str = "resources") -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


def iter_file_resources(path: Path) -> Iterator[dict[str, Any]]:
    """Resources in a JSON file: one resource, a JSON array of resources, a Bundle, or NDJSON."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise Invalid(f"{path}:{n}: not JSON: {exc.msg}", field=str(path)) from exc
        return
    yield from _flatten(data, str(path))


def _flatten(data: Any, where: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item, where)
    elif isinstance(data, dict) and data.get("resourceType") == "Bundle":
        for entry in data.get("entry", []) or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]
    elif isinstance(data, dict):
        yield data
    else:
        raise Invalid(f"{where}: expected FHIR resources (objects), found {type(data).__name__}", field=where)


def _is_paths(source: object) -> bool:
    if isinstance(source, str | os.PathLike):
        return True
    return isinstance(source, list | tuple) and bool(source) and all(isinstance(s, str | os.PathLike) for s in source)


def register_source(con: duckdb.DuckDBPyConnection, source: Source, name: str | None = None) -> str:
    """Make `name(resource_type, resource)` available on con; return the relation name."""
    name = name or fresh_name()
    if _is_paths(source):
        paths = [Path(source)] if isinstance(source, str | os.PathLike) else [Path(p) for p in source]  # type: ignore[arg-type]
        parts: list[str] = []
        loose: list[dict[str, Any]] = []
        ndjson = [p for p in paths if p.suffix in (".ndjson", ".jsonl")]
        parquet = [p for p in paths if p.suffix == ".parquet"]
        for p in paths:
            if not p.exists():
                raise Invalid(f"{p}: no such file", field=str(p))
            if p not in ndjson and p not in parquet:
                loose.extend(iter_file_resources(p))
        if ndjson:
            files = "[" + ", ".join(q(str(p)) for p in ndjson) + "]"
            parts.append(
                "SELECT json_extract_string(json, '$.resourceType') AS resource_type, json AS resource "
                f"FROM read_json_objects({files}, format = 'newline_delimited')"
            )
        if parquet:
            files = "[" + ", ".join(q(str(p)) for p in parquet) + "]"
            cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({files})").fetchall()}
            if "resource" not in cols:
                raise Invalid(f"{parquet[0]}: a snapshot needs a 'resource' column of FHIR JSON", field=str(parquet[0]))
            rtype = "resource_type" if "resource_type" in cols else "json_extract_string(resource, '$.resourceType')"
            parts.append(
                f"SELECT {rtype} AS resource_type, CAST(resource AS JSON) AS resource FROM read_parquet({files})"
            )
        if loose:
            parts.append(_register_dicts(con, loose, f"{name}_loose"))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + " UNION ALL ".join(parts))
        return name
    resources: list[dict[str, Any]] = []
    for i, r in enumerate(source):  # type: ignore[arg-type]
        if not isinstance(r, dict):
            raise Invalid(f"resource {i} is not a JSON object", field=f"resources[{i}]")
        resources.append(r)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {_register_dicts(con, resources, f'{name}_rows')}")
    return name


def _register_dicts(con: duckdb.DuckDBPyConnection, resources: list[dict[str, Any]], name: str) -> str:
    # two list parameters unnested: no pandas/pyarrow import, fine for the sizes people pass from Python
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS "
        "SELECT unnest($1::VARCHAR[]) AS resource_type, unnest($2::VARCHAR[]) AS resource",
        [[r.get("resourceType") for r in resources], [json.dumps(r, ensure_ascii=False) for r in resources]],
    )
    return f"SELECT resource_type, CAST(resource AS JSON) AS resource FROM {name}"


def drop_source(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"DROP VIEW IF EXISTS {name}")
    for suffix in ("_rows", "_loose"):
        con.execute(f"DROP TABLE IF EXISTS {name}{suffix}")


# ---------------------------------------------------------------- running


def _python_value(value: Any, sql_type: str) -> Any:
    if value is None:
        return None
    if sql_type == "JSON":
        return json.loads(value)
    if sql_type == "JSON[]":
        return [json.loads(v) if v is not None else None for v in value]
    return value


def _as_compiled(view: dict | CompiledView) -> CompiledView:
    """The fastest form of a view: typed (one JSON parse per resource) when the typed compiler covers it."""
    return typed.fast(view if isinstance(view, CompiledView) else compile_view(view))


def execute(
    con: duckdb.DuckDBPyConnection, compiled: CompiledView, relation: str = "resources", *, keyed: bool = False
) -> list[dict]:
    compiled = _as_compiled(compiled)
    try:
        cur = con.execute(compiled.sql(relation, keyed=keyed))
        rows = cur.fetchall()
    except duckdb.Error as exc:
        raise Invalid(f"view {compiled.name!r} failed on the data: {_clean(exc)}", field="ViewDefinition") from exc
    names = [c.name for c in compiled.columns] + ([KEY_COLUMN] if keyed else [])
    types = compiled.types + (["VARCHAR"] if keyed else [])
    return [{n: _python_value(v, t) for n, v, t in zip(names, row, types, strict=True)} for row in rows]


def _clean(exc: Exception) -> str:
    text = str(exc).strip()
    for prefix in ("Invalid Input Error: ", "Conversion Error: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.splitlines()[0] if text else type(exc).__name__


def run_view(view: dict | CompiledView, resources: Source, *, keyed: bool = False) -> list[dict]:
    """Evaluate a ViewDefinition over resources (dicts, or NDJSON/JSON/Bundle/Parquet paths); rows as dicts.

    keyed adds `_resource_key`, the id of the resource each row came from."""
    compiled = _as_compiled(view)
    con = connect()
    relation = register_source(con, resources)
    try:
        return execute(con, compiled, relation, keyed=keyed)
    finally:
        drop_source(con, relation)
        con.close()


def materialize(view: dict | CompiledView, source: Source, target: str | os.PathLike[str]) -> int:
    """Run a view over a snapshot (Parquet/NDJSON files or resources) and write the rows to a Parquet file."""
    compiled = _as_compiled(view)
    con = connect()
    relation = register_source(con, source)
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            result = con.execute(f"COPY ({compiled.sql(relation)}) TO {q(str(target))} (FORMAT parquet)").fetchone()
        except duckdb.Error as exc:
            raise Invalid(f"view {compiled.name!r} failed on the data: {_clean(exc)}", field="ViewDefinition") from exc
        return int(result[0]) if result else 0
    finally:
        drop_source(con, relation)
        con.close()


def write_rows(
    con_or_none: duckdb.DuckDBPyConnection | None, compiled: CompiledView, relation: str, fmt: str, target: str
) -> int:
    """Write a view's rows straight from DuckDB to a csv or parquet file."""
    assert con_or_none is not None
    compiled = _as_compiled(compiled)
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    try:
        result = con_or_none.execute(f"COPY ({compiled.sql(relation)}) TO {q(target)} ({options})").fetchone()
    except duckdb.Error as exc:
        raise Invalid(f"view {compiled.name!r} failed on the data: {_clean(exc)}", field="ViewDefinition") from exc
    return int(result[0]) if result else 0
