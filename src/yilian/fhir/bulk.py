"""Bulk import of NDJSON files and Bundle JSON files (Synthea) into the store: batched, resumable, reported."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from yilian.db import unit_of_work, utcnow
from yilian.errors import Invalid, YilianError
from yilian.fhir import hooks, store
from yilian.fhir import searchparams as sp
from yilian.fhir.models import FhirImportCheckpoint
from yilian.fhir.outcome import outcome
from yilian.fhir.validation import ID_PATTERN, MAX_BODY_BYTES, MAX_DEPTH, MAX_STRING_CHARS, check_shape, validate
from yilian.security.actor import SYSTEM

DEFAULT_BATCH = 500


@dataclass
class ImportSummary:
    imported: int = 0
    rejected: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    files: int = 0
    skipped_files: int = 0
    seconds: float = 0.0
    report: str | None = None

    def as_dict(self) -> dict[str, Any]:
        rate = round(self.imported / self.seconds, 1) if self.seconds > 0 else None
        return {
            "imported": self.imported,
            "rejected": self.rejected,
            "by_type": dict(sorted(self.by_type.items())),
            "files": self.files,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 2),
            "resources_per_s": rate,
            "report": self.report,
        }


@dataclass(frozen=True)
class Problem:
    """Why a line was rejected (plain data: it crosses process boundaries)."""

    message: str
    code: str = "invalid"
    field: str | None = None

    @classmethod
    def of(cls, exc: YilianError) -> Problem:
        return cls(exc.message, exc.code, exc.field)


@dataclass
class Item:
    """One line of an NDJSON file or one entry of a Bundle, with where it came from."""

    position: int  # 0-based line or entry number
    resource: Any = None
    error: Problem | None = None
    raw: str | None = None
    valid: bool = False  # already checked and validated (by a worker process)
    checked: bool = False  # shape already known to be within limits
    plain_refs: bool = False  # no conditional references to resolve
    index: sp.IndexRows | None = None  # search-index values, extracted where it was validated


def expand_paths(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix in (".ndjson", ".json") and q.is_file())
        else:
            out.append(p)
    return out


def _ndjson_lines(path: Path, start: int) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh):
            if n >= start:
                yield n, line


def _parse_line(n: int, line: bytes) -> Item:
    text = line.strip()
    if not text:
        return Item(n)  # blank lines are skipped but counted as done
    if len(text) > MAX_BODY_BYTES:
        return Item(n, error=Problem(f"line {n + 1} is larger than 5 MB"), raw=text[:2000].decode("utf-8", "replace"))
    try:
        # Cheap byte counts decide whether the slower shape walk and reference rewrite are needed at all.
        shallow = len(text) < MAX_STRING_CHARS and text.count(b"{") + text.count(b"[") <= MAX_DEPTH
        conditional = b"?" in text
        return Item(n, resource=json.loads(text), checked=shallow, plain_refs=not conditional)
    except (ValueError, RecursionError) as exc:
        return Item(
            n, error=Problem(f"line {n + 1} is not valid JSON: {exc}"), raw=text[:2000].decode("utf-8", "replace")
        )


def _ndjson_items(path: Path, start: int) -> Iterator[Item]:
    for n, line in _ndjson_lines(path, start):
        yield _parse_line(n, line)


def _check_item(item: Item) -> Item:
    """Shape, id and R4 validation of one item (pure CPU: runs in worker processes when there are several)."""
    if item.error is not None or item.resource is None or item.valid:
        return item
    res = item.resource
    try:
        if not item.checked:
            check_shape(res)
        if isinstance(res, dict) and res.get("id") is None:
            res["id"] = store.new_resource_id()
        elif isinstance(res, dict) and not (isinstance(res.get("id"), str) and ID_PATTERN.match(res["id"])):
            raise Invalid("id: 1-64 letters, digits, '-' or '.'", field=f"{res.get('resourceType')}.id")
        validate(res)
        item.valid = True
        if item.plain_refs:
            item.index = sp.extract(res)
    except YilianError as exc:
        item.error = Problem.of(exc)
        if not isinstance(res, dict):
            item.resource = None
    return item


def _check_chunk(chunk: list[tuple[int, bytes]]) -> list[Item]:
    return [_check_item(_parse_line(n, line)) for n, line in chunk]


_URN = re.compile(r"^urn:uuid:([A-Za-z0-9\-.]{1,64})$")


def _bundle_items(path: Path, start: int) -> Iterator[Item]:
    raw = path.read_bytes()
    conditional = b"?identifier=" in raw or b"?_id=" in raw
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        yield Item(0, error=Problem(f"{path.name} is not valid JSON: {exc}"))
        return
    if not isinstance(data, dict):
        yield Item(0, error=Problem(f"{path.name} is not a FHIR resource or Bundle"))
        return
    if data.get("resourceType") != "Bundle":
        if start == 0:
            yield Item(0, resource=data)
        return
    entries = data.get("entry") or []
    # Synthea links entries with urn:uuid fullUrls: keep each uuid as the resource id and rewrite references to it.
    mapping: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        res = entry.get("resource")
        full = entry.get("fullUrl")
        if isinstance(res, dict) and isinstance(full, str) and isinstance(res.get("resourceType"), str):
            m = _URN.match(full)
            if m:
                mapping[full] = f"{res['resourceType']}/{m.group(1)}"
    for n, entry in enumerate(entries):
        if n < start:
            continue
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            yield Item(n, error=Problem(f"entry {n} has no resource"))
            continue
        full = entry.get("fullUrl")
        if isinstance(full, str) and full in mapping and not res.get("id"):
            res = {**res, "id": mapping[full].split("/", 1)[1]}
        yield Item(n, resource=_rewrite(res, mapping) if mapping else res, plain_refs=not conditional)


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, mapping))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


class _ConditionalRefs:
    """Synthea points at shared Organizations/Practitioners with 'Organization?identifier=system|value': resolve each
    distinct one once (after the files that define them were imported)."""

    def __init__(self) -> None:
        self.cache: dict[str, str | None] = {}

    def resolve(self, session: Session, resource: Any) -> Any:
        if isinstance(resource, dict):
            out = {}
            for k, v in resource.items():
                if k == "reference" and isinstance(v, str) and "?" in v and not v.startswith("#"):
                    out[k] = self._lookup(session, v) or v
                else:
                    out[k] = self.resolve(session, v)
            return out
        if isinstance(resource, list):
            return [self.resolve(session, v) for v in resource]
        return resource

    def _lookup(self, session: Session, ref: str) -> str | None:
        if ref not in self.cache:
            res_type, _, query = ref.partition("?")
            found: str | None = None
            try:
                from urllib.parse import parse_qsl

                result = store.search(
                    session, res_type, [*parse_qsl(query), ("_count", "2"), ("_total", "none")], strict=True
                )
                if len(result.resources) == 1:
                    found = f"{res_type}/{result.resources[0]['id']}"
            except YilianError:
                found = None
            self.cache[ref] = found
        return self.cache[ref]


def _reject_line(path: Path, item: Item, error: Problem) -> dict[str, Any]:
    line: dict[str, Any] = {
        "file": str(path),
        "position": item.position,
        "line": item.position + 1 if path.suffix == ".ndjson" else None,
        "outcome": outcome(error.message, code=error.code, expression=error.field),
    }
    if item.raw is not None:
        line["text"] = item.raw
    elif isinstance(item.resource, dict):
        line["resourceType"] = item.resource.get("resourceType")
        line["id"] = item.resource.get("id")
    return line


def import_files(
    paths: list[Path],
    *,
    batch_size: int = DEFAULT_BATCH,
    report_path: Path,
    restart: bool = False,
    workers: int = 1,
    on_progress: Callable[[Path, int, int], None] | None = None,
) -> ImportSummary:
    """Import every file; each batch commits with its checkpoint, so an interrupted run resumes where it stopped."""
    summary = ImportSummary(report=str(report_path))
    started = time.perf_counter()
    refs = _ConditionalRefs()
    analyze_at = FIRST_ANALYZE
    report_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        report = stack.enter_context(report_path.open("a", encoding="utf-8"))
        # One pool of validation processes for the whole import: forking a pool per file cost more than a small
        # file's validation (a Synthea export is one file per type, a Bundle per patient).
        pool = stack.enter_context(_pool(workers)) if workers > 1 else None
        for path in expand_paths(paths):
            key = str(path.resolve())
            size = path.stat().st_size
            with unit_of_work() as session:
                cp = session.get(FhirImportCheckpoint, key)
                if cp is not None and (restart or cp.size != size):
                    session.delete(cp)
                    session.flush()
                    cp = None
                if cp is None:
                    cp = FhirImportCheckpoint(
                        path=key, size=size, done=0, imported=0, rejected=0, finished=False, updated_at=utcnow()
                    )
                    session.add(cp)
                start, finished = cp.done, cp.finished
            if finished:
                summary.skipped_files += 1
                continue
            summary.files += 1
            items: Iterator[Item]
            if path.suffix == ".ndjson" and pool is not None:
                items = _parallel_items(pool, path, start, batch_size)
            elif path.suffix == ".ndjson":
                items = _ndjson_items(path, start)
            else:
                items = _bundle_items(path, start)
            batch: list[Item] = []
            for item in items:
                batch.append(item)
                if len(batch) >= batch_size:
                    _import_batch(path, key, batch, summary, report, refs)
                    if on_progress:
                        on_progress(path, batch[-1].position + 1, len(batch))
                    batch = []
                    if summary.imported >= analyze_at:
                        _analyze()
                        analyze_at *= 2
            _import_batch(path, key, batch, summary, report, refs, finished=True)
            if on_progress and batch:
                on_progress(path, batch[-1].position + 1, len(batch))
    if summary.imported:
        # Domains that catch up once per import (the patient index links the new Patients in one batch) do it now,
        # in their own transaction: the imported resources are committed whatever they decide.
        with unit_of_work() as session:
            hooks.import_finished(session, SYSTEM, summary.by_type)
        _analyze()
    summary.seconds = time.perf_counter() - started
    return summary


# Statistics are refreshed during the import too, whenever the store has doubled since the last time: a 1,000-patient
# import stalled at 424,000 resources because the batch's lookup of existing ids (`store.find_existing`, prepared by
# psycopg after 5 runs) kept the generic plan made while fhir_resource was empty — the (res_type, res_id) index used
# for res_type only, every Observation row filtered by the 500 ids: seconds a batch — and autovacuum had not analyzed
# the table under load. ANALYZE also drops such cached plans. Doubling keeps it to a handful of runs.
FIRST_ANALYZE = 20_000


def _analyze() -> None:
    """Refresh PostgreSQL's statistics of the store after a big load. Without them the planner still believes the
    index tables are tiny and joins `patient=X&code=Y` by nested loops over every row of a code: minutes, not ms."""
    from yilian.db import get_engine

    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return
    tables = ", ".join(t.__tablename__ for t in (store.FhirResource, store.FhirResourceVersion, *store.INDEX_TABLES))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"ANALYZE {tables}")


def _chunks(path: Path, start: int, size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for pair in _ndjson_lines(path, start):
        chunk.append(pair)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pool(workers: int) -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(workers)


def _parallel_items(pool: Any, path: Path, start: int, batch_size: int) -> Iterator[Item]:
    """Parse and validate in worker processes (validation is most of the CPU) while this process writes."""
    for checked in pool.imap(_check_chunk, _chunks(path, start, max(50, batch_size // 2)), chunksize=1):
        yield from checked


def _import_batch(
    path: Path,
    key: str,
    batch: list[Item],
    summary: ImportSummary,
    report: Any,
    refs: _ConditionalRefs,
    *,
    finished: bool = False,
) -> None:
    good: list[dict[str, Any]] = []
    index: list[sp.IndexRows | None] = []
    rejects: list[dict[str, Any]] = []
    with unit_of_work() as session:
        if session.get_bind().dialect.name == "postgresql":
            # The import's commits need not wait for the WAL flush: a crash can lose at most the last few batches,
            # each together with its checkpoint (one transaction), so the re-run resumes exactly where the durable
            # data ends. Only this transaction is affected; API writes keep synchronous commits.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        for item in batch:
            _check_item(item)
            if item.error is not None:
                rejects.append(_reject_line(path, item, item.error))
                continue
            if item.resource is None:
                continue
            res = item.resource
            if not item.plain_refs:
                res = refs.resolve(session, res)
            good.append(res)
            index.append(item.index)
        saved = store.bulk_put(session, good, actor=SYSTEM, index=index)
        heard = [r for r in saved if hooks.wants(r["resourceType"])]
        if heard:
            hooks.after_write(
                session,
                SYSTEM,
                [hooks.written("create" if r["meta"]["versionId"] == "1" else "update", r) for r in heard],
                bulk=True,
            )
        cp = session.scalar(select(FhirImportCheckpoint).where(FhirImportCheckpoint.path == key))
        if cp is not None:
            if batch:
                cp.done = batch[-1].position + 1
            cp.imported += len(good)
            cp.rejected += len(rejects)
            cp.finished = finished
            cp.updated_at = utcnow()
    # Only after the commit: a crash before it re-imports the batch, never reports it twice.
    for line in rejects:
        report.write(json.dumps(line, ensure_ascii=False) + "\n")
    report.flush()
    summary.imported += len(good)
    summary.rejected += len(rejects)
    summary.by_type.update(r["resourceType"] for r in good)
