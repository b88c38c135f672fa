"""Bulk Data export ($export): an asynchronous job writing one NDJSON file per type under <data_dir>/exports/<job>.

The job row is the truth: a poll that finds a job accepted but not running (the server restarted) starts it again,
and re-running a job simply rewrites its files.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from yilian.config import get_settings
from yilian.db import unit_of_work, utcnow
from yilian.errors import BadRequest, Forbidden, NotFound
from yilian.fhir import searchparams as sp
from yilian.fhir import store
from yilian.fhir.models import FhirExportJob, FhirIdxReference
from yilian.fhir.validation import is_known_type
from yilian.security import audit
from yilian.security.actor import Actor
from yilian.security.roles import Role

R, V = store.R, store.V
_running: set[uuid.UUID] = set()
_lock = threading.Lock()


def export_dir(job_id: uuid.UUID) -> Path:
    return get_settings().data_dir.resolve() / "exports" / str(job_id)


def start(
    session: Session, actor: Actor, *, level: str, group_id: str | None, params: list[tuple[str, str]], request_url: str
) -> FhirExportJob:
    """Record an export request (system, Patient or Group level); the caller then runs it in the background."""
    if actor.role != Role.SYSTEM_ADMIN:
        raise Forbidden("bulk export is for system administrators", field="$export")
    types: list[str] | None = None
    for key, value in params:
        if key == "_type":
            types = [t.strip() for t in value.split(",") if t.strip()]
            unknown = [t for t in types if not is_known_type(t)]
            if unknown:
                raise BadRequest(f"_type names unknown resource types: {', '.join(unknown)}", field="_type")
        elif key == "_outputFormat" and value not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
            raise BadRequest("_outputFormat must be application/fhir+ndjson", field="_outputFormat")
        elif key == "_since":
            sp.parse_date_param("_since", value)
    if level == "Group" and group_id:
        store.read(session, "Group", group_id)
    job = FhirExportJob(
        requested_by=actor.username,
        request_url=request_url[:2048],
        status="accepted",
        types=types,
        output=[{"level": level, "group": group_id, "params": params}],
    )
    session.add(job)
    session.flush()
    audit.record(session, actor, "fhir.export", resource=f"$export/{job.id}", detail={"level": level, "types": types})
    return job


def run(job_id: uuid.UUID) -> None:
    """Write the files. Safe to call twice: a second call while one runs returns at once."""
    with _lock:
        if job_id in _running:
            return
        _running.add(job_id)
    try:
        with unit_of_work() as session:
            job = session.get(FhirExportJob, job_id)
            if job is None or job.status in ("done", "failed", "cancelled"):
                return
            job.status = "running"
            request = (job.output or [{}])[0]
            types, created_at = job.types, job.created_at
        try:
            output = _write_files(job_id, request, types, created_at)
        except Exception as exc:  # recorded on the job for the poller; nothing to roll back
            with unit_of_work() as session:
                failed = session.get(FhirExportJob, job_id)
                if failed is not None:
                    failed.status, failed.error, failed.finished_at = (
                        "failed",
                        f"{type(exc).__name__}: {exc}"[:2000],
                        utcnow(),
                    )
            return
        with unit_of_work() as session:
            done = session.get(FhirExportJob, job_id)
            if done is not None and done.status == "running":
                done.status, done.finished_at = "done", utcnow()
                done.output = [request, *output]
    finally:
        with _lock:
            _running.discard(job_id)


def _patient_ids(session: Session, level: str, group_id: str | None) -> list[str] | None:
    if level == "system":
        return None
    if level == "Group" and group_id:
        group = store.read(session, "Group", group_id)
        ids = []
        for member in group.get("member") or []:
            parsed = sp.parse_reference(str((member.get("entity") or {}).get("reference", "")), "Patient")
            if parsed and parsed[0] == "Patient":
                ids.append(parsed[1])
        return ids
    return list(session.execute(select(R.c.res_id).where(R.c.res_type == "Patient", R.c.deleted == false())).scalars())


def _write_files(
    job_id: uuid.UUID, request: dict[str, Any], types: list[str] | None, created_at: datetime
) -> list[dict[str, Any]]:
    level, group_id = request.get("level", "system"), request.get("group")
    since = None
    for key, value in request.get("params") or []:
        if key == "_since":
            since = sp.parse_date_param("_since", value)[1]
    folder = export_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    output = []
    with unit_of_work() as session:
        patients = _patient_ids(session, level, group_id)
        if types is None:
            stored = session.execute(select(R.c.res_type).distinct()).scalars().all()
            types = sorted(stored)
        if patients is not None:  # patient-level: only the compartment
            types = [t for t in types if t == "Patient" or t in sp.PATIENT_PARAM]
        for res_type in types:
            conditions = [R.c.res_type == res_type, R.c.deleted == false(), R.c.last_updated <= created_at]
            if since is not None:
                conditions.append(R.c.last_updated >= since)
            if patients is not None:
                if res_type == "Patient":
                    conditions.append(R.c.res_id.in_(patients))
                else:
                    ref = FhirIdxReference
                    conditions.append(
                        R.c.pk.in_(
                            select(ref.resource_pk).where(
                                ref.res_type == res_type, ref.param == "patient", ref.target_id.in_(patients)
                            )
                        )
                    )
            stmt = (
                select(V.c.resource)
                .join(R, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
                .where(*conditions)
                .order_by(R.c.pk)
                .execution_options(yield_per=1000)
            )
            path = folder / f"{res_type}.ndjson"
            count = 0
            with path.open("w", encoding="utf-8") as fh:
                for resource in session.execute(stmt).scalars():
                    fh.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
                    count += 1
            if count:
                output.append({"type": res_type, "file": path.name, "count": count})
            else:
                path.unlink()
    return output


def status(session: Session, actor: Actor, job_id: str) -> FhirExportJob:
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        raise NotFound(f"there is no export {job_id[:64]}", field="$export") from None
    job = session.get(FhirExportJob, key)
    if job is None or job.status == "cancelled":
        raise NotFound(f"there is no export {job_id}", field="$export")
    if actor.role != Role.SYSTEM_ADMIN and actor.username != job.requested_by:
        raise Forbidden("this export belongs to someone else", field="$export")
    return job


def is_running(job_id: uuid.UUID) -> bool:
    with _lock:
        return job_id in _running


def manifest(job: FhirExportJob, base: str) -> dict[str, Any]:
    files = (job.output or [])[1:]
    return {
        "transactionTime": store.instant(job.created_at),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": f["type"], "url": f"{base}/$export-file/{job.id}/{f['file']}", "count": f["count"]} for f in files
        ],
        "error": [],
    }


def cancel(session: Session, job: FhirExportJob) -> None:
    job.status = "cancelled"
    folder = export_dir(job.id)
    if folder.exists():
        for f in folder.glob("*.ndjson"):
            f.unlink()
        folder.rmdir()
