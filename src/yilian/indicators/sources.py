"""Where snapshot tables come from: the registry, the materialised SQL-on-FHIR views, and this domain's assessments.

Views are brought up to date by the analytics kernel (`materialize_views`, incremental) and read by name through
`analytics.materialize.view_path`; a view whose definition and FHIR snapshot part are unchanged is not read again.
Tables no domain records yet (claims, staff income, chronic-disease management, deaths) are simply not written, so the
indicators that need them say "no data" instead of 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.analytics import materialize
from yilian.analytics.compiler import q
from yilian.db import Base
from yilian.indicators import snapshot
from yilian.indicators.models import Assessment

LOCAL = ZoneInfo("Asia/Shanghai")
MAPPING_VERSION = "3"  # bump when a view → table mapping below changes


def _local(col: str) -> str:
    return f"CAST(timezone('Asia/Shanghai', TRY_CAST({col} AS TIMESTAMPTZ)) AS TIMESTAMP)"


# snapshot table -> (views it reads, SQL over those views by name)
VIEW_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "patient": (
        ("patient",),
        "SELECT id, division_code, TRY_CAST(birth_date AS DATE) AS birth_date, "
        "TRY_CAST(deceased_date AS DATE) AS deceased_date FROM patient",
    ),
    "encounter": (
        ("encounter",),
        "SELECT id, status, class_code, service_type, patient_id, facility_id, referral_id, "
        f"{_local('period_start')} AS period_start, {_local('period_end')} AS period_end FROM encounter",
    ),
    "procedure": (
        ("procedure",),
        "SELECT id, patient_id, encounter_id, facility_id, status, TRY_CAST(surgery_level AS BIGINT) AS surgery_level, "
        f"{_local('performed_start')} AS performed_start FROM procedure",
    ),
    "diagnostic_report": (
        ("diagnostic_report", "encounter"),
        "SELECT d.id, d.category, d.status, d.patient_id, d.encounter_id, e.facility_id, d.performer_facility_id, "
        f"{_local('d.effective')} AS effective, {_local('d.issued')} AS issued, d.recognized "
        "FROM diagnostic_report d LEFT JOIN encounter e ON e.id = d.encounter_id",
    ),
    # One row per referral; an up-referral whose patient went back down (the Task's output: a down-referral care plan)
    # also gives a row of its own for that return, direction down, from the receiver to the Task's owner then, so that
    # down-referral counts include the loop's own returns as well as referrals that started downwards.
    "referral": (
        ("referral_request", "referral_task", "care_plan"),
        "WITH base AS (SELECT r.referral_id AS id, r.direction, r.priority, "
        "coalesce(t.business_status, t.status, r.status) AS status, r.patient_id, "
        "r.requester_facility_id AS from_facility_id, r.performer_facility_id AS to_facility_id, t.owner_facility_id, "
        f"{_local('r.authored_on')} AS submitted_at, {_local('t.acceptance_due')} AS accept_due, "
        f"{_local('t.execution_start')} AS accepted_at, "
        f"CASE WHEN t.status = 'completed' THEN {_local('coalesce(t.execution_end, t.last_modified)')} END AS closed_at, "
        f"{_local('c.period_start')} AS down_referred_at "
        "FROM referral_request r LEFT JOIN referral_task t ON t.referral_id = r.referral_id "
        "LEFT JOIN care_plan c ON c.id = t.care_plan_id) "
        "SELECT id, direction, priority, status, patient_id, from_facility_id, to_facility_id, submitted_at, accept_due, "
        "accepted_at, closed_at, down_referred_at, CAST(NULL AS VARCHAR) AS loop_of FROM base "
        "UNION ALL SELECT id || '/down', 'down', priority, status, patient_id, to_facility_id, owner_facility_id, "
        "down_referred_at, NULL, NULL, closed_at, NULL, id FROM base "
        "WHERE direction = 'up' AND down_referred_at IS NOT NULL",
    ),
}


def _registry(session: Session) -> dict[str, pa.Table]:
    """The registry's tables, read-only, by table name (the network domain's own tables; no model import)."""
    md = Base.metadata.tables

    def rows(stmt: object) -> list[dict[str, object]]:
        return [dict(r._mapping) for r in session.execute(stmt)]  # type: ignore[call-overload]

    div, fac = md["division"], md["facility"]
    con, mem = md["consortium"], md["consortium_member"]
    prac, role = md["practitioner"], md["practitioner_role"]
    out: dict[str, pa.Table] = {}
    out["division"] = pa.Table.from_pylist(
        rows(select(div.c.code, div.c.name, div.c.level, div.c.parent_code, div.c.population, div.c.lon, div.c.lat))
    )
    facs = rows(
        select(
            fac.c.id,
            fac.c.code,
            fac.c.name,
            fac.c.level,
            fac.c.kind,
            fac.c.division_code,
            fac.c.beds,
            fac.c.lon,
            fac.c.lat,
        )
    )
    for f in facs:
        f["id"] = str(f["id"])
        f["county_code"] = str(f["division_code"])[:6]
    out["facility"] = pa.Table.from_pylist(facs)
    cons = rows(select(con.c.id, con.c.name, con.c.form, con.c.division_code, con.c.lead_facility_id))
    for c in cons:
        c["id"], c["lead_facility_id"] = str(c["id"]), str(c["lead_facility_id"])
    out["consortium"] = pa.Table.from_pylist(cons)
    mems = rows(select(mem.c.consortium_id, mem.c.facility_id, mem.c.role, mem.c.membership))
    for m in mems:
        m["consortium_id"], m["facility_id"] = str(m["consortium_id"]), str(m["facility_id"])
    out["consortium_member"] = pa.Table.from_pylist(mems)
    posts = rows(
        select(
            role.c.practitioner_id,
            prac.c.title,
            prac.c.home_facility_id,
            role.c.facility_id,
            role.c.start,
            role.c.end,
        )
        .join(prac, prac.c.id == role.c.practitioner_id)
        .where(role.c.kind != "home")
    )
    for p in posts:
        for k in ("practitioner_id", "home_facility_id", "facility_id"):
            p[k] = str(p[k])
    out["posting"] = pa.Table.from_pylist(posts)
    return {k: v for k, v in out.items() if v.num_rows or k in ("division", "facility")}


def _local_time(v: object) -> object:
    """A stored UTC time as local civil time (Asia/Shanghai), as the snapshot keeps times (periods are local)."""
    if isinstance(v, datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        return aware.astimezone(LOCAL).replace(tzinfo=None)
    return v


def _plain_row(row: dict[str, object]) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else _local_time(v)) for k, v in row.items()}


def _domain_tables(session: Session) -> dict[str, pa.Table]:
    """What expert outreach and shared diagnostics record, read-only by table name (like the registry: the engine
    needs a few columns of every row, not the domains' use cases, which check access per person and per order).
    A domain whose tables are absent (not installed) or empty gives no table, so its indicators say "no data"."""
    md = Base.metadata.tables
    out: dict[str, list[dict[str, object]]] = {}

    def rows(stmt: object) -> list[dict[str, object]]:
        return [_plain_row(dict(r._mapping)) for r in session.execute(stmt)]  # type: ignore[call-overload]

    if {"outreach_clinic", "outreach_clinic_day", "outreach_appointment"} <= set(md):
        clinic, cday, appt = md["outreach_clinic"], md["outreach_clinic_day"], md["outreach_appointment"]
        counts: dict[str, dict[str, int]] = {}
        for day_id, status, n in session.execute(
            select(appt.c.clinic_day_id, appt.c.status, func.count()).group_by(appt.c.clinic_day_id, appt.c.status)
        ):
            counts.setdefault(str(day_id), {})[str(status)] = int(n)
        days = rows(
            select(
                cday.c.id,
                cday.c.clinic_id,
                clinic.c.practitioner_id,
                clinic.c.facility_id,
                clinic.c.specialty,
                cday.c.day,
                cday.c.status,
                (cday.c.quota + cday.c.extra).label("quota"),
            ).join(clinic, clinic.c.id == cday.c.clinic_id)
        )
        for d in days:
            c = counts.get(str(d["id"]), {})
            # a booked number is a live one: still booked, or already arrived or missed
            d["booked"] = c.get("booked", 0) + c.get("arrived", 0) + c.get("noshow", 0)
            d["arrived"], d["noshow"], d["cancelled"] = c.get("arrived", 0), c.get("noshow", 0), c.get("cancelled", 0)
        out["outreach_clinic_day"] = days
    if "outreach_activity" in md:
        act = md["outreach_activity"]
        acts = rows(
            select(
                act.c.id,
                act.c.practitioner_id,
                act.c.facility_id,
                act.c.day,
                act.c.kind,
                act.c.operation_level,
                act.c.attendees,
            )
        )
        for a in acts:
            a["attendees"] = len(a["attendees"] or [])  # type: ignore[arg-type]
        out["outreach_activity"] = acts
    if "outreach_checkin" in md:
        chk = md["outreach_checkin"]
        out["outreach_checkin"] = rows(select(chk.c.practitioner_id, chk.c.facility_id, chk.c.day))
    if "diagnostic_order" in md:
        order = md["diagnostic_order"]
        rep = md["diagnostic_report"]
        out["diagnostic_order"] = rows(
            select(
                order.c.id,
                order.c.ordering_facility_id.label("facility_id"),
                order.c.centre_facility_id,
                order.c.modality,
                order.c.item_code,
                order.c.priority,
                order.c.state,
                order.c.ordered_at,
                order.c.received_at,
                order.c.reported_at,
                rep.c.recognised,
            ).outerjoin(rep, rep.c.order_id == order.c.id)
        )
    if "recognition_decision" in md:
        dec = md["recognition_decision"]
        out["recognition_decision"] = rows(
            select(
                dec.c.id,
                dec.c.facility_id,
                dec.c.item_code,
                dec.c.outcome,
                dec.c.reason,
                dec.c.price_fen,
                dec.c.decided_at,
            )
        )
    if "teleconsultation" in md:
        tc = md["teleconsultation"]
        out["teleconsultation"] = rows(
            select(
                tc.c.id,
                tc.c.kind,
                tc.c.requesting_facility_id.label("facility_id"),
                tc.c.centre_facility_id,
                tc.c.specialty,
                tc.c.state,
                tc.c.requested_at,
                tc.c.answered_at,
            )
        )
    if "recognition_qualification" in md:
        qual = md["recognition_qualification"]
        out["recognition_qualification"] = rows(
            select(qual.c.facility_id, qual.c.item_code, qual.c.passed_on, qual.c.valid_until)
        )
    return {name: pa.Table.from_pylist(data) for name, data in out.items() if data}


def _view_loader(sql: str, paths: dict[str, Path]) -> Callable[[], pa.Table]:
    def load() -> pa.Table:
        con = duckdb.connect()
        try:
            for name, path in paths.items():
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({q(str(path))})")
            return con.execute(sql).to_arrow_table()
        finally:
            con.close()

    return load


def take(
    session: Session, root: Path | None = None, progress: Callable[[str], None] | None = None
) -> snapshot.Snapshot:
    """Bring the views up to date, then write what changed into a new snapshot (or return the last one unchanged)."""
    say = progress or (lambda _: None)
    say("registry: divisions, facilities, consortia, postings")
    tables: dict[str, pa.Table | tuple[str, snapshot.Source]] = dict(_registry(session))
    sources = dict.fromkeys(tables, "registry")
    say("outreach and diagnostics: clinic days, activities, check-ins, orders, recognition, teleconsultations")
    domain = _domain_tables(session)
    tables.update(domain)
    sources.update({name: f"table {name}" for name in domain})
    wanted = sorted({v for views, _ in VIEW_TABLES.values() for v in views})
    from yilian.analytics import definitions as view_definitions

    in_effect = set(view_definitions.views_in_effect(session))
    present = [v for v in wanted if v in in_effect]
    if present:
        say(f"views: materialising {', '.join(present)}")
        materialize.materialize_views(session, present, progress=say)
    registered = {r.name: r for r in materialize.registered(session)}
    for table, (views, sql) in VIEW_TABLES.items():
        if not all(v in registered for v in views):
            continue
        regs = [registered[v] for v in views]
        if sum(r.rows for r in regs[:1]) == 0:
            continue  # nothing recorded: leave the table out so that it reads as "not recorded"
        fp = "v" + MAPPING_VERSION + "-" + "-".join(f"{r.fingerprint[:8]}{r.snapshot_part}" for r in regs)
        paths = {v: materialize.view_path(session, v) for v in views}
        tables[table] = (fp.replace("/", "_")[:60], _view_loader(sql, paths))
        sources[table] = "views " + ", ".join(views)
    assessed = [
        {"indicator_id": a.indicator_id, "scope": a.scope, "year": a.year, "value": a.value}
        for a in session.scalars(
            select(Assessment).order_by(Assessment.indicator_id, Assessment.scope, Assessment.year)
        )
    ]
    if assessed:
        tables["assessment"] = pa.Table.from_pylist(assessed)
        sources["assessment"] = "indicator_assessment"
    snap = snapshot.write(tables, root, source=sources)
    say(
        f"snapshot {snap.id}: wrote {', '.join(snap.written) or 'nothing new'}"
        + (f"; joined the registry into {', '.join(snap.prepared)}" if snap.prepared else "")
    )
    return snap
