"""The network registry as the referral centre reads it, held in memory per database and invalidated by version.

Routing a referral reads the same few thousand receiving facilities for every request, and every step names the
same facilities again: reading them from the database each time was most of a referral's cost on a national
registry (≈ 20,000 facilities). This module keeps, per database URL:

- the receivers (every active facility above village level with a position) as NumPy columns — level, position,
  services and green-channel centres as bit masks — so that choosing candidates is one vectorised mask and one
  vectorised haversine, not a Python loop over the registry;
- the facilities already looked up (`Place`: name, level, position, departments, consortia), filled lazily.

Both are dropped when the registry changes: at once when this process commits a change to a facility, a consortium
or a membership (SQLAlchemy session events), and within `RECHECK_SECONDS` when another process does (a cheap
signature — facility count, newest `updated_at`, membership count — is compared that often).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.orm import ORMExecuteState, Session

from yilian.errors import NotFound
from yilian.network.models import Consortium, ConsortiumMember, Facility
from yilian.referrals import catalogue, routing

RECHECK_SECONDS = 5.0  # how stale another process's registry change may be seen here

# A service code → the department names facilities publish (the demo and most HIS use these Chinese names).
SERVICE_DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "cardiology": ("心血管内科", "心内科"),
    "neurology": ("神经内科",),
    "respiratory": ("呼吸内科", "呼吸与危重症医学科"),
    "endocrinology": ("内分泌科",),
    "nephrology": ("肾内科",),
    "gastroenterology": ("消化内科",),
    "emergency": ("急诊科",),
    "icu": ("重症医学科",),
    "surgery": ("普通外科",),
    "orthopaedics": ("骨科",),
    "neurosurgery": ("神经外科",),
    "obstetrics": ("妇产科", "产科"),
    "paediatrics": ("儿科", "新生儿科"),
    "oncology": ("肿瘤科", "肿瘤内科"),
    "rehabilitation": ("康复医学科",),
    "general_practice": ("全科医学科", "全科诊疗"),
    "tcm": ("中医科", "中医内科"),
}
DEPARTMENT_SERVICE = {d: s for s, ds in SERVICE_DEPARTMENTS.items() for d in ds}
SERVICE_BIT = {s: 1 << n for n, s in enumerate(SERVICE_DEPARTMENTS)}
CENTRE_COLUMNS = {
    "chest_pain": "chest_pain_centre",
    "stroke": "stroke_centre",
    "trauma": "trauma_centre",
    "critical_maternal": "critical_maternal_centre",
    "critical_neonatal": "critical_neonatal_centre",
}
CENTRE_BIT = {c: 1 << n for n, c in enumerate(CENTRE_COLUMNS)}
REGISTRY_MODELS = (Facility, Consortium, ConsortiumMember)
REGISTRY_TABLES = frozenset(m.__tablename__ for m in REGISTRY_MODELS)


def services_of(departments: Iterable[str]) -> frozenset[str]:
    return frozenset(DEPARTMENT_SERVICE[d] for d in departments if d in DEPARTMENT_SERVICE)


@dataclass(frozen=True)
class Place:
    """A facility as the referral workflow needs it (read-only)."""

    id: uuid.UUID
    name: str
    level: str
    division_code: str
    lon: float | None
    lat: float | None
    parent_id: uuid.UUID | None
    departments: tuple[str, ...]
    consortium_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def services(self) -> frozenset[str]:
        return services_of(self.departments)


@dataclass
class Receivers:
    """Every facility that can receive a referral, as parallel columns (row i of each is receiver i)."""

    candidates: list[routing.Candidate]
    level: np.ndarray  # int8, routing.LEVEL_RANK
    lon: np.ndarray  # float64 degrees
    lat: np.ndarray
    services: np.ndarray  # int64 bit mask of SERVICE_BIT
    centres: np.ndarray  # int64 bit mask of CENTRE_BIT


@dataclass
class _Snapshot:
    signature: tuple[Any, ...]
    generation: int
    checked_at: float
    receivers: Receivers | None = None
    places: dict[uuid.UUID, Place] = field(default_factory=dict)


_snapshots: dict[str, _Snapshot] = {}
_lock = threading.Lock()
_generation = 0  # bumped when this process commits a registry change


def _bump() -> None:
    global _generation
    with _lock:
        _generation += 1


@event.listens_for(Session, "after_flush")
def _note_registry_writes(session: Session, _ctx: Any) -> None:
    if any(isinstance(o, REGISTRY_MODELS) for o in chain(session.new, session.dirty, session.deleted)):
        session.info["referrals_registry_changed"] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_registry_writes(state: ORMExecuteState) -> None:
    # Bulk insert/update statements (the demo builder, imports) bypass the flush events.
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in REGISTRY_TABLES:
        state.session.info["referrals_registry_changed"] = True


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    # After the commit, not the flush: a reload between the two would cache what is about to change.
    if session.info.pop("referrals_registry_changed", False):
        _bump()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop("referrals_registry_changed", None)


def _signature(session: Session) -> tuple[Any, ...]:
    facilities = session.execute(select(func.count(), func.max(Facility.updated_at))).one()
    members = session.scalar(select(func.count()).select_from(ConsortiumMember))
    return (facilities[0], str(facilities[1]), members)


def _snapshot(session: Session) -> _Snapshot:
    key = str(session.get_bind().engine.url)
    now = time.monotonic()
    snap = _snapshots.get(key)
    if snap is not None and snap.generation == _generation and now - snap.checked_at < RECHECK_SECONDS:
        return snap
    signature = _signature(session)
    if snap is not None and snap.generation == _generation and snap.signature == signature:
        snap.checked_at = now
        return snap
    snap = _Snapshot(signature, _generation, now)
    _snapshots[key] = snap
    return snap


def invalidate() -> None:
    """Forget every cached registry (tests that rewrite the registry behind the ORM's back)."""
    _bump()


def receivers(session: Session) -> Receivers:
    snap = _snapshot(session)
    if snap.receivers is None:
        snap.receivers = _load_receivers(session)
    return snap.receivers


def _load_receivers(session: Session) -> Receivers:
    centre_cols = [getattr(Facility, col) for col in CENTRE_COLUMNS.values()]
    rows = session.execute(
        select(
            Facility.id,
            Facility.name,
            Facility.level,
            Facility.lon,
            Facility.lat,
            Facility.departments,
            Facility.division_code,
            *centre_cols,
        )
        .where(
            Facility.active.is_(True),
            Facility.level != "village_clinic",
            Facility.lon.is_not(None),
            Facility.lat.is_not(None),
        )
        .order_by(Facility.id)
    ).all()
    consortia: dict[uuid.UUID, set[uuid.UUID]] = {}
    for fid, cid in session.execute(
        select(ConsortiumMember.facility_id, ConsortiumMember.consortium_id)
        .join(Facility, Facility.id == ConsortiumMember.facility_id)
        .where(Facility.level != "village_clinic")
    ):
        consortia.setdefault(fid, set()).add(cid)
    candidates, levels, lons, lats, services, centres = [], [], [], [], [], []
    travel = catalogue.travel_model()
    for fid, name, level, lon, lat, departments, division, *flags in rows:
        offered = services_of(departments or ())
        has = frozenset(ch for ch, flag in zip(CENTRE_COLUMNS, flags, strict=True) if flag)
        candidates.append(
            routing.Candidate(
                facility_id=fid,
                name=name,
                level=level,
                lon=float(lon),
                lat=float(lat),
                services=offered,
                centres=has,
                consortium_ids=frozenset(consortia.get(fid, ())),
                road_factor=travel.road_factor(division),
            )
        )
        levels.append(routing.LEVEL_RANK.get(level, 0))
        lons.append(float(lon))
        lats.append(float(lat))
        services.append(sum(SERVICE_BIT[s] for s in offered))
        centres.append(sum(CENTRE_BIT[c] for c in has))
    return Receivers(
        candidates,
        np.array(levels, dtype=np.int8),
        np.array(lons, dtype=np.float64),
        np.array(lats, dtype=np.float64),
        np.array(services, dtype=np.int64),
        np.array(centres, dtype=np.int64),
    )


def within(
    session: Session,
    *,
    above_level: int,
    lon: float | None,
    lat: float | None,
    box_degrees: float,
    service: str | None,
    green_channel: str | None,
) -> list[routing.Candidate]:
    """Receivers above a level, inside a lon/lat box around a point, that can do the work (one vectorised mask)."""
    rx = receivers(session)
    if not rx.candidates:
        return []
    mask = rx.level > above_level
    if lon is not None and lat is not None:
        mask &= (np.abs(rx.lon - lon) <= box_degrees) & (np.abs(rx.lat - lat) <= box_degrees)
    if green_channel:
        mask &= (rx.centres & CENTRE_BIT.get(green_channel, 0)) != 0
    elif service:
        bit = SERVICE_BIT.get(service)
        if bit is None:
            return []  # nobody publishes a department for a service the platform does not know
        mask &= (rx.services & bit) != 0
    return [rx.candidates[i] for i in np.flatnonzero(mask)]


def place(session: Session, facility_id: uuid.UUID | None, *, field: str = "facility") -> Place:
    if facility_id is None:
        raise NotFound("no facility given", field=field)
    snap = _snapshot(session)
    found = snap.places.get(facility_id)
    if found is None:
        _load_places(session, snap, [facility_id])
        found = snap.places.get(facility_id)
        if found is None:
            raise NotFound(f"no facility {facility_id}", field=field)
    return found


def places(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Place]:
    """The facilities that exist among `ids` (unknown ids are left out), in at most two queries."""
    snap = _snapshot(session)
    wanted = {i for i in ids if i is not None}
    missing = [i for i in wanted if i not in snap.places]
    if missing:
        _load_places(session, snap, missing)
    return {i: snap.places[i] for i in wanted if i in snap.places}


def _load_places(session: Session, snap: _Snapshot, ids: list[uuid.UUID]) -> None:
    rows = session.execute(
        select(
            Facility.id,
            Facility.name,
            Facility.level,
            Facility.division_code,
            Facility.lon,
            Facility.lat,
            Facility.parent_id,
            Facility.departments,
        ).where(Facility.id.in_(ids))
    ).all()
    if not rows:
        return
    consortia: dict[uuid.UUID, set[uuid.UUID]] = {}
    for fid, cid in session.execute(
        select(ConsortiumMember.facility_id, ConsortiumMember.consortium_id).where(
            ConsortiumMember.facility_id.in_([r.id for r in rows])
        )
    ):
        consortia.setdefault(fid, set()).add(cid)
    for r in rows:
        snap.places[r.id] = Place(
            r.id,
            r.name,
            r.level,
            r.division_code,
            r.lon,
            r.lat,
            r.parent_id,
            tuple(r.departments or ()),
            frozenset(consortia.get(r.id, ())),
        )
