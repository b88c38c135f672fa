"""The FHIR resource store: versions, current pointers, soft delete, the search index, and search itself.

Services call these with a Session and never commit; every write updates the index in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Table, and_, false, func, insert, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from yilian.db import utcnow
from yilian.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from yilian.fhir import searchparams as sp
from yilian.fhir import subscriptions
from yilian.fhir.models import (
    FhirIdxDate,
    FhirIdxQuantity,
    FhirIdxReference,
    FhirIdxString,
    FhirIdxToken,
    FhirResource,
    FhirResourceVersion,
)
from yilian.fhir.validation import Gone, validate
from yilian.security.actor import SYSTEM, Actor

R = cast(Table, FhirResource.__table__)
V = cast(Table, FhirResourceVersion.__table__)
INDEX_TABLES = (FhirIdxToken, FhirIdxString, FhirIdxDate, FhirIdxReference, FhirIdxQuantity)
# Search builds its statements from the Core columns: the ORM attributes' operator and annotation machinery was a third
# of a search's CPU, for statements that never load ORM objects.
IDX_TOKEN = cast(Table, FhirIdxToken.__table__).c
IDX_STRING = cast(Table, FhirIdxString.__table__).c
IDX_DATE = cast(Table, FhirIdxDate.__table__).c
IDX_REFERENCE = cast(Table, FhirIdxReference.__table__).c
IDX_QUANTITY = cast(Table, FhirIdxQuantity.__table__).c

DEFAULT_COUNT = 50
MAX_COUNT = 1000


def instant(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_resource_id() -> str:
    return str(uuid.uuid4())


# --- writes ----------------------------------------------------------------------------------------------------------


@dataclass
class _Write:
    resource: dict[str, Any]
    method: str  # POST | PUT
    existing_pk: uuid.UUID | None = None
    existing_version: int = 0
    index: sp.IndexRows | None = None  # already extracted (bulk import does it in its worker processes)


_rng: tuple[int, random.Random] | None = None


def _resource_pk() -> uuid.UUID:
    """Keys of new resources, time-ordered like UUIDv7 (48 bits of milliseconds, then random bits): every index on
    resource_pk (the resource's own, its versions', each search-index table's) then grows at its right edge instead
    of at random places, which keeps a large import's B-tree pages in memory. Random bits come from a per-process
    generator seeded from the OS (no system call each; forked processes re-seed, so they never repeat each other)."""
    global _rng
    if _rng is None or _rng[0] != os.getpid():
        _rng = (os.getpid(), random.Random(os.urandom(32)))
    ms = time.time_ns() // 1_000_000
    rand = _rng[1].getrandbits(74)
    # version 7 in bits 76-79, variant 0b10 in bits 62-63, the rest random.
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1)))


# Column order of each search-index table as the writer fills it (tuples, not dicts: millions of rows in an import).
INDEX_COLUMNS: dict[Any, tuple[str, ...]] = {
    FhirIdxToken: ("resource_pk", "res_type", "param", "system", "code", "patient_id"),
    FhirIdxString: ("resource_pk", "res_type", "param", "value_norm", "value_exact"),
    FhirIdxDate: ("resource_pk", "res_type", "param", "low", "high", "patient_id"),
    FhirIdxReference: ("resource_pk", "res_type", "param", "target_type", "target_id"),
    FhirIdxQuantity: ("resource_pk", "res_type", "param", "value", "system", "code"),
}


def _actor_name(actor: Actor | None) -> str:
    return (actor or SYSTEM).username[:64]


def _write_many(session: Session, writes: Sequence[_Write], actor: Actor | None) -> list[dict[str, Any]]:
    """Insert/update resources, their version rows and index rows with a handful of bulk statements."""
    if not writes:
        return []
    now = utcnow()
    stamp = instant(now)
    new_rows, version_rows, stale, pointer_updates = [], [], [], []
    idx_rows: dict[Any, list[tuple[Any, ...]]] = {t: [] for t in INDEX_TABLES}
    out = []
    if any(w.resource.get("resourceType") == "Subscription" for w in writes):
        subscriptions.written(session)
    for w in writes:
        res = w.resource
        subscriptions.prepare(res)
        version = w.existing_version + 1
        res["meta"] = {**(res.get("meta") or {}), "versionId": str(version), "lastUpdated": stamp}
        res_type, res_id = res["resourceType"], res["id"]
        if w.existing_pk is None:
            pk = _resource_pk()
            new_rows.append(
                {"pk": pk, "res_type": res_type, "res_id": res_id, "version": 1, "last_updated": now, "deleted": False}
            )
        else:
            pk = w.existing_pk
            stale.append(pk)
            pointer_updates.append({"b_pk": pk, "b_version": version, "b_now": now})
        version_rows.append(
            {
                "resource_pk": pk,
                "version": version,
                "last_updated": now,
                "deleted": False,
                "method": w.method,
                "actor": _actor_name(actor),
                "resource": res,
            }
        )
        _index_rows(idx_rows, pk, res, w.index if res_type != "Subscription" else None)
        out.append(res)
    conn = session.connection()
    if stale:
        for stmt in _DELETE_INDEX_ROWS:
            conn.execute(stmt, {"pks": stale})
        conn.execute(_MOVE_POINTER, pointer_updates)
    _insert_rows(conn, R, new_rows)
    _insert_rows(conn, V, version_rows)
    for table, rows in idx_rows.items():
        _insert_rows(conn, cast(Table, table.__table__), rows, INDEX_COLUMNS[table])
    subscriptions.on_write(session, out)
    return out


COPY_THRESHOLD = 64
# Built once (see _CURRENT_ROW): every update runs these.
_DELETE_INDEX_ROWS = [
    sa.delete(t).where(cast(Table, t.__table__).c.resource_pk.in_(sa.bindparam("pks", expanding=True)))
    for t in INDEX_TABLES
]
_MOVE_POINTER = (
    sa.update(R)
    .where(R.c.pk == sa.bindparam("b_pk"))
    .values(version=sa.bindparam("b_version"), last_updated=sa.bindparam("b_now"), deleted=False)
)
_INSERT: dict[str, Any] = {}


def _insert_rows(conn: Any, table: Table, rows: list[Any], columns: tuple[str, ...] | None = None) -> None:
    """Many rows: PostgreSQL COPY (several times faster than INSERT); otherwise one executemany.
    Rows are dicts, or tuples in the order of `columns` (the search-index rows)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        stmt = _INSERT.get(table.name)
        if stmt is None:
            stmt = _INSERT[table.name] = insert(table)
        conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows] if columns else rows)
        return
    raw = conn.connection.driver_connection
    if columns is not None:
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for tup in rows:
                copy.write_row(tup)
        return
    from psycopg.types.json import Jsonb

    keys = list(rows[0])
    json_cols = {c.name for c in table.columns if c.name in keys and c.type.__class__.__name__ in ("JSON", "JSONB")}
    json_cols |= {c.name for c in table.columns if c.name == "resource"}
    names = ", ".join(f'"{c}"' for c in keys)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([Jsonb(row[c]) if c in json_cols and row[c] is not None else row[c] for c in keys])


