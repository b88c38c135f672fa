"""Indicator snapshots: the tables of schema.py as Parquet files, frozen together under one id.

`<data_dir>/indicators/tables/<table>-<fingerprint>.parquet` holds each distinct version of a table once;
`<data_dir>/indicators/snapshots/<id>.json` lists which version of every table a snapshot is made of. Taking a snapshot
writes only the tables whose fingerprint changed since the last one (a view's fingerprint is its definition and how far
into the FHIR snapshot it was materialised, so an unchanged view is not even read); when nothing changed, the last
snapshot is returned as it is. Every result names the snapshot it came from, and a snapshot never changes afterwards.

With each activity table the snapshot keeps it *prepared*: `<data_dir>/indicators/prepared/<table>-<fingerprint>.parquet`,
the table with the registry joined in and the derived columns (`prepare.enrich`), whose fingerprint is that of the
table and of the tables it reads (facility, patient). It is written when one of them changed, so an engine opening a new
snapshot reads ready-joined tables, and an encounter table that did not change is not joined again.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from yilian.config import get_settings
from yilian.errors import NotFound
from yilian.indicators import prepare, schema


@dataclass(frozen=True)
class TableInfo:
    path: Path
    rows: int
    fingerprint: str
    source: str = ""
    prepared: Path | None = None  # the table with the registry joined in (prepare.enrich)
    prepared_fingerprint: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: str
    taken_at: datetime
    root: Path
    tables: dict[str, TableInfo] = field(default_factory=dict)
    written: tuple[str, ...] = ()  # tables written by the call that returned this snapshot (empty: reused)
    prepared: tuple[str, ...] = ()  # tables prepared (registry joined in) by that call

    def manifest(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "taken_at": self.taken_at.isoformat(),
            "tables": {
                n: {
                    "file": str(t.path.relative_to(self.root)),
                    "rows": t.rows,
                    "fingerprint": t.fingerprint,
                    "source": t.source,
                    **(
                        {
                            "prepared": str(t.prepared.relative_to(self.root)),
                            "prepared_fingerprint": t.prepared_fingerprint,
                        }
                        if t.prepared
                        else {}
                    ),
                }
                for n, t in sorted(self.tables.items())
            },
        }


def default_root() -> Path:
    return get_settings().data_dir / "indicators"


def _snap_dir(root: Path) -> Path:
    return root / "snapshots"


def load(snapshot_id: str, root: Path | None = None) -> Snapshot:
    root = root or default_root()
    path = _snap_dir(root) / f"{snapshot_id}.json"
    if not path.is_file() or "/" in snapshot_id:
        raise NotFound(f"no indicator snapshot {snapshot_id!r}: run `yilian indicators snapshot`", field="snapshot")
    data = json.loads(path.read_text(encoding="utf-8"))
    tables = {
        n: TableInfo(
            root / t["file"],
            int(t["rows"]),
            t["fingerprint"],
            t.get("source", ""),
            root / t["prepared"] if t.get("prepared") else None,  # a snapshot of before prepared tables has none
            t.get("prepared_fingerprint", ""),
        )
        for n, t in data["tables"].items()
    }
    return Snapshot(data["id"], datetime.fromisoformat(data["taken_at"]), root, tables)


def latest(root: Path | None = None) -> Snapshot | None:
    root = root or default_root()
    found = sorted(_snap_dir(root).glob("*.json"))
    return load(found[-1].stem, root) if found else None


def fingerprint_of(data: pa.Table) -> str:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, data.schema) as w:
        w.write_table(data)
    return hashlib.sha256(sink.getvalue()).hexdigest()[:16]


Source = Callable[[], pa.Table]


def write(
    tables: dict[str, pa.Table | list[dict[str, Any]] | tuple[str, Source]],
    root: Path | None = None,
    *,
    source: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Snapshot:
    """A snapshot from tables in the snapshot format. A value is either the table itself, or (fingerprint, loader):
    the loader runs only when no stored table has that fingerprint. Tables not given are carried over from the last
    snapshot; schema tables never given at all are absent (and read as "not recorded")."""
    root = root or default_root()
    unknown = set(tables) - set(schema.TABLES)
    if unknown:
        raise NotFound(f"no snapshot table {sorted(unknown)}; known: {', '.join(schema.TABLES)}", field="table")
    prev = latest(root)
    infos: dict[str, TableInfo] = dict(prev.tables) if prev else {}
    written = []
    (root / "tables").mkdir(parents=True, exist_ok=True)
    for name, value in tables.items():
        if isinstance(value, list):
            value = pa.Table.from_pylist(value, schema=schema.arrow_schema(name))
        if isinstance(value, tuple):
            fp, loader = value
            data = None
        else:
            data = schema.conform(name, value)
            fp, loader = fingerprint_of(data), None
        path = root / "tables" / f"{name}-{fp}.parquet"
        if name in infos and infos[name].fingerprint == fp and infos[name].path.is_file():
            continue
        if path.is_file():
            rows = pq.ParquetFile(path).metadata.num_rows
        else:
            if data is None:
                assert loader is not None
                data = schema.conform(name, loader())
            tmp = path.with_suffix(".tmp")
            pq.write_table(data, tmp)
            tmp.replace(path)
            rows = data.num_rows
            written.append(name)
        infos[name] = TableInfo(path, rows, fp, (source or {}).get(name, ""))
    prepared = _prepare(infos, root)

    def versions(ts: dict[str, TableInfo]) -> dict[str, tuple[str, str]]:
        return {n: (t.fingerprint, t.prepared_fingerprint) for n, t in ts.items()}

    if prev is not None and versions(infos) == versions(prev.tables):
        return prev
    taken = now or datetime.now(UTC).replace(tzinfo=None)
    combined = hashlib.sha256(json.dumps(sorted((n, t.fingerprint) for n, t in infos.items())).encode()).hexdigest()
    snap = Snapshot(f"{taken:%Y%m%dT%H%M%S}-{combined[:8]}", taken, root, infos, tuple(written), tuple(prepared))
    _snap_dir(root).mkdir(parents=True, exist_ok=True)
    target = _snap_dir(root) / f"{snap.id}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(snap.manifest(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)
    return snap


def _prepare(infos: dict[str, TableInfo], root: Path) -> list[str]:
    """Give every activity table of `infos` its prepared version (in place), writing those not stored yet; the names
    of the tables written. DuckDB joins and writes them (in parallel, without going through Python objects)."""
    con = ibis.duckdb.connect()
    opened: dict[str, ir.Table] = {}

    def base(name: str) -> ir.Table:
        if name not in opened:
            info = infos.get(name)
            if info is not None and info.rows > 0:
                opened[name] = con.read_parquet(str(info.path), table_name=f"s_{name}")
            else:
                opened[name] = ibis.memtable(schema.arrow_schema(name).empty_table())
        return opened[name]

    written = []
    try:
        for name in prepare.PREPARED:
            info = infos.get(name)
            if info is None or info.rows == 0:
                continue
            reads = [(other, infos[other].fingerprint if other in infos else "") for other in prepare.reads(name, base)]
            key = json.dumps([prepare.VERSION, name, info.fingerprint, reads])
            fp = hashlib.sha256(key.encode()).hexdigest()[:16]
            path = root / "prepared" / f"{name}-{fp}.parquet"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                con.to_parquet(prepare.enrich(name, base(name), base), str(tmp))
                tmp.replace(path)
                written.append(name)
            infos[name] = replace(info, prepared=path, prepared_fingerprint=fp)
    finally:
        con.disconnect()
    return written
