"""A columnar snapshot of the FHIR store: Parquet parts, each holding the resource versions written since the last.

`<data_dir>/analytics/snapshot/part-000001.parquet`, `part-000002.parquet` …, columns
`res_type, res_id, version, last_updated, deleted, resource` (JSON text; NULL for a deletion). A new part holds what
changed since the newest `last_updated` already in the snapshot (beyond MAX_PARTS parts, they are compacted into
one); transactions that commit late with an earlier
timestamp are caught by re-reading a short overlap and dropping the versions the snapshot already has. The current
state is the newest version of each resource that is not deleted (`current_sql`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from yilian.analytics.compiler import q
from yilian.config import get_settings

OVERLAP = timedelta(minutes=5)
MAX_PARTS = 16  # more parts than this are compacted into one
BATCH = 20_000
SCHEMA = pa.schema(
    [
        ("res_type", pa.string()),
        ("res_id", pa.string()),
        ("version", pa.int64()),
        ("last_updated", pa.timestamp("us", tz="UTC")),
        ("deleted", pa.bool_()),
        ("resource", pa.string()),
    ]
)


def analytics_dir() -> Path:
    return get_settings().data_dir / "analytics"


def snapshot_dir(root: Path | None = None) -> Path:
    return (root or analytics_dir()) / "snapshot"


def parts(root: Path | None = None) -> list[tuple[int, Path]]:
    """(number, path) of every part, oldest first."""
    found = []
    for p in snapshot_dir(root).glob("part-*.parquet"):
        try:
            found.append((int(p.stem.split("-")[1]), p))
        except (IndexError, ValueError):
            continue
    return sorted(found)


@dataclass(frozen=True)
class Taken:
    part: int  # the newest part (0: the snapshot is empty)
    new_versions: int  # versions written into a new part by this call


def take(session: Session, root: Path | None = None) -> Taken:
    """Append what changed in the store since the last part; no new part when nothing changed."""
    from yilian.fhir.models import FhirResource, FhirResourceVersion

    existing = parts(root)
    since = None
    seen: set[tuple[str, str, int]] = set()
    if existing:
        con = duckdb.connect()
        files = "[" + ", ".join(q(str(p)) for _, p in existing) + "]"
        # microseconds since the epoch: DuckDB hands timestamptz to Python only through pytz
        newest = con.execute(f"SELECT epoch_us(max(last_updated)) FROM read_parquet({files})").fetchone()
        if newest and newest[0] is not None:
            since = datetime.fromtimestamp(newest[0] / 1e6, UTC) - OVERLAP
            seen = {
                (t, i, int(v))
                for t, i, v in con.execute(
                    f"SELECT res_type, res_id, version FROM read_parquet({files}) WHERE epoch_us(last_updated) >= ?",
                    [int(since.timestamp() * 1e6)],
                ).fetchall()
            }
        con.close()
    stmt = (
        select(
            FhirResource.res_type,
            FhirResource.res_id,
            FhirResource.version,
            FhirResource.last_updated,
            FhirResource.deleted,
            FhirResourceVersion.resource,
        )
        .join(
            FhirResourceVersion,
            and_(
                FhirResourceVersion.resource_pk == FhirResource.pk, FhirResourceVersion.version == FhirResource.version
            ),
        )
        .order_by(FhirResource.last_updated, FhirResource.res_type, FhirResource.res_id)
    )
    if since is not None:
        stmt = stmt.where(FhirResource.last_updated >= since)
    number = existing[-1][0] + 1 if existing else 1
    target = snapshot_dir(root) / f"part-{number:06d}.parquet"
    tmp = target.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    written = 0
    batch: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

    def flush() -> None:
        nonlocal writer
        if not batch["res_id"]:
            return
        if writer is None:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(tmp, SCHEMA)
        writer.write_table(pa.table(batch, schema=SCHEMA))
        for values in batch.values():
            values.clear()

    for res_type, res_id, version, last_updated, deleted, resource in session.execute(stmt).yield_per(BATCH):
        if (res_type, res_id, version) in seen:
            continue
        batch["res_type"].append(res_type)
        batch["res_id"].append(res_id)
        batch["version"].append(version)
        batch["last_updated"].append(last_updated)
        batch["deleted"].append(bool(deleted))
        batch["resource"].append(None if deleted or resource is None else json.dumps(resource, ensure_ascii=False))
        written += 1
        if len(batch["res_id"]) >= BATCH:
            flush()
    flush()
    if writer is None:
        return Taken(existing[-1][0] if existing else 0, 0)
    writer.close()
    tmp.replace(target)
    if len(existing) + 1 > MAX_PARTS:
        number = compact(root)
    return Taken(number, written)


def compact(root: Path | None = None) -> int:
    """Fold every part into one holding the newest version of each resource, deletions included (a view last
    brought up to date before the compaction must still learn that a resource is gone). Returns its number."""
    existing = parts(root)
    if len(existing) < 2:
        return existing[-1][0] if existing else 0
    number = existing[-1][0] + 1
    target = snapshot_dir(root) / f"part-{number:06d}.parquet"
    tmp = target.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT res_type, res_id, version, last_updated, deleted, resource FROM read_parquet("
        f"{_files([p for _, p in existing])}) QUALIFY row_number() OVER (PARTITION BY res_type, res_id "
        f"ORDER BY version DESC) = 1 ORDER BY res_type, res_id) TO {q(str(tmp))} (FORMAT parquet)"
    )
    con.close()
    tmp.replace(target)
    for _, old in existing:
        old.unlink()
    return number


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(q(str(p)) for p in paths) + "]"


def current_sql(paths: list[Path], resource_type: str | None = None, only_ids: str | None = None) -> str:
    """SQL for `(resource_type, res_id, resource)`: the newest version of each resource in these parts, deletions dropped.

    only_ids is a SQL relation of `res_id`s to restrict to (the resources an incremental run recomputes).
    """
    if not paths:
        return (
            "SELECT CAST(NULL AS VARCHAR) AS resource_type, CAST(NULL AS VARCHAR) AS res_id, "
            "CAST(NULL AS JSON) AS resource WHERE false"
        )
    conds = []
    if resource_type:
        conds.append(f"res_type = {q(resource_type)}")
    if only_ids:
        conds.append(f"res_id IN (SELECT res_id FROM {only_ids})")
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    scan = f"SELECT res_type, res_id, version, deleted, resource FROM read_parquet({_files(paths)}){where}"
    if len(paths) > 1:
        # a resource changed after part 1 has several versions in the snapshot: keep its newest
        scan += " QUALIFY row_number() OVER (PARTITION BY res_type, res_id ORDER BY version DESC) = 1"
    return (
        f"SELECT res_type AS resource_type, res_id, CAST(resource AS JSON) AS resource FROM ({scan}) AS latest "
        "WHERE NOT deleted"
    )