def _index_rows(
    acc: dict[Any, list[tuple[Any, ...]]], pk: uuid.UUID, res: dict[str, Any], rows: sp.IndexRows | None = None
) -> None:
    """Append the resource's index rows as tuples in INDEX_COLUMNS order (key and type, then the extracted values)."""
    rows = rows or sp.extract(res)
    head = (pk, res["resourceType"])
    for table, values in (
        (FhirIdxString, rows.strings),
        (FhirIdxReference, rows.references),
        (FhirIdxQuantity, rows.quantities),
    ):
        if values:
            acc[table].extend([head + v for v in values])
    # Token and date rows carry the id of the patient the resource belongs to (its `patient` reference), so that a
    # patient's search by code or date reaches its few rows through one index. A resource naming several patients
    # gets one copy of each row per patient (every reader asks "is there a row", so copies change no answer).
    patients: tuple[str | None, ...] = tuple({i for name, _, i in rows.references if name == "patient"}) or (None,)
    if rows.tokens:
        acc[FhirIdxToken].extend([(*head, *v, patient) for v in rows.tokens for patient in patients])
    if rows.dates:
        acc[FhirIdxDate].extend([(*head, *v, patient) for v in rows.dates for patient in patients])


# Statements of a fixed shape are built once, with bind parameters: building a SQLAlchemy statement costs several
# times more CPU than executing it from the compiled cache (≈ 0.4 ms against ≈ 0.08 ms for a read by id).
_CURRENT_ROW = select(R.c.pk, R.c.version, R.c.deleted, R.c.last_updated).where(
    R.c.res_type == sa.bindparam("res_type"), R.c.res_id == sa.bindparam("res_id")
)
_CURRENT_ROW_LOCKED = _CURRENT_ROW.with_for_update()
_READ = (
    select(R.c.deleted, R.c.version, V.c.resource)
    .join(V, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
    .where(R.c.res_type == sa.bindparam("res_type"), R.c.res_id == sa.bindparam("res_id"))
)
_VREAD = (
    select(V.c.deleted, V.c.resource)
    .join(R, V.c.resource_pk == R.c.pk)
    .where(
        R.c.res_type == sa.bindparam("res_type"),
        R.c.res_id == sa.bindparam("res_id"),
        V.c.version == sa.bindparam("version"),
    )
)


def _current_row(session: Session, res_type: str, res_id: str, *, lock: bool = False) -> Any:
    locked = lock and session.get_bind().dialect.name == "postgresql"
    stmt = _CURRENT_ROW_LOCKED if locked else _CURRENT_ROW
    return session.execute(stmt, {"res_type": res_type, "res_id": res_id}).first()


def create(
    session: Session,
    resource: dict[str, Any],
    *,
    actor: Actor | None = None,
    keep_id: bool = False,
    validated: bool = False,
) -> dict[str, Any]:
    """Store a new resource; the server assigns its id (unless keep_id and the given id is free).

    validated: the caller has just run `validate` on this very dict (the API does, before its access check), so
    the R4B models need not run a second time; the structure is never stored unchecked."""
    resource = copy.deepcopy(resource)
    if not validated:
        validate(resource)
    if not keep_id or not resource.get("id"):
        resource["id"] = new_resource_id()
    elif _current_row(session, resource["resourceType"], resource["id"]) is not None:
        raise Conflict(
            f"{resource['resourceType']}/{resource['id']} already exists", field=f"{resource['resourceType']}.id"
        )
    return _write_many(session, [_Write(resource, "POST")], actor)[0]


def write_new(
    session: Session, resources: Sequence[dict[str, Any]], *, actor: Actor | None = None
) -> list[dict[str, Any]]:
    """Create resources that the caller has validated and whose ids it has checked to be free (a transaction
    Bundle's planned ids), with one set of bulk statements. The dicts are stored as given (meta is set on them)."""
    return _write_many(session, [_Write(res, "POST") for res in resources], actor)


def parse_etag(if_match: str) -> int:
    text = if_match.strip()
    text = text.removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f'If-Match must look like W/"3", not {if_match!r}', field="If-Match") from None


def update(
    session: Session,
    res_type: str,
    res_id: str,
    resource: dict[str, Any],
    *,
    actor: Actor | None = None,
    if_match: str | None = None,
    validated: bool = False,
) -> dict[str, Any]:
    """Replace the current version (or create the resource with this id). If-Match guards against lost updates.
    validated: as for `create`."""
    return replace(session, res_type, res_id, resource, actor=actor, if_match=if_match, validated=validated)[0]


def replace(
    session: Session,
    res_type: str,
    res_id: str,
    resource: dict[str, Any],
    *,
    actor: Actor | None = None,
    if_match: str | None = None,
    validated: bool = False,
) -> tuple[dict[str, Any], bool]:
    """`update`, also saying whether a live resource was there before (the API's 200 vs 201 and its hooks' action),
    from the one query that locks the current row."""
    resource = copy.deepcopy(resource)
    if not validated:
        validate(resource, res_type)
    if resource.get("id") is None:
        raise BadRequest("the resource in a PUT must carry its id", field=f"{res_type}.id")
    if resource["id"] != res_id:
        raise BadRequest(f"the body's id {resource['id']!r} is not the URL's id {res_id!r}", field=f"{res_type}.id")
    row = _current_row(session, res_type, res_id, lock=True)
    if if_match is not None:
        expected = parse_etag(if_match)
        current = row.version if row is not None else 0
        if expected != current:
            raise PreconditionFailed(
                f"{res_type}/{res_id} is at version {current}, not {expected}: read it again and re-apply your change",
                field="If-Match",
            )
    write = _Write(resource, "PUT", row.pk if row else None, row.version if row else 0)
    return _write_many(session, [write], actor)[0], row is not None and not row.deleted


def _content(resource: dict[str, Any] | None) -> dict[str, Any] | None:
    if resource is None:
        return None
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


def upsert(session: Session, resource: dict[str, Any], *, actor: Actor | None = None) -> dict[str, Any]:
    """Create-or-update by resource["id"] for domain projections; no new version when the content is unchanged."""
    if not resource.get("id"):
        raise BadRequest("upsert needs the resource's id", field=f"{resource.get('resourceType')}.id")
    resource = validate(copy.deepcopy(resource))
    res_type, res_id = resource["resourceType"], resource["id"]
    row = _current_row(session, res_type, res_id, lock=True)
    if row is not None and not row.deleted:
        current = session.execute(
            select(V.c.resource).where(V.c.resource_pk == row.pk, V.c.version == row.version)
        ).scalar()
        if current is not None and _content(current) == _content(resource):
            return cast(dict[str, Any], current)
    write = _Write(resource, "PUT", row.pk if row else None, row.version if row else 0)
    return _write_many(session, [write], actor)[0]


def delete(session: Session, res_type: str, res_id: str, *, actor: Actor | None = None) -> bool:
    """Soft delete: a new version marked deleted; history keeps every earlier version; search no longer finds it.
    Returns whether there was a live resource to delete (False: it was deleted already)."""
    row = _current_row(session, res_type, res_id, lock=True)
    if row is None:
        raise NotFound(f"there is no {res_type}/{res_id}", field=f"{res_type}.id")
    if row.deleted:
        return False
    if res_type == "Subscription":
        subscriptions.written(session)
    now = utcnow()
    session.execute(
        sa.update(R).where(R.c.pk == row.pk).values(version=row.version + 1, last_updated=now, deleted=True)
    )
    session.execute(
        insert(V).values(
            resource_pk=row.pk,
            version=row.version + 1,
            last_updated=now,
            deleted=True,
            method="DELETE",
            actor=_actor_name(actor),
            resource=None,
        )
    )
    for table in INDEX_TABLES:
        session.execute(sa.delete(table).where(table.resource_pk == row.pk))
    return True


# --- reads -----------------------------------------------------------------------------------------------------------


def read(session: Session, res_type: str, res_id: str) -> dict[str, Any]:
    row = session.execute(_READ, {"res_type": res_type, "res_id": res_id}).first()
    if row is None:
        raise NotFound(f"there is no {res_type}/{res_id}", field=f"{res_type}.id")
    if row.deleted:
        raise Gone(f"{res_type}/{res_id} was deleted (its history is kept)", field=f"{res_type}.id")
    return cast(dict[str, Any], row.resource)


def exists(session: Session, res_type: str, res_id: str) -> bool:
    row = _current_row(session, res_type, res_id)
    return row is not None and not row.deleted


def vread(session: Session, res_type: str, res_id: str, version: str | int) -> dict[str, Any]:
    try:
        vid = int(version)
    except (TypeError, ValueError):
        raise NotFound(f"{res_type}/{res_id} has no version {version!r}", field="versionId") from None
    row = session.execute(_VREAD, {"res_type": res_type, "res_id": res_id, "version": vid}).first()
    if row is None:
        raise NotFound(f"{res_type}/{res_id} has no version {vid}", field="versionId")
    if row.deleted:
        raise Gone(f"version {vid} of {res_type}/{res_id} is its deletion", field="versionId")
    return cast(dict[str, Any], row.resource)


@dataclass
class HistoryEntry:
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    method: str
    deleted: bool
    resource: dict[str, Any] | None


def history(
    session: Session,
    res_type: str | None = None,
    res_id: str | None = None,
    *,
    count: int = DEFAULT_COUNT,
    offset: int = 0,
    since: datetime | None = None,
) -> tuple[list[HistoryEntry], int]:
    """Versions newest first (instance, type or system level) and how many there are in all."""
    where: list[ColumnElement[bool]] = []
    if res_type:
        where.append(R.c.res_type == res_type)
    if res_id is not None:
        where.append(R.c.res_id == res_id)
        if _current_row(session, res_type or "", res_id) is None:
            raise NotFound(f"there is no {res_type}/{res_id}", field=f"{res_type}.id")
    if since is not None:
        where.append(V.c.last_updated >= since)
    base = select(R.c.res_type, R.c.res_id, V.c.version, V.c.last_updated, V.c.method, V.c.deleted, V.c.resource).join(
        R, V.c.resource_pk == R.c.pk
    )
    total = session.execute(
        select(func.count()).select_from(V.join(R, V.c.resource_pk == R.c.pk)).where(*where)
    ).scalar_one()
    rows = session.execute(
        base.where(*where).order_by(V.c.last_updated.desc(), V.c.version.desc(), R.c.res_id).offset(offset).limit(count)
    ).all()
    return [
        HistoryEntry(r.res_type, r.res_id, r.version, r.last_updated, r.method, r.deleted, r.resource) for r in rows
    ], total


# --- search ----------------------------------------------------------------------------------------------------------

CONTROL = {
    "_count",
    "_offset",
    "_cursor",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_elements",
    "_format",
    "_pretty",
}


@dataclass
class SearchResult:
    resources: list[dict[str, Any]]
    total: int | None
    includes: list[dict[str, Any]] = field(default_factory=list)
    next_offset: int | None = None
    offset: int = 0
    count: int = DEFAULT_COUNT
    warnings: list[str] = field(default_factory=list)
    summary_count: bool = False
    next_cursor: str | None = None  # keyset position after this page (default order only): see `search`
    elements: tuple[str, ...] = ()  # _elements: the matches carry only these (and are tagged SUBSETTED)
    summary: str | None = None  # _summary=true|text|data: the matches are trimmed to that summary


def _int_param(name: str, value: str, low: int, high: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}", field=name) from None
    if n < low or (high is not None and n > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{name} must be {bound}, not {n}", field=name)
    return n


def _encode_cursor(last_updated: datetime, res_id: str) -> str:
    raw = json.dumps([last_updated.isoformat(), res_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, res_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if not isinstance(res_id, str) or when.tzinfo is None:
            raise ValueError(token)
        return when, res_id
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest(
            "_cursor is not one this server wrote: follow the Bundle's next link", field="_cursor"
        ) from None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _split_values(value: str) -> list[str]:
    # Commas mean OR; "\," is a literal comma.
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in ",|$\\":
            cur += value[i + 1]
            i += 2
            continue
        if value[i] == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    parts.append(cur)
    return [p for p in parts if p != ""]


def _date_condition(low_col: Any, high_col: Any, prefix: str, lo: datetime, hi: datetime) -> ColumnElement[bool]:
    if prefix == "eq" or prefix == "ap":
        return and_(low_col >= lo, high_col <= hi)
    if prefix == "ne":
        return or_(low_col < lo, high_col > hi)
    if prefix == "lt":
        return low_col < lo
    if prefix == "le":
        return low_col <= hi
    if prefix == "gt":
        return high_col > hi
    if prefix == "ge":
        return high_col >= lo
    if prefix == "sa":
        return low_col > hi
    if prefix == "eb":
        return high_col < lo
    raise BadRequest(f"unknown prefix {prefix}")


def _number_range(name: str, text: str) -> tuple[float, float, float]:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise BadRequest(f"{name}: {text!r} is not a number", field=name) from None
    exponent = d.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(d), float(d - half), float(d + half)


# Search statements are cached by their shape. A parameter is first *planned* (parsed and checked, pure Python): the
# plan is a hashable shape — which parameter, which modifier, how many OR-ed values and of which kind (system|code or
# code, a date prefix, a typed reference...) — and the list of values. The SQL is then *built* from the shape alone,
# with one bind parameter per value, so a statement built for a shape is right for any values of that shape; `search`
# keeps the built statements, and the next search of the same shape only binds its values (building a statement
# cost more CPU than running it: ≈ 0.4 ms per sub-select).
Plan = tuple[tuple[Any, ...], list[Any]]


class _Binder:
    """Hands out bind parameters p0, p1, ... in the order `_build` asks for them, which is the order `_plan` listed
    the values in."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *, expanding: bool = False) -> Any:
        name = f"p{self.n}"
        self.n += 1
        return sa.bindparam(name, expanding=expanding)


def _plan(res_type: str, param: sp.SearchParam, modifier: str, raw: str) -> Plan:
    """Parse one parameter occurrence (values OR-ed): its shape and its values, or BadRequest."""
    name = param.name
    values = _split_values(raw)
    bound: list[Any]
    prefixes: list[str]
    kinds: list[Any]
    if not values:
        raise BadRequest(f"{name} has no value", field=name)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise BadRequest(f"{name}:missing takes true or false", field=name)
        return ("missing", res_type, name, param.type, raw == "true"), []
    if name == "_id":
        return ("_id",), [values]
    if name == "_lastUpdated":
        prefixes = []
        bound = []
        for v in values:
            prefix, lo, hi = sp.parse_date_param(name, v)
            prefixes.append(prefix)
            bound += [lo, hi]
        return ("_lastUpdated", tuple(prefixes)), bound
    if param.type == "token":
        if modifier not in ("", "not"):
            raise BadRequest(f"{name}:{modifier} is not supported (use :not or :missing)", field=name)
        kinds = []
        bound = []
        for v in values:
            if "|" in v:
                system, _, code = v.partition("|")
                if system and code:
                    kinds.append("system|code")
                    bound += [system, code]
                elif code:
                    kinds.append("|code")
                    bound.append(code)
                elif system:
                    kinds.append("system|")
                    bound.append(system)
            else:
                kinds.append("code")
                bound.append(v)
        return ("token", res_type, name, modifier, tuple(kinds)), bound
    if param.type == "string":
        if modifier not in ("", "exact", "contains"):
            raise BadRequest(f"{name}:{modifier} is not supported (use :exact or :contains)", field=name)
        if modifier == "exact":
            bound = values
        elif modifier == "contains":
            bound = [f"%{_like_escape(sp.normalize(v))}%" for v in values]
        else:
            bound = [f"{_like_escape(sp.normalize(v))}%" for v in values]
        return ("string", res_type, name, modifier, len(values)), bound
    if param.type == "date":
        prefixes = []
        bound = []
        for v in values:
            prefix, lo, hi = sp.parse_date_param(name, v)
            prefixes.append(prefix)
            bound += [lo, hi]
        return ("date", res_type, name, tuple(prefixes)), bound
    if param.type == "reference":
        typed: list[bool] = []
        bound = []
        for v in values:
            target_type = modifier or None
            if "/" in v:
                parsed = sp.parse_reference(v)
                if parsed is None:
                    raise BadRequest(f"{name}: {v!r} is not a reference (use Type/id or id)", field=name)
                target_type, target_id = parsed
            else:
                target_id = v
            typed.append(bool(target_type))
            bound += [target_id, target_type] if target_type else [target_id]
        return ("reference", res_type, name, tuple(typed)), bound
    if param.type in ("quantity", "number"):
        kinds = []
        bound = []
        for v in values:
            prefix, rest = sp.split_prefix(v)
            number, _, unit = rest.partition("|")
            system, _, code = unit.partition("|")
            value, qlo, qhi = _number_range(name, number)
            if prefix in ("eq", "ne"):
                bound += [qlo, qhi]
            elif prefix == "ap":
                bound += [value * 0.9, value * 1.1]
            else:
                bound.append(value)
            bound += [x for x in (system, code) if x]
            kinds.append((prefix, bool(system), bool(code)))
        return ("quantity", res_type, name, tuple(kinds)), bound
    raise BadRequest(f"{name} cannot be searched", field=name)


def _build(shape: tuple[Any, ...], bind: _Binder, patient: Any = None) -> ColumnElement[bool]:
    """The condition on fhir_resource (R) for a planned parameter: from its shape only (values are bind parameters).

    patient: the bind parameter of the search's single `patient` value, if it has one; a token (without modifier) or
    date condition then also asks its index rows for that patient, which reaches the patient's few matching rows
    instead of every row of the code or date range. The `patient` condition itself still applies, so the answer is
    the same (a resource's token and date rows carry each of its patient ids)."""
    kind = shape[0]
    if kind == "missing":
        _, res_type, name, param_type, missing = shape
        table = _table_for(param_type)
        has = R.c.pk.in_(select(table.resource_pk).where(table.res_type == res_type, table.param == name))
        return not_(has) if missing else has
    if kind == "_id":
        return R.c.res_id.in_(bind(expanding=True))
    if kind == "_lastUpdated":
        conds = []
        for prefix in shape[1]:
            lo, hi = bind(), bind()
            conds.append(_date_condition(R.c.last_updated, R.c.last_updated, prefix, lo, hi))
        return or_(*conds)
    if kind == "chain":
        return _build_chain(shape, bind)
    if kind == "has":
        return _build_has(shape, bind)
    res_type, name = shape[1], shape[2]
    if kind == "token":
        t = IDX_TOKEN
        conds = []
        for k in shape[4]:
            if k == "system|code":
                conds.append(and_(t.system == bind(), t.code == bind()))
            elif k == "|code":
                conds.append(and_(t.system.is_(None), t.code == bind()))
            elif k == "system|":
                conds.append(t.system == bind())
            else:
                conds.append(t.code == bind())
        sub = select(t.resource_pk).where(t.res_type == res_type, t.param == name, or_(*conds))
        if shape[3] == "not":
            return R.c.pk.not_in(sub)
        return R.c.pk.in_(sub if patient is None else sub.where(t.patient_id == patient))
    if kind == "string":
        s = IDX_STRING
        modifier = shape[3]
        conds = [
            s.value_exact == bind() if modifier == "exact" else s.value_norm.like(bind(), escape="\\")
            for _ in range(shape[4])
        ]
        return R.c.pk.in_(select(s.resource_pk).where(s.res_type == res_type, s.param == name, or_(*conds)))
    if kind == "date":
        d = IDX_DATE
        conds = []
        for prefix in shape[3]:
            lo, hi = bind(), bind()
            conds.append(_date_condition(d.low, d.high, prefix, lo, hi))
        sub = select(d.resource_pk).where(d.res_type == res_type, d.param == name, or_(*conds))
        return R.c.pk.in_(sub if patient is None else sub.where(d.patient_id == patient))
    if kind == "reference":
        r = IDX_REFERENCE
        conds = []
        for typed in shape[3]:
            cond = r.target_id == bind()
            if typed:
                cond = and_(cond, r.target_type.in_([bind(), ""]))
            conds.append(cond)
        return R.c.pk.in_(select(r.resource_pk).where(r.res_type == res_type, r.param == name, or_(*conds)))
    if kind == "quantity":
        q = IDX_QUANTITY
        conds = []
        for prefix, has_system, has_code in shape[3]:
            cmp: ColumnElement[bool]
            if prefix == "eq":
                cmp = and_(q.value >= bind(), q.value < bind())
            elif prefix == "ap":
                cmp = and_(q.value >= bind(), q.value <= bind())
            elif prefix == "ne":
                cmp = or_(q.value < bind(), q.value >= bind())
            else:
                cmp = {
                    "lt": q.value.__lt__,
                    "le": q.value.__le__,
                    "gt": q.value.__gt__,
                    "ge": q.value.__ge__,
                    "sa": q.value.__gt__,
                    "eb": q.value.__lt__,
                }[prefix](bind())
            if has_system:
                cmp = and_(cmp, q.system == bind())
            if has_code:
                cmp = and_(cmp, q.code == bind())
            conds.append(cmp)
        return R.c.pk.in_(select(q.resource_pk).where(q.res_type == res_type, q.param == name, or_(*conds)))
    raise AssertionError(shape)


_NAME = r"[A-Za-z][A-Za-z0-9-]*"


def _plan_chain(res_type: str, key: str, raw: str) -> Plan:
    """`subject:Patient.identifier=…`, `patient.name=…`: resources whose reference points at a current resource that
    matches the chained parameter. One level: `patient.organization.name` is refused."""
    head, _, tail = key.partition(".")
    ref_name, _, target_type = head.partition(":")
    param = sp.params_for(res_type).get(ref_name)
    if param is None or param.type != "reference":
        raise BadRequest(f"{key}: {ref_name} is not a reference parameter of {res_type}, so it cannot chain", field=key)
    if "." in tail:
        raise BadRequest(f"{key}: one level of chaining is supported (a.b, not a.b.c)", field=key)
    target = target_type or param.target
    if not target:
        raise BadRequest(f"{key}: name the type the reference points at, e.g. {ref_name}:Patient.{tail}", field=key)
    if target not in sp.REGISTRY:
        raise BadRequest(f"{key}: {target[:64]} is not a type this server searches", field=key)
    chain_name, _, chain_modifier = tail.partition(":")
    chained = sp.params_for(target).get(chain_name)
    if chained is None or chain_name.startswith("_has"):
        raise BadRequest(f"{key}: {chain_name[:64]!r} is not a search parameter of {target}", field=key)
    try:
        inner, values = _plan(target, chained, chain_modifier, raw)
    except BadRequest as exc:
        raise BadRequest(f"{key}: {exc.message}", field=key) from None
    return ("chain", res_type, ref_name, target, inner), values


def _build_chain(shape: tuple[Any, ...], bind: _Binder) -> ColumnElement[bool]:
    _, res_type, ref_name, target, inner = shape
    matched = _build(inner, bind)
    # correlate(None): the inner fhir_resource is its own scan, not the outer query's row.
    targets = select(R.c.res_id).where(R.c.res_type == target, R.c.deleted == false(), matched).correlate(None)
    ref = IDX_REFERENCE
    return R.c.pk.in_(
        select(ref.resource_pk).where(
            ref.res_type == res_type,
            ref.param == ref_name,
            ref.target_type.in_([target, ""]),
            ref.target_id.in_(targets),
        )
    )


def _plan_has(res_type: str, key: str, raw: str) -> Plan:
    """`_has:Observation:patient:code=…`: resources that some current Observation, matching code, points at through
    its `patient` reference (reverse chaining, one level)."""
    parts = key.split(":")
    if len(parts) not in (4, 5) or parts[0] != "_has":
        raise BadRequest(f"{key}: use _has:<Type>:<reference parameter>:<parameter>=value", field=key)
    _, source, ref_name, name = parts[:4]
    modifier = parts[4] if len(parts) == 5 else ""
    if source not in sp.REGISTRY:
        raise BadRequest(f"{key}: {source[:64]} is not a type this server searches", field=key)
    ref_param = sp.params_for(source).get(ref_name)
    if ref_param is None or ref_param.type != "reference":
        raise BadRequest(f"{key}: {ref_name[:64]} is not a reference parameter of {source}", field=key)
    param = sp.params_for(source).get(name)
    if param is None:
        raise BadRequest(f"{key}: {name[:64]!r} is not a search parameter of {source}", field=key)
    try:
        inner, values = _plan(source, param, modifier, raw)
    except BadRequest as exc:
        raise BadRequest(f"{key}: {exc.message}", field=key) from None
    return ("has", res_type, source, ref_name, inner), values


def _build_has(shape: tuple[Any, ...], bind: _Binder) -> ColumnElement[bool]:
    _, res_type, source, ref_name, inner = shape
    matched = _build(inner, bind)
    sources = select(R.c.pk).where(R.c.res_type == source, R.c.deleted == false(), matched).correlate(None)
    ref = IDX_REFERENCE
    return R.c.res_id.in_(
        select(ref.target_id).where(
            ref.res_type == source,
            ref.param == ref_name,
            ref.target_type.in_([res_type, ""]),
            ref.resource_pk.in_(sources),
        )
    )


SUMMARY_MODES = ("true", "false", "text", "data", "count")


def _elements_param(res_type: str, value: str) -> list[str]:
    names = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        name = item.removeprefix(f"{res_type}.")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            raise BadRequest(
                f"_elements lists element names such as name,birthDate, not {item[:64]!r}", field="_elements"
            )
        names.append(name)
    return names


def subsetting(res_type: str, params: Iterable[tuple[str, str]]) -> tuple[tuple[str, ...], str | None]:
    """`_elements` and `_summary` of a read (the other parameters of a read mean nothing and are ignored)."""
    elements: list[str] = []
    summary = None
    for key, value in params:
        if key == "_elements":
            elements += _elements_param(res_type, value)
        elif key == "_summary":
            if value not in SUMMARY_MODES or value == "count":
                raise BadRequest("_summary on a read is true, text, data or false", field="_summary")
            summary = value if value != "false" else None
    return tuple(dict.fromkeys(elements)), summary


def _table_for(param_type: str) -> Any:
    return {
        "token": IDX_TOKEN,
        "string": IDX_STRING,
        "date": IDX_DATE,
        "reference": IDX_REFERENCE,
        "quantity": IDX_QUANTITY,
        "number": IDX_QUANTITY,
    }.get(param_type, IDX_TOKEN)


def _sort_columns(res_type: str, spec: str) -> list[Any]:
    known = sp.params_for(res_type)
    cols: list[Any] = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        desc = item.startswith("-")
        name = item.lstrip("-")
        if name == "_lastUpdated":
            col: Any = R.c.last_updated
        elif name == "_id":
            col = R.c.res_id
        elif name in known and known[name].type in ("string", "date", "token", "quantity", "number"):
            t = _table_for(known[name].type)
            value = {"string": t.value_norm if known[name].type == "string" else None}.get(known[name].type)
            if known[name].type == "date":
                value = t.low
            elif known[name].type == "token":
                value = t.code
            elif known[name].type in ("quantity", "number"):
                value = t.value
            agg = func.max(value) if desc else func.min(value)
            col = select(agg).where(t.resource_pk == R.c.pk, t.param == name).correlate(R).scalar_subquery()
        else:
            raise BadRequest(f"cannot sort {res_type} by {name!r}", field="_sort")
        cols.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    return cols


def _patient_plan(shapes: list[tuple[Any, ...]]) -> int | None:
    """Index of the search's `patient=<one value>` parameter (the first, if it repeats), or None."""
    for i, shape in enumerate(shapes):
        if shape[0] == "reference" and shape[2] == "patient" and len(shape[3]) == 1:
            return i
    return None


@dataclass(frozen=True)
class _SearchStatements:
    page: Select[Any]  # binds: p0.. (the plans' values), page_offset, page_limit, and after/after_id with a cursor
    count: Select[Any]  # binds: p0..


SEARCH_STATEMENT_CACHE = 512
_SEARCH_STATEMENTS: dict[tuple[Any, ...], _SearchStatements] = {}


def _search_statements(res_type: str, shapes: list[tuple[Any, ...]], sort: str, cursor: bool) -> _SearchStatements:
    """The page and count statements of a search shape (see `_plan`)."""
    bind = _Binder()
    patient = sa.bindparam("patient", type_=IDX_TOKEN.patient_id.type) if _patient_plan(shapes) is not None else None
    where = and_(R.c.res_type == res_type, R.c.deleted == false(), *[_build(shape, bind, patient) for shape in shapes])
    count = select(func.count()).select_from(R).where(where)
    if sort:
        order = [*_sort_columns(res_type, sort), R.c.last_updated.asc(), R.c.res_id.asc()]
    else:
        order = [R.c.last_updated.asc(), R.c.res_id.asc()]
    if cursor:
        after = sa.bindparam("after", type_=R.c.last_updated.type)
        after_id = sa.bindparam("after_id", type_=R.c.res_id.type)
        where = and_(where, or_(R.c.last_updated > after, and_(R.c.last_updated == after, R.c.res_id > after_id)))
    page = (
        select(R.c.pk, R.c.last_updated, R.c.res_id, V.c.resource)
        .join(V, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
        .where(where)
        .order_by(*order)
        .offset(sa.bindparam("page_offset", type_=sa.Integer))
        .limit(sa.bindparam("page_limit", type_=sa.Integer))
    )
    return _SearchStatements(page, count)


def search(
    session: Session,
    res_type: str,
    params: Iterable[tuple[str, str]],
    *,
    strict: bool = False,
) -> SearchResult:
    """Search the current, non-deleted resources of one type. Unknown parameters are ignored with a warning (or
    refused when strict). Results are ordered by the _sort keys, then by id, so that offsets page stably."""
    params = list(params)
    known = sp.params_for(res_type)
    plans: list[Plan] = []
    warnings: list[str] = []
    count, offset, sort, total_mode, summary_count = DEFAULT_COUNT, 0, "", "accurate", False
    cursor: tuple[datetime, str] | None = None
    explicit_offset = False
    includes: list[str] = []
    revincludes: list[str] = []
    elements: list[str] = []
    summary: str | None = None
    for key, value in params:
        if key.startswith("_has:") or key == "_has":
            plans.append(_plan_has(res_type, key, value))
            continue
        if "." in key and not key.startswith("_"):
            plans.append(_plan_chain(res_type, key, value))
            continue
        name, _, modifier = key.partition(":")
        if name == "_count":
            count = _int_param("_count", value, 0, MAX_COUNT)
        elif name == "_offset":
            offset = _int_param("_offset", value, 0)
            explicit_offset = True
        elif name == "_cursor":
            cursor = _decode_cursor(value)
        elif name == "_sort":
            sort = value
        elif name == "_include":
            includes.append(value)
        elif name == "_revinclude":
            revincludes.append(value)
        elif name == "_summary":
            if value not in SUMMARY_MODES:
                raise BadRequest(f"_summary is one of {', '.join(SUMMARY_MODES)}", field="_summary")
            summary_count = value == "count"
            summary = value if value in ("true", "text", "data") else None
        elif name == "_elements":
            elements += _elements_param(res_type, value)
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise BadRequest("_total is none, estimate or accurate", field="_total")
            total_mode = value
        elif name in CONTROL:
            continue
        elif name in known:
            plans.append(_plan(res_type, known[name], modifier, value))
        else:
            message = f"unknown search parameter {key!r} for {res_type}: ignored"
            if strict:
                raise BadRequest(f"unknown search parameter {key!r} for {res_type}", field=key)
            warnings.append(message)
    _check_includes(res_type, includes, revincludes)
    if cursor is not None and sort:
        raise BadRequest("_cursor pages the default order; with _sort use _offset", field="_cursor")
    shape = (res_type, tuple(p[0] for p in plans), sort, cursor is not None)
    stmts = _SEARCH_STATEMENTS.get(shape)
    if stmts is None:
        stmts = _search_statements(res_type, [p[0] for p in plans], sort, cursor is not None)
        if len(_SEARCH_STATEMENTS) >= SEARCH_STATEMENT_CACHE:
            _SEARCH_STATEMENTS.clear()  # a crude bound: shapes are few in practice (one per kind of search)
        _SEARCH_STATEMENTS[shape] = stmts
    binds: dict[str, Any] = {f"p{i}": v for i, v in enumerate(v for p in plans for v in p[1])}
    hint = _patient_plan([p[0] for p in plans])
    if hint is not None:
        binds["patient"] = plans[hint][1][0]  # the target id (a typed value lists its type after it)
    total = None
    if summary_count:
        total = session.execute(stmts.count, binds).scalar_one()
        return SearchResult([], total, warnings=warnings, summary_count=True, count=0)
    # Default order pages by keyset: the next link names the last (lastUpdated, id) seen, so that resources created,
    # updated or deleted while a client pages never make it skip one (an offset would shift under it). An update
    # moves a resource to the end, where the client meets it again in its new version. _sort pages by offset.
    keyset = not sort and not explicit_offset
    page = {**binds, "page_offset": 0 if cursor is not None else offset, "page_limit": count + 1}
    if cursor is not None:
        page["after"], page["after_id"] = cursor
    rows = session.execute(stmts.page, page).all()
    has_more = count > 0 and len(rows) > count  # _count=0 asks for no entries, so no next page either
    rows = rows[:count]
    if total_mode != "none":
        if cursor is None and count > 0 and not has_more and (rows or offset == 0):
            # The page holds the last match: the total is known without counting (most searches fit in a page:
            # a patient's consents, a conditional create's match), which saves a query per search.
            total = offset + len(rows)
        else:
            total = session.execute(stmts.count, binds).scalar_one()
    resources = [r.resource for r in rows]
    pks = [r.pk for r in rows]
    included = _includes(session, res_type, pks, resources, includes, revincludes) if rows else []
    next_cursor = _encode_cursor(rows[-1].last_updated, rows[-1].res_id) if keyset and has_more and rows else None
    return SearchResult(
        resources,
        total,
        included,
        offset + count if has_more and cursor is None else None,
        offset,
        count,
        warnings,
        next_cursor=next_cursor,
        elements=tuple(dict.fromkeys(elements)),
        summary=summary,
    )


def _fetch_current(session: Session, refs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    by_type: dict[str, set[str]] = {}
    for t, i in refs:
        by_type.setdefault(t, set()).add(i)
    out: list[dict[str, Any]] = []
    for t, ids in by_type.items():
        id_list = sorted(ids)
        for start in range(0, len(id_list), 500):
            out.extend(
                session.execute(
                    select(V.c.resource)
                    .join(R, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
                    .where(R.c.res_type == t, R.c.res_id.in_(id_list[start : start + 500]), R.c.deleted == false())
                ).scalars()
            )
    return out


def _check_includes(res_type: str, includes: list[str], revincludes: list[str]) -> None:
    for spec in includes:
        parts = spec.split(":")
        if len(parts) < 2 or parts[0] != res_type:
            raise BadRequest(f"_include={spec}: use {res_type}:<reference parameter>[:<target type>]", field="_include")
        param = sp.params_for(res_type).get(parts[1])
        if param is None or param.type != "reference":
            raise BadRequest(
                f"_include={spec}: {parts[1]} is not a reference parameter of {res_type}", field="_include"
            )
    for spec in revincludes:
        parts = spec.split(":")
        param = sp.params_for(parts[0]).get(parts[1]) if len(parts) >= 2 else None
        if param is None or param.type != "reference":
            raise BadRequest(f"_revinclude={spec}: use <Type>:<reference parameter>", field="_revinclude")


def _includes(
    session: Session,
    res_type: str,
    pks: list[uuid.UUID],
    resources: list[dict[str, Any]],
    includes: list[str],
    revincludes: list[str],
) -> list[dict[str, Any]]:
    seen = {(r["resourceType"], r["id"]) for r in resources}
    wanted: list[tuple[str, str]] = []
    for spec in includes:
        parts = spec.split(":")
        ref = IDX_REFERENCE
        stmt = select(ref.target_type, ref.target_id).where(ref.resource_pk.in_(pks), ref.param == parts[1])
        if len(parts) > 2:
            stmt = stmt.where(ref.target_type == parts[2])
        for tt, ti in session.execute(stmt):
            if tt and (tt, ti) not in seen:
                wanted.append((tt, ti))
    ids = [r["id"] for r in resources]
    for spec in revincludes:
        parts = spec.split(":")
        ref = IDX_REFERENCE
        rows = session.execute(
            select(R.c.res_type, R.c.res_id)
            .join(FhirIdxReference.__table__, ref.resource_pk == R.c.pk)
            .where(
                ref.res_type == parts[0],
                ref.param == parts[1],
                ref.target_id.in_(ids),
                ref.target_type.in_([res_type, ""]),
                R.c.deleted == false(),
            )
            .limit(MAX_COUNT * 10)
        )
        wanted.extend((t, i) for t, i in rows if (t, i) not in seen)
    return [r for r in _fetch_current(session, dict.fromkeys(wanted)) if (r["resourceType"], r["id"]) not in seen]


def everything(session: Session, patient_id: str, *, count: int = MAX_COUNT, offset: int = 0) -> SearchResult:
    """Patient/$everything: the patient and every resource whose patient/subject reference points at them."""
    read(session, "Patient", patient_id)  # 404/410 before anything else
    ref = IDX_REFERENCE
    compartment = R.c.pk.in_(
        select(ref.resource_pk).where(
            ref.target_id == patient_id, ref.target_type.in_(["Patient", ""]), ref.param == "patient"
        )
    )
    where = and_(or_(and_(R.c.res_type == "Patient", R.c.res_id == patient_id), compartment), R.c.deleted == false())
    total = session.execute(select(func.count()).select_from(R).where(where)).scalar_one()
    rows = (
        session.execute(
            select(V.c.resource)
            .join(R, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
            .where(where)
            .order_by((R.c.res_type != "Patient"), R.c.res_type, R.c.last_updated, R.c.res_id)
            .offset(offset)
            .limit(count + 1)
        )
        .scalars()
        .all()
    )
    more = len(rows) > count
    return SearchResult(
        list(rows[:count]), total, next_offset=offset + count if more else None, offset=offset, count=count
    )


def find_existing(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Current rows for (type, id) pairs, in a few queries (bulk import asks for hundreds at a time)."""
    out: dict[tuple[str, str], Any] = {}
    by_type: dict[str, list[str]] = {}
    for t, i in keys:
        by_type.setdefault(t, []).append(i)
    for t, ids in by_type.items():
        for start in range(0, len(ids), 500):
            for row in session.execute(
                select(R.c.pk, R.c.res_id, R.c.version, R.c.deleted).where(
                    R.c.res_type == t, R.c.res_id.in_(ids[start : start + 500])
                )
            ):
                out[(t, row.res_id)] = row
    return out


def bulk_put(
    session: Session,
    resources: Sequence[dict[str, Any]],
    *,
    actor: Actor | None = None,
    index: Sequence[sp.IndexRows | None] | None = None,
) -> list[dict[str, Any]]:
    """Write already-validated resources that carry their ids (create or new version), with bulk statements.
    `index`, when given, holds each resource's already extracted search-index values (None: extract here)."""
    existing = find_existing(session, [(r["resourceType"], r["id"]) for r in resources])
    writes: list[_Write] = []
    seen: set[tuple[str, str]] = set()
    for n, res in enumerate(resources):
        key = (res["resourceType"], res["id"])
        if key in seen:  # the same resource twice in one batch: keep the last
            writes = [w for w in writes if (w.resource["resourceType"], w.resource["id"]) != key]
        seen.add(key)
        row = existing.get(key)
        rows = index[n] if index is not None else None
        writes.append(_Write(res, "PUT", row.pk if row else None, row.version if row else 0, rows))
    return _write_many(session, writes, actor)


def patient_of(resource: dict[str, Any]) -> str | None:
    """ "Patient/<id>" when the resource is a patient's data (itself a Patient or in a patient's compartment)."""
    res_type = resource.get("resourceType", "")
    if res_type == "Patient":
        return f"Patient/{resource.get('id')}"
    param = sp.REGISTRY.get(res_type, {}).get("patient")
    if param is None:
        return None
    for path in param.paths:
        for value in sp.walk(resource, path):
            for tt, ti in sp.reference_values(value, "Patient"):
                if tt == "Patient":
                    return f"Patient/{ti}"
    return None


__all__ = [
    "SearchResult",
    "bulk_put",
    "create",
    "delete",
    "everything",
    "history",
    "read",
    "search",
    "update",
    "upsert",
    "vread",
    "write_new",
]


def upsert_many(session: Session, resources: Sequence[dict[str, Any]], *, actor: Actor | None = None) -> int:
    """`upsert` for many resources at once (registry projections): a few queries, unchanged ones skipped.

    Returns how many resources got a new version."""
    checked = []
    for resource in resources:
        if not resource.get("id"):
            raise BadRequest("upsert needs the resource's id", field=f"{resource.get('resourceType')}.id")
        checked.append(validate(copy.deepcopy(resource)))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for res in checked:  # the same resource twice: the last one wins
        latest[(res["resourceType"], res["id"])] = res
    existing = find_existing(session, list(latest))
    live = [row.pk for row in existing.values() if not row.deleted]
    current: dict[uuid.UUID, Any] = {}
    for start in range(0, len(live), 500):
        chunk = live[start : start + 500]
        current.update(
            session.execute(
                select(V.c.resource_pk, V.c.resource)
                .join(R, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
                .where(R.c.pk.in_(chunk))
            ).all()
        )
    writes = []
    for key, res in latest.items():
        row = existing.get(key)
        if row is not None and not row.deleted and _content(current.get(row.pk)) == _content(res):
            continue
        writes.append(_Write(res, "PUT", row.pk if row else None, row.version if row else 0))
    _write_many(session, writes, actor)
    return len(writes)
