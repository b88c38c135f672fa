"""Referral use cases: every step is one function that checks who may do it, moves the state through the table in
states.py, writes an event, audits, projects the FHIR face and emits an outbox event. Services never commit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from typing import cast as typed
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import (
    JSON,
    String,
    Table,
    and_,
    bindparam,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy import inspect as orm_state
from sqlalchemy.orm import Session, make_transient_to_detached

from yilian.db import new_id, utcnow
from yilian.errors import Conflict, Forbidden, Invalid, NotFound
from yilian.events import service as outbox
from yilian.fhir import store
from yilian.fhir.models import FhirIdxReference, FhirResource, FhirResourceVersion
from yilian.network.models import Facility
from yilian.referrals import catalogue, insurance, registry, routing, rules, states
from yilian.referrals.models import Referral, ReferralEvent, ReferralInboxItem, ReferralSlot
from yilian.referrals.registry import CENTRE_COLUMNS, DEPARTMENT_SERVICE, SERVICE_DEPARTMENTS, Place
from yilian.referrals.schemas import DischargeIn, DownReferIn, ReferralIn, TimesIn
from yilian.referrals.states import State
from yilian.security import audit
from yilian.security.actor import Actor
from yilian.security.roles import Role

# --- reference data ---------------------------------------------------------------------------------------------------

CONDITION_SERVICE = {
    "hypertension": "cardiology",
    "coronary heart disease": "cardiology",
    "type-2 diabetes": "endocrinology",
    "COPD": "respiratory",
    "stroke": "neurology",
}
ICD_SERVICE = (
    (("I6",), "neurology"),
    (("I1", "I2"), "cardiology"),
    (("E1",), "endocrinology"),
    (("J4",), "respiratory"),
    (("O",), "obstetrics"),
)
GREEN_CHANNELS = tuple(CENTRE_COLUMNS)
URGENCIES = ("routine", "urgent", "emergency")
DIRECTIONS = ("up", "down", "lateral")
TIME_POINTS = ("symptom_onset", "first_contact", "referral", "transfer_start", "arrival", "key_treatment")
# Typical cost of an episode at the receiving level, for the out-of-pocket estimate on the referral page (fen).
TYPICAL_COST = {"township_centre": 250_000, "county_hospital": 800_000, "tertiary": 1_800_000}
TYPICAL_COST_DEFAULT = 2_500_000
LOINC_SYSTOLIC, LOINC_DIASTOLIC = "8480-6", "8462-4"
# Before acceptance a referral is waiting on the network: its acceptance SLA runs.
AWAITING_ACCEPTANCE = (State.SUBMITTED, State.TRIAGED, State.OFFERED, State.DECLINED, State.REDIRECTED)
OPEN = tuple(s for s in State if s not in states.FINAL)
SHANGHAI = ZoneInfo("Asia/Shanghai")  # "today" for a department is the local day


@lru_cache
def sla_config() -> dict[str, Any]:
    raw = (resources.files("yilian.referrals") / "sla.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(raw)
    for urgency in URGENCIES:
        terms = doc["urgency"][urgency]
        if int(terms["accept"]) <= 0 or int(terms["expire"]) < int(terms["accept"]):
            raise ValueError(f"sla.yaml: {urgency} needs 0 < accept ≤ expire (minutes)")
    after = doc.get("after_acceptance") or {}
    for key in ("book_within", "no_show_after"):
        if int(after.get(key, 0)) <= 0:
            raise ValueError(f"sla.yaml: after_acceptance.{key} must be a positive number of minutes")
    return doc


def after_acceptance(key: str) -> timedelta:
    return timedelta(minutes=int(sla_config()["after_acceptance"][key]))


def accept_within(urgency: str) -> timedelta:
    return timedelta(minutes=int(sla_config()["urgency"][urgency]["accept"]))


def expire_after(urgency: str) -> timedelta:
    return timedelta(minutes=int(sla_config()["urgency"][urgency]["expire"]))


# --- the clock ---------------------------------------------------------------------------------------------------------

_as_of: ContextVar[datetime | None] = ContextVar("yilian_referrals_as_of", default=None)


def clock() -> datetime:
    """When a step happens: now, or the moment a replay of past activity is at (`as_of`, used by the demo)."""
    return _as_of.get() or utcnow()


@contextmanager
def as_of(when: datetime) -> Iterator[None]:
    """Run steps as if at `when` (timezone-aware): their events, SLA deadlines, times and FHIR face carry it."""
    token = _as_of.set(when)
    try:
        yield
    finally:
        _as_of.reset(token)


# --- facilities (read-only view of the registry) ---------------------------------------------------------------------


def place(session: Session, facility_id: uuid.UUID | None, *, field: str = "facility") -> Place:
    """A facility as the workflow needs it, from the in-memory registry (loaded on first use, version-invalidated)."""
    return registry.place(session, facility_id, field=field)


def facility_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    return {fid: p.name for fid, p in registry.places(session, ids).items()}


def service_for(codes: Iterable[str], criteria_conditions: Iterable[str] = ()) -> str | None:
    for cond in criteria_conditions:
        if cond in CONDITION_SERVICE:
            return CONDITION_SERVICE[cond]
    for code in codes:
        for prefixes, service in ICD_SERVICE:
            if code.upper().startswith(prefixes):
                return service
    return None


def department_for(place_: Place | None, service: str | None) -> str | None:
    if place_ is None or service is None:
        return None
    for d in place_.departments:
        if DEPARTMENT_SERVICE.get(d) == service:
            return d
    return None


# --- clinical facts and criteria --------------------------------------------------------------------------------------


def _patient_id(patient_ref: str) -> str:
    kind, _, pid = patient_ref.partition("/")
    if kind != "Patient" or not pid:
        raise Invalid("patient must be a reference like Patient/<id>", field="patient")
    return pid


# The patient's Conditions and newest Observations, read with the Patient in one statement (built once: composing
# it per request cost more CPU than running it). Two FHIR searches plus a read did the same with three.
RECORD_TYPES = ("Condition", "Observation")
RECORD_LIMIT = 1000  # newest first: a chronic patient's years of readings need not all be parsed to route a referral
_RES = typed(Table, FhirResource.__table__)
_VER = typed(Table, FhirResourceVersion.__table__)
_REF = typed(Table, FhirIdxReference.__table__)
_RECORD = (
    select(_RES.c.res_type, _RES.c.deleted, _VER.c.resource)
    .join(_VER, and_(_VER.c.resource_pk == _RES.c.pk, _VER.c.version == _RES.c.version))
    .where(
        _RES.c.pk.in_(
            union_all(
                select(_RES.c.pk).where(_RES.c.res_type == "Patient", _RES.c.res_id == bindparam("pid")),
                select(_REF.c.resource_pk).where(
                    _REF.c.res_type.in_(RECORD_TYPES),
                    _REF.c.param == "subject",
                    _REF.c.target_id == bindparam("pid"),
                    _REF.c.target_type.in_(("Patient", "")),
                ),
            )
        ),
        or_(_RES.c.deleted == false(), _RES.c.res_type == "Patient"),
    )
    .order_by((_RES.c.res_type == "Patient").desc(), _RES.c.last_updated.desc())
    .limit(RECORD_LIMIT + 1)
)


def patient_record(session: Session, patient_ref: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Patient (None when absent or deleted) and their Conditions and newest Observations, oldest first."""
    rows = list(session.execute(_RECORD, {"pid": _patient_id(patient_ref)}))
    patient = None
    if rows and rows[0].res_type == "Patient":
        head = rows.pop(0)
        patient = None if head.deleted else typed(dict[str, Any], head.resource)
    return patient, [row.resource for row in reversed(rows[:RECORD_LIMIT])]


def _patient(session: Session, patient_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    patient, record = patient_record(session, patient_ref)
    if patient is None:
        raise NotFound(f"{patient_ref} is not in the shared record", field="patient")
    return patient, record


def patient_name(resource: dict[str, Any]) -> str:
    for name in resource.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        family, given = name.get("family", ""), "".join(name.get("given") or [])
        if family or given:
            return f"{family}{given}"
    return str(resource.get("id", ""))


def _at(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _obs_from(resource: dict[str, Any]) -> list[rules.Observation]:
    """Observations (blood-pressure panels carry their readings as components)."""
    ref = f"Observation/{resource['id']}"
    at = _at(resource.get("effectiveDateTime") or resource.get("issued"))
    out = []
    parts = [resource, *(resource.get("component") or [])]
    for part in parts:
        q = part.get("valueQuantity")
        if not q or q.get("value") is None:
            continue
        for coding in (part.get("code") or {}).get("coding") or []:
            if coding.get("code"):
                out.append(rules.Observation(coding["code"], float(q["value"]), str(q.get("unit", "")), at, ref))
    return out


def clinical_facts(
    record: Iterable[dict[str, Any]],
    *,
    conditions: Iterable[str] = (),
    observations: Iterable[rules.Observation] = (),
    flags: Iterable[str] = (),
    facility: Place | None = None,
    needed_service: str | None = None,
) -> rules.ClinicalFacts:
    """What the shared record says about the patient (`patient_record`), plus what the doctor records now (these
    count as newest)."""
    codes = {c.strip().upper() for c in conditions if c.strip()}
    obs: list[rules.Observation] = []
    for res in record:
        if res.get("resourceType") == "Condition":
            for coding in (res.get("code") or {}).get("coding") or []:
                if coding.get("code"):
                    codes.add(str(coding["code"]).upper())
        elif res.get("resourceType") == "Observation":
            obs.extend(_obs_from(res))
    now = clock()
    obs.extend(rules.Observation(o.code, o.value, o.unit, o.at or now, o.ref) for o in observations)
    return rules.ClinicalFacts(
        conditions=frozenset(codes),
        observations=tuple(obs),
        flags=frozenset(flags),
        facility_services=facility.services if facility else None,
        needed_services=frozenset({needed_service}) if needed_service else frozenset(),
    )


def match_dict(m: rules.Match) -> dict[str, Any]:
    c = m.criterion
    return {
        "id": c.id,
        "condition": c.condition,
        "direction": c.direction,
        "urgency": c.urgency,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "green_channel": c.green_channel,
        "evidence": list(m.evidence),
        "observations": [o.ref for o in m.observations if o.ref],
        "source": c.source,
    }


def criteria_for_patient(
    session: Session,
    actor: Actor,
    patient_ref: str,
    *,
    direction: str | None = None,
    conditions: Iterable[str] = (),
    observations: Iterable[rules.Observation] = (),
    flags: Iterable[str] = (),
    needed_service: str | None = None,
) -> list[dict[str, Any]]:
    """The referral criteria this patient meets, each with the observation that triggered it (shown on opening)."""
    _, record = _patient(session, patient_ref)
    here = place(session, actor.facility_id) if actor.facility_id else None
    facts = clinical_facts(
        record,
        conditions=conditions,
        observations=observations,
        flags=flags,
        facility=here,
        needed_service=needed_service,
    )
    audit.record(session, actor, "referral.criteria", patient=patient_ref, reason="referral criteria shown")
    return [match_dict(m) for m in rules.matching_criteria(facts, catalogue.load_criteria(), direction)]


# --- routing ------------------------------------------------------------------------------------------------------------


# Counting free slots runs on every submission: the statements are built once (with and without a department filter).
_FREE = (
    select(ReferralSlot.facility_id, func.count())
    .where(
        ReferralSlot.facility_id.in_(bindparam("ids", expanding=True)),
        ReferralSlot.referral_id.is_(None),
        ReferralSlot.start > bindparam("since"),
        ReferralSlot.start < bindparam("until"),
    )
    .group_by(ReferralSlot.facility_id)
)
_FREE_IN_DEPARTMENTS = _FREE.where(ReferralSlot.department.in_(bindparam("departments", expanding=True)))


def _free_capacity(session: Session, ids: Sequence[uuid.UUID], service: str | None) -> dict[uuid.UUID, int]:
    now = clock()
    params: dict[str, Any] = {"ids": list(ids), "since": now, "until": now + timedelta(days=7)}
    stmt = _FREE
    if service:
        stmt, params["departments"] = _FREE_IN_DEPARTMENTS, list(SERVICE_DEPARTMENTS.get(service, (service,)))
    return {fid: int(n) for fid, n in session.execute(stmt, params)}


def candidates(
    session: Session, sender: Place, service: str | None, green_channel: str | None
) -> list[routing.Candidate]:
    """Facilities above the sender that could take the patient, with what the router weighs."""
    # A bounding box keeps the work small on a national registry: ±2.5° (≈ 250 km) holds the county, the city and
    # the provincial centres; a green channel looks twice as far.
    return registry.within(
        session,
        above_level=routing.LEVEL_RANK.get(sender.level, 0),
        lon=sender.lon,
        lat=sender.lat,
        box_degrees=5.0 if green_channel else 2.5,
        service=service,
        green_channel=green_channel,
    )


def rank_receivers(
    session: Session,
    sender: Place,
    *,
    service: str | None,
    urgency: str,
    green_channel: str | None,
    patient_choice: uuid.UUID | None = None,
    outside_reason: str | None = None,
    limit: int = 5,
) -> list[dict[str, Any]]:
    req = routing.RoutingRequest(
        from_level=sender.level,
        lon=sender.lon or 0.0,
        lat=sender.lat or 0.0,
        service=service,
        urgency=urgency,
        green_channel=green_channel,
        consortium_ids=sender.consortium_ids,
        patient_choice=patient_choice,
        outside_reason=outside_reason,
        road_factor=catalogue.travel_model().road_factor(sender.division_code),
    )
    weights = routing.Weights(speed_kmh=catalogue.travel_model().speed_kmh)
    # Rank on everything but capacity, then look up free slots for the best few only and rank those again: one
    # small query instead of one over every facility in range.
    found = candidates(session, sender, service, green_channel)
    first, lowest = routing.shortlist(req, found, max(limit * 2, 10), weights)
    capacity = _free_capacity(session, [r.candidate.facility_id for r in first], service) if first else {}
    shortlist = [replace(r.candidate, free_capacity=capacity.get(r.candidate.facility_id)) for r in first]
    ranked = routing.rank(req, shortlist, weights, lowest_capable=lowest)[:limit]
    return [
        {
            "facility_id": str(r.candidate.facility_id),
            "name": r.candidate.name,
            "level": r.candidate.level,
            "score": r.score,
            "factors": r.factors,
            "reasons": list(r.reasons),
            "travel_minutes": r.travel_minutes,
            "free_capacity": r.candidate.free_capacity,
        }
        for r in ranked
    ]


# --- insurance ---------------------------------------------------------------------------------------------------------


def insurance_estimate(
    session: Session, sender: Place, receiver: Place | None, cost: int | None = None
) -> dict[str, Any] | None:
    """Expected out-of-pocket at the receiver: going alone versus through the consortium chain."""
    if receiver is None:
        return None
    try:
        region_rules = catalogue.insurance_rules(sender.division_code[:2])
    except NotFound:
        return None
    if receiver.level not in region_rules.levels:
        return None
    cost = cost if cost is not None else TYPICAL_COST.get(receiver.level, TYPICAL_COST_DEFAULT)
    in_chain = bool(sender.consortium_ids & receiver.consortium_ids)
    paid = region_rules.levels[sender.level].deductible if sender.level in region_rules.levels else 0
    alone = insurance.estimate(region_rules, cost=cost, level=receiver.level, out_of_county_without_referral=True)
    if in_chain:
        chain = insurance.estimate(
            region_rules, cost=cost, level=receiver.level, referred_from=sender.level, deductible_paid=paid
        )
    else:
        chain = insurance.estimate(region_rules, cost=cost, level=receiver.level)
    return {
        "region": region_rules.region,
        "cost": cost,
        "in_chain": in_chain,
        "before": {"out_of_pocket": alone.out_of_pocket, "deductible": alone.deductible, "rate": alone.rate},
        "after": {"out_of_pocket": chain.out_of_pocket, "deductible": chain.deductible, "rate": chain.rate},
        "saving": alone.out_of_pocket - chain.out_of_pocket,
        "reasons": list(chain.reasons),
    }


# --- access ------------------------------------------------------------------------------------------------------------


def _parties(r: Referral) -> set[uuid.UUID]:
    return {f for f in (r.sender_facility_id, r.receiver_facility_id, r.down_facility_id, r.target_facility_id) if f}


def _in_consortium(actor: Actor, r: Referral) -> bool:
    return bool({str(c) for c in actor.consortium_ids} & set(r.consortium_ids))


def may_read(actor: Actor, r: Referral) -> bool:
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    if actor.facility_id is not None and actor.facility_id in _parties(r):
        return True
    return actor.role == Role.REFERRAL_COORDINATOR and _in_consortium(actor, r)


def _may_act(actor: Actor, r: Referral, action: str) -> bool:
    """Beyond the role (states.py): the step must be the actor's to take for this referral."""
    if actor.role == Role.SYSTEM_ADMIN or str(actor.role) == states.SYSTEM:
        return True
    if actor.role == Role.REFERRAL_COORDINATOR:
        return _in_consortium(actor, r) or actor.facility_id in _parties(r)
    fid = actor.facility_id
    if action in ("submit", "cancel"):
        return fid == r.sender_facility_id
    if action in ("follow_up", "close"):
        return fid in (r.down_facility_id, r.sender_facility_id)
    if action == "accept" or action == "decline" or action == "redirect":
        return fid == r.receiver_facility_id
    return fid == r.receiver_facility_id


def _role(actor: Actor) -> str:
    # A system administrator stands in for the platform (SLA timers, imports).
    return states.SYSTEM if actor.role == Role.SYSTEM_ADMIN else str(actor.role)


def allowed_actions(actor: Actor, r: Referral) -> list[str]:
    acts = states.next_actions(State(r.state), _role(actor))
    return [a for a in acts if a != "expire" and _may_act(actor, r, a)]


# --- writing ------------------------------------------------------------------------------------------------------------

# A referral made in this request is held in memory, with its events and outbox rows, until it is sent (`submit`) or
# kept as a draft (`create(publish=True)`), and then written at once (`_write_new`): on PostgreSQL by one statement
# (the referral and its outbox rows as data-modifying CTEs of the events' INSERT), elsewhere by three INSERTs. Through
# the ORM the same referral cost an INSERT, an UPDATE once it was routed, two event INSERTs and an outbox INSERT, and
# the ORM's flush bookkeeping cost more CPU than the statements themselves. Once written it is an ordinary persistent
# object: later steps in the same session go through the ORM.
_UNWRITTEN = "referrals_unwritten"  # session.info: referral id -> _Unwritten
_REFERRAL_T = typed(Table, Referral.__table__)
_EVENT_T = typed(Table, ReferralEvent.__table__)
_INSERT_REFERRAL = insert(_REFERRAL_T)
_INSERT_EVENT = insert(_EVENT_T)
_REFERRAL_COLUMNS = tuple(c.key for c in _REFERRAL_T.columns)
_EVENT_COLUMNS = tuple(c.key for c in _EVENT_T.columns)
_JSON_COLUMNS = frozenset(c.key for c in _REFERRAL_T.columns if isinstance(c.type, JSON))
# Each row goes as one JSON parameter that PostgreSQL turns into a row of the table (every column is in it), so the
# statement is short and has three parameters: psycopg parses it once (it re-parses statements over 50 parameters
# or 4 kB on every execution, and SQLAlchemy compiles a multi-row VALUES afresh each time). The events' foreign key
# is checked at the end of the statement, when the referral is there. A JSON null becomes SQL NULL, as an absent
# value did through the ORM.
_WRITE_ONCE = text(
    'WITH r AS (INSERT INTO "referral" SELECT * FROM jsonb_populate_record(NULL::"referral", CAST(:r AS jsonb))), '
    'o AS (INSERT INTO "outbox_event" SELECT * FROM jsonb_populate_recordset(NULL::"outbox_event", CAST(:o AS jsonb))) '
    'INSERT INTO "referral_event" SELECT * FROM jsonb_populate_recordset(NULL::"referral_event", CAST(:e AS jsonb))'
)


@dataclass
class _Unwritten:
    events: list[ReferralEvent] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def _unwritten(session: Session, r: Referral) -> _Unwritten | None:
    pending: dict[uuid.UUID, _Unwritten] = session.info.get(_UNWRITTEN, {})
    return pending.get(r.id)


def _json_value(value: Any) -> Any:
    """A column's value as PostgreSQL reads it from JSON (ids and times as text; times must carry their zone)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware datetimes only")
        return value.isoformat()
    return value


def _json_rows(rows: Iterable[dict[str, Any]]) -> str:
    return json.dumps([{k: _json_value(v) for k, v in row.items()} for row in rows], ensure_ascii=False)


def _write_new(session: Session, r: Referral) -> None:
    """Write a referral made in this session, its events and its outbox rows; from here on the ORM tracks it."""
    pending = session.info[_UNWRITTEN].pop(r.id)
    values = orm_state(r).dict  # every column was set when it was made: a missing one is a KeyError, not a NULL
    row = {k: values[k] for k in _REFERRAL_COLUMNS}
    events = [{k: e.__dict__[k] for k in _EVENT_COLUMNS} for e in pending.events]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(
            _WRITE_ONCE,
            {"r": _json_rows([row])[1:-1], "e": _json_rows(events), "o": _json_rows(pending.outbox)},
        )
    else:
        # An absent JSON value is SQL NULL (the ORM wrote it so), not JSON null.
        conn.execute(_INSERT_REFERRAL, {k: v for k, v in row.items() if v is not None or k not in _JSON_COLUMNS})
        conn.execute(_INSERT_EVENT, events)
        outbox.write(session, pending.outbox)
    make_transient_to_detached(r)  # loaded as it is now, without a read
    session.add(r)


def _emit(session: Session, r: Referral, topic: str, payload: dict[str, Any]) -> None:
    pending = _unwritten(session, r)
    if pending is None:
        outbox.emit(session, topic, subject=f"Referral/{r.id}", payload=payload)
    else:
        pending.outbox.append(outbox.row(topic, subject=f"Referral/{r.id}", payload=payload))


def _event(
    session: Session,
    r: Referral,
    actor: Actor,
    action: str,
    before: str | None,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> ReferralEvent:
    seq = r.version  # every step bumps the version before writing its event: the n-th event has seq n
    ev = ReferralEvent(
        id=new_id(),
        referral_id=r.id,
        seq=seq,
        at=clock(),
        action=action,
        from_state=before,
        to_state=r.state,
        username=actor.username,
        role=str(actor.role),
        facility_id=actor.facility_id,
        note=note,
        detail=detail or {},
    )
    pending = _unwritten(session, r)
    if pending is None:
        session.add(ev)
    else:
        pending.events.append(ev)
    session.info.setdefault("referral_events", {}).setdefault(r.id, []).append(ev)
    return ev


def _publish(session: Session, r: Referral, action: str, actor: Actor) -> None:
    """The FHIR face and the outbox, in the same transaction as the change."""
    from yilian.referrals import fhir

    names = facility_names(session, _parties(r))
    # The translators' output is checked against the R4B models in tests/referrals/test_fhir.py, so the projection
    # skips per-write validation (about 5 ms a resource) and goes through the store's bulk paths.
    resources = fhir.resources_for(r, names)
    published = session.info.setdefault("referrals_published", set())
    if r.id in session.info.get("referrals_created", ()) and r.id not in published:
        # First projection of a referral made in this transaction: the ServiceRequest and Task that carry the id
        # just minted for it cannot exist yet, so they are created without asking the store (an outside system's
        # own ServiceRequest, or a Task id a Bundle planned, still goes through the look-up).
        fresh = [res for res in resources if res["id"] == str(r.id)]
        store.write_new(session, fresh, actor=actor)
        resources = [res for res in resources if res["id"] != str(r.id)]
    published.add(r.id)
    if resources:
        store.bulk_put(session, resources, actor=actor)
    _emit(
        session,
        r,
        f"referral.{action}",
        {
            "referral": str(r.id),
            "state": r.state,
            "urgency": r.urgency,
            "green_channel": r.green_channel,
            "sender": str(r.sender_facility_id),
            "receiver": str(r.receiver_facility_id) if r.receiver_facility_id else None,
            "down": str(r.down_facility_id) if r.down_facility_id else None,
            "task": f"Task/{r.task_id}",
        },
    )


def _transition(
    session: Session,
    actor: Actor,
    r: Referral,
    action: str,
    *,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Move r by `action` or raise: 409 listing the allowed next steps, 403 when it is not this actor's referral."""
    before = r.state
    try:
        after = states.step(State(before), action, _role(actor))
    except states.IllegalStep as exc:
        allowed = [a for a in exc.allowed if a != "expire" and _may_act(actor, r, a)]
        raise Conflict(
            f"cannot {action} a referral that is {before}; allowed next steps: {', '.join(allowed) or 'none'}",
            field="action",
            details={"allowed": allowed, "state": before},
        ) from None
    if not _may_act(actor, r, action):
        raise Forbidden(f"this referral is not yours to {action}", field="action")
    r.state = after.value
    r.version += 1
    r.updated_at = clock()
    _event(session, r, actor, action, before, note, detail)
    audit.record(session, actor, f"referral.{action}", patient=r.patient_ref, resource=f"Referral/{r.id}")
    return before


def _validate(data: ReferralIn) -> None:
    if data.direction not in DIRECTIONS:
        raise Invalid(f"direction must be one of {', '.join(DIRECTIONS)}", field="direction")
    if data.urgency not in URGENCIES:
        raise Invalid(f"urgency must be one of {', '.join(URGENCIES)}", field="urgency")
    if data.green_channel and data.green_channel not in GREEN_CHANNELS:
        raise Invalid(f"green_channel must be one of {', '.join(GREEN_CHANNELS)}", field="green_channel")
    if not data.reason.strip():
        raise Invalid("give the reason for the referral", field="reason")
    if not data.consent:
        raise Invalid("the patient's consent to the referral is required", field="consent")
    for code in data.diagnosis_codes:
        if not code or len(code) > 10 or not code[0].isalpha():
            raise Invalid(f"{code!r} is not an ICD-10 code (e.g. I10, E11.9)", field="diagnosis_codes")


def create(
    session: Session, actor: Actor, data: ReferralIn, *, task_id: str | None = None, publish: bool = True
) -> Referral:
    """A referral draft by a sending doctor; `submit` sends it (the API does both unless asked for a draft).

    With `publish` the draft is published and written at once. Without it the caller must hand the object to
    `submit` in the same session: that routes, publishes and writes it (one INSERT of the referral, routed)."""
    if str(actor.role) not in {str(r) for r in states.SENDERS} and actor.role != Role.SYSTEM_ADMIN:
        raise Forbidden(f"a {actor.role} does not send referrals", field="role")
    if actor.facility_id is None:
        raise Forbidden("a referral is sent from a facility: your account has none", field="facility")
    _validate(data)
    patient, record = _patient(session, data.patient)
    sender = place(session, actor.facility_id)
    target = place(session, data.target_facility_id, field="target_facility_id") if data.target_facility_id else None
    green = data.green_channel
    observations = []
    if data.systolic is not None:
        observations.append(rules.Observation(LOINC_SYSTOLIC, data.systolic, "mm[Hg]"))
    if data.diastolic is not None:
        observations.append(rules.Observation(LOINC_DIASTOLIC, data.diastolic, "mm[Hg]"))
    guessed = service_for(data.diagnosis_codes)
    facts = clinical_facts(
        record,
        conditions=data.diagnosis_codes,
        observations=observations,
        flags=data.flags,
        facility=sender,
        needed_service=data.service or guessed,
    )
    direction = "up" if data.direction == "lateral" else data.direction
    matches = rules.matching_criteria(facts, catalogue.load_criteria(), direction)
    if not green:
        green = next((m.criterion.green_channel for m in matches if m.criterion.green_channel), None)
    urgency = "emergency" if green else data.urgency
    if data.urgency == "routine" and matches and not green:
        urgency = matches[0].criterion.urgency  # the most urgent criterion met sets the floor
    service = data.service or service_for(data.diagnosis_codes, [m.criterion.condition for m in matches])
    rid = uuid.uuid4()
    now = clock()
    # Every column is set here: `_write_new` inserts them as they are and the answer is built from this object.
    r = Referral(
        id=rid,
        patient_ref=data.patient,
        patient_name=patient_name(patient),
        direction=data.direction,
        urgency=urgency,
        green_channel=green,
        state=State.DRAFT.value,
        reason=data.reason.strip(),
        diagnosis_codes=[c.strip().upper() for c in data.diagnosis_codes],
        criteria=[match_dict(m) for m in matches],
        summary=data.summary,
        record_refs=list(data.record_refs) + [o.ref for m in matches for o in m.observations if o.ref],
        service=service,
        consent=data.consent,
        sender_facility_id=sender.id,
        sender_username=actor.username,
        target_facility_id=target.id if target else None,
        target_department=data.target_department or department_for(target, service),
        consortium_ids=sorted(str(c) for c in sender.consortium_ids),
        outside_reason=data.outside_reason,
        times={k: v.isoformat() for k, v in (data.times or {}).items()},
        service_request_id=data.service_request_id or str(rid),
        task_id=task_id or str(rid),
        routing=[],
        stable=False,
        receiver_facility_id=None,
        receiver_department=None,
        down_facility_id=None,
        decline_reason=None,
        appointment=None,
        care_plan=None,
        follow_up=None,
        insurance=None,
        sla_due_at=None,
        accepted_at=None,
        accept_due_at=None,
        escalated_at=None,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.info.setdefault(_UNWRITTEN, {})[r.id] = _Unwritten()
    session.info.setdefault("referrals_created", set()).add(r.id)
    _event(session, r, actor, "create", None, detail={"criteria": [m.criterion.id for m in matches]})
    audit.record(session, actor, "referral.create", patient=r.patient_ref, resource=f"Referral/{r.id}")
    if publish:  # a referral sent at once is published and written by submit, in the same transaction
        _publish(session, r, "created", actor)
        _write_new(session, r)
    return r


def get(session: Session, actor: Actor, referral_id: uuid.UUID | str, *, lock: bool = False) -> Referral:
    try:
        rid = referral_id if isinstance(referral_id, uuid.UUID) else uuid.UUID(str(referral_id))
    except ValueError:
        raise NotFound(f"no referral {referral_id}", field="referral_id") from None
    stmt = select(Referral).where(Referral.id == rid)
    if lock:
        stmt = stmt.with_for_update()
    r = session.scalar(stmt)
    if r is None:
        raise NotFound(f"no referral {referral_id}", field="referral_id")
    if not may_read(actor, r):
        audit.record(session, actor, "referral.read", patient=r.patient_ref, outcome="denied")
        raise Forbidden("this referral is not one of your facility's or your referral centre's", field="referral_id")
    return r


def read(session: Session, actor: Actor, referral_id: uuid.UUID | str) -> Referral:
    r = get(session, actor, referral_id)
    audit.record(session, actor, "referral.read", patient=r.patient_ref, resource=f"Referral/{r.id}")
    return r


def by_task(session: Session, task_id: str) -> Referral | None:
    return session.scalar(select(Referral).where(Referral.task_id == task_id))


def history(session: Session, r: Referral) -> list[ReferralEvent]:
    if r.id in session.info.get("referrals_created", ()):
        # Created in this session: every event it has was written here (the answer to a new referral needs no read).
        return sorted(session.info["referral_events"][r.id], key=lambda e: e.seq)
    return list(
        session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == r.id).order_by(ReferralEvent.seq))
    )


def submit(session: Session, actor: Actor, referral_id: uuid.UUID | str | Referral) -> Referral:
    r = referral_id if isinstance(referral_id, Referral) else get(session, actor, referral_id, lock=True)
    # The reads below (registry, free slots) would flush a draft's pending changes and then update it again.
    with session.no_autoflush:
        _route_on_submit(session, actor, r)
    _publish(session, r, "submitted", actor)
    if r.green_channel:
        _green_channel_fast_track(session, r)
    if _unwritten(session, r) is not None:  # made by create(publish=False) in this request: written now, complete
        _write_new(session, r)
    return r


def _route_on_submit(session: Session, actor: Actor, r: Referral) -> None:
    _transition(session, actor, r, "submit")
    now = clock()
    r.sla_due_at = r.accept_due_at = now + accept_within(r.urgency)
    r.times = {**r.times, "referral": r.times.get("referral") or now.isoformat()}
    sender = place(session, r.sender_facility_id)
    if r.direction == "down":
        # Down-referrals go to the patient's own family-doctor team, named by the sender: nothing to rank.
        if r.target_facility_id is None:
            raise Invalid("a down-referral names the facility of the family-doctor team", field="target_facility_id")
        target = place(session, r.target_facility_id)
        r.routing = [
            {
                "facility_id": str(target.id),
                "name": target.name,
                "level": target.level,
                "score": 0.0,
                "factors": {},
                "reasons": ["the patient's family-doctor team"],
                "travel_minutes": 0.0,
                "free_capacity": None,
            }
        ]
        return
    r.routing = rank_receivers(
        session,
        sender,
        service=r.service,
        urgency=r.urgency,
        green_channel=r.green_channel,
        patient_choice=r.target_facility_id,
        # A green channel goes to the nearest capable centre, whichever consortium it belongs to.
        outside_reason=r.outside_reason or ("green channel" if r.green_channel else None),
    )


def _system(actor: Actor | None = None) -> Actor:
    return Actor(user_id=None, username="system", role=Role.SYSTEM_ADMIN, display_name="system")


def _green_channel_fast_track(session: Session, r: Referral) -> None:
    """A green channel skips the queue: the platform triages and offers to the best centre at once and alerts it."""
    system = _system()
    _transition(session, system, r, "triage", note="green channel: automatic triage")
    best = r.target_facility_id or (uuid.UUID(r.routing[0]["facility_id"]) if r.routing else None)
    if best is None:
        _publish(session, r, "triaged", system)
        return  # no centre found: it waits for the coordinator, already overdue-tracked
    receiver = place(session, best)
    r.receiver_facility_id = receiver.id
    r.receiver_department = department_for(receiver, "emergency") or department_for(receiver, r.service)
    _transition(session, system, r, "offer", note="green channel: offered to the nearest capable centre")
    r.insurance = insurance_estimate(session, place(session, r.sender_facility_id), receiver)
    _publish(session, r, "offered", system)
    _emit(
        session,
        r,
        "referral.green_channel_alert",
        {"referral": str(r.id), "channel": r.green_channel, "receiver": str(receiver.id)},
    )


def triage(session: Session, actor: Actor, referral_id: uuid.UUID | str, note: str | None = None) -> Referral:
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "triage", note=note)
    _publish(session, r, "triaged", actor)
    return r


def offer(
    session: Session,
    actor: Actor,
    referral_id: uuid.UUID | str,
    facility_id: uuid.UUID | None = None,
    department: str | None = None,
    outside_reason: str | None = None,
) -> Referral:
    """Offer to a receiver: the one named, else the router's first choice."""
    r = get(session, actor, referral_id, lock=True)
    if facility_id is None:
        if not r.routing:
            raise Invalid("the router found no receiver: name a facility", field="facility_id")
        facility_id = uuid.UUID(r.routing[0]["facility_id"])
    receiver = place(session, facility_id, field="facility_id")
    sender = place(session, r.sender_facility_id)
    if r.consortium_ids and not (receiver.consortium_ids & sender.consortium_ids):
        reason = outside_reason or r.outside_reason
        if not reason and facility_id != r.target_facility_id:
            raise Invalid("outside the own consortium only with a stated reason", field="outside_reason")
        r.outside_reason = reason
    r.receiver_facility_id = receiver.id
    r.receiver_department = department or department_for(receiver, r.service)
    _transition(session, actor, r, "offer", detail={"facility_id": str(receiver.id), "department": department})
    r.insurance = insurance_estimate(session, sender, receiver)
    _publish(session, r, "offered", actor)
    return r


def accept(session: Session, actor: Actor, referral_id: uuid.UUID | str, note: str | None = None) -> Referral:
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "accept", note=note)
    # Answered: the acceptance clock stops, and the booking clock starts (an accepted referral nobody books expires).
    r.accepted_at = clock()
    r.sla_due_at = clock() + after_acceptance("book_within")
    _publish(session, r, "accepted", actor)
    return r


def decline(session: Session, actor: Actor, referral_id: uuid.UUID | str, reason: str) -> Referral:
    if not reason or not reason.strip():
        raise Invalid("say why the referral is declined", field="reason")
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "decline", note=reason)
    r.decline_reason = reason.strip()
    _publish(session, r, "declined", actor)
    return r


def redirect(session: Session, actor: Actor, referral_id: uuid.UUID | str, reason: str) -> Referral:
    if not reason or not reason.strip():
        raise Invalid("say where or why the referral should go elsewhere", field="reason")
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "redirect", note=reason)
    r.decline_reason = reason.strip()
    _publish(session, r, "redirected", actor)
    return r


def publish_slots(
    session: Session,
    actor: Actor,
    *,
    department: str,
    start: datetime,
    count: int,
    minutes: int = 30,
    kind: str = "outpatient",
    facility_id: uuid.UUID | None = None,
) -> list[ReferralSlot]:
    """A department publishes outpatient slots (or beds) that referrals may book."""
    fid = facility_id or actor.facility_id
    if actor.role != Role.SYSTEM_ADMIN and fid != actor.facility_id:
        raise Forbidden("a department publishes slots of its own facility", field="facility_id")
    if kind not in ("outpatient", "bed"):
        raise Invalid("kind must be outpatient or bed", field="kind")
    if not 1 <= count <= 500:
        raise Invalid("count must be between 1 and 500", field="count")
    if not 5 <= minutes <= 24 * 60 * 14:
        raise Invalid("minutes must be between 5 and 20160", field="minutes")
    if start.tzinfo is None:
        raise Invalid("start needs a time zone (e.g. 2026-11-24T09:00+08:00)", field="start")
    facility = place(session, fid, field="facility_id")
    if department not in facility.departments:
        raise Invalid(f"{facility.name} has no department {department}", field="department")
    slots = []
    for i in range(count):
        s = start + timedelta(minutes=minutes * i) if kind == "outpatient" else start
        slots.append(
            ReferralSlot(
                facility_id=facility.id, department=department, kind=kind, start=s, end=s + timedelta(minutes=minutes)
            )
        )
    session.add_all(slots)
    session.flush()
    _publish_slots(session, slots, actor)
    return slots


def _publish_slots(session: Session, slots: Sequence[ReferralSlot], actor: Actor | None = None) -> None:
    """The FHIR face of published slots and beds (Schedule per department and kind, a Slot each, free or busy)."""
    from yilian.referrals import fhir

    schedules = {
        (s.facility_id, s.department, s.kind): fhir.to_schedule(
            s.facility_id, s.department, s.kind, facility_names(session, [s.facility_id]).get(s.facility_id, "")
        )
        for s in slots
    }
    store.bulk_put(session, [*schedules.values(), *(fhir.to_slot(s) for s in slots)], actor=actor)


def free_slots(session: Session, facility_id: uuid.UUID, department: str | None, limit: int = 20) -> list[ReferralSlot]:
    stmt = select(ReferralSlot).where(
        ReferralSlot.facility_id == facility_id, ReferralSlot.referral_id.is_(None), ReferralSlot.start > clock()
    )
    if department:
        stmt = stmt.where(ReferralSlot.department == department)
    return list(session.scalars(stmt.order_by(ReferralSlot.start, ReferralSlot.id).limit(limit)))


def slot_summary(session: Session, facility_id: uuid.UUID) -> list[dict[str, Any]]:
    """What a facility has free from now on, per department: outpatient slots, beds, and the next free time."""
    now = clock()
    rows = session.execute(
        select(ReferralSlot.department, ReferralSlot.kind, func.count(), func.min(ReferralSlot.start))
        .where(ReferralSlot.facility_id == facility_id, ReferralSlot.referral_id.is_(None), ReferralSlot.start > now)
        .group_by(ReferralSlot.department, ReferralSlot.kind)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for department, kind, n, first in rows:
        row = out.setdefault(department, {"department": department, "outpatient": 0, "bed": 0, "next": first})
        row[kind] = int(n)
        row["next"] = min(row["next"], first)
    return sorted(out.values(), key=lambda r: r["department"])


def book(
    session: Session,
    actor: Actor,
    referral_id: uuid.UUID | str,
    *,
    slot_id: uuid.UUID | None = None,
    start: datetime | None = None,
    kind: str = "outpatient",
) -> Referral:
    """Book a slot (or reserve a bed) atomically: a conditional update takes it; the loser gets 409 and the next one."""
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "book")
    if slot_id is not None:
        taken = session.execute(
            update(ReferralSlot)
            .where(
                ReferralSlot.id == slot_id,
                ReferralSlot.referral_id.is_(None),
                ReferralSlot.facility_id == r.receiver_facility_id,
            )
            .values(referral_id=r.id, taken_at=clock())
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            exists = session.get(ReferralSlot, slot_id)
            if exists is None or exists.facility_id != r.receiver_facility_id:
                raise NotFound(f"no slot {slot_id} at the receiving facility", field="slot_id")
            nxt = free_slots(session, exists.facility_id, exists.department, limit=1)
            hint = f"; next free: {nxt[0].id} at {nxt[0].start.isoformat()}" if nxt else "; no other free slot"
            raise Conflict(
                f"slot {slot_id} was just taken{hint}",
                field="slot_id",
                details={"next": str(nxt[0].id) if nxt else None},
            )
        slot = session.get(ReferralSlot, slot_id)
        assert slot is not None
        session.refresh(slot)
        _publish_slots(session, [slot], actor)  # the Slot is busy now
        r.appointment = {
            "kind": slot.kind,
            "slot_id": str(slot.id),
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "department": slot.department,
        }
    else:
        if start is None:
            raise Invalid("give a slot_id or a start time", field="slot_id")
        if start.tzinfo is None:
            raise Invalid("start needs a time zone", field="start")
        if kind not in ("outpatient", "bed"):
            raise Invalid("kind must be outpatient or bed", field="kind")
        r.appointment = {
            "kind": kind,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "department": r.receiver_department,
        }
    # Booked: the next deadline is the patient's arrival (a no-show expires the referral a while after the time).
    r.sla_due_at = datetime.fromisoformat(r.appointment["start"]) + after_acceptance("no_show_after")
    _publish(session, r, "booked", actor)
    return r


def arrive(session: Session, actor: Actor, referral_id: uuid.UUID | str) -> Referral:
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "arrive")
    r.sla_due_at = None  # arrived: no timer runs while the patient is in care
    r.times = {**r.times, "arrival": r.times.get("arrival") or clock().isoformat()}
    _publish(session, r, "arrived", actor)
    return r


def start_treatment(session: Session, actor: Actor, referral_id: uuid.UUID | str) -> Referral:
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "start_treatment")
    _publish(session, r, "in_treatment", actor)
    return r


def discharge(session: Session, actor: Actor, referral_id: uuid.UUID | str, data: DischargeIn) -> Referral:
    """Discharge; the down-referral criteria decide whether the patient is stable enough to go back down."""
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "discharge", note=data.summary)
    r.times = {**r.times, "discharge": clock().isoformat()}  # ends the Encounter's period
    observations = []
    if data.systolic is not None:
        observations.append(rules.Observation(LOINC_SYSTOLIC, data.systolic, "mm[Hg]"))
    if data.diastolic is not None:
        observations.append(rules.Observation(LOINC_DIASTOLIC, data.diastolic, "mm[Hg]"))
    facts = clinical_facts(
        patient_record(session, r.patient_ref)[1],
        conditions=r.diagnosis_codes,
        observations=observations,
        flags=data.flags,
    )
    down = rules.matching_criteria(facts, catalogue.load_criteria(), "down")
    r.stable = bool(down) or data.stable
    r.criteria = [c for c in r.criteria if c.get("direction") != "down"] + [match_dict(m) for m in down]
    _publish(session, r, "discharged", actor)
    return r


def down_refer(session: Session, actor: Actor, referral_id: uuid.UUID | str, data: DownReferIn) -> Referral:
    """Send the patient back down with a care plan, to the family-doctor team of their township by default."""
    if not data.plan.strip():
        raise Invalid("a down-referral carries a care plan", field="plan")
    r = get(session, actor, referral_id, lock=True)
    if data.facility_id is not None:
        target = place(session, data.facility_id, field="facility_id")
    else:
        sender = place(session, r.sender_facility_id)
        # A village clinic's patients are followed up by the family-doctor team of its township centre.
        target = place(session, sender.parent_id) if sender.level == "village_clinic" and sender.parent_id else sender
    _transition(session, actor, r, "down_refer", note=data.plan)
    r.down_facility_id = target.id
    r.care_plan = {
        "plan": data.plan.strip(),
        "medications": list(data.medications),
        "follow_up_days": data.follow_up_days,
        "due": (clock() + timedelta(days=data.follow_up_days)).isoformat(),
        "by": actor.username,
        "at": clock().isoformat(),
    }
    _publish(session, r, "down_referred", actor)
    return r


def follow_up(session: Session, actor: Actor, referral_id: uuid.UUID | str, note: str) -> Referral:
    if not note or not note.strip():
        raise Invalid("record what the follow-up found", field="note")
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "follow_up", note=note)
    r.follow_up = {"note": note.strip(), "by": actor.username, "at": clock().isoformat()}
    _publish(session, r, "followed_up", actor)
    return r


def close(session: Session, actor: Actor, referral_id: uuid.UUID | str) -> Referral:
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "close")
    _publish(session, r, "closed", actor)
    return r


def cancel(session: Session, actor: Actor, referral_id: uuid.UUID | str, reason: str) -> Referral:
    if not reason or not reason.strip():
        raise Invalid("say why the referral is cancelled", field="reason")
    r = get(session, actor, referral_id, lock=True)
    _transition(session, actor, r, "cancel", note=reason)
    r.sla_due_at = None
    if r.appointment and r.appointment.get("slot_id"):
        freed = (
            session.execute(
                update(ReferralSlot)
                .where(ReferralSlot.id == uuid.UUID(r.appointment["slot_id"]), ReferralSlot.referral_id == r.id)
                .values(referral_id=None, taken_at=None)
                .returning(ReferralSlot)
                .execution_options(synchronize_session="fetch")
            )
            .scalars()
            .all()
        )
        if freed:
            _publish_slots(session, freed, actor)  # free again for the next referral
    _publish(session, r, "cancelled", actor)
    return r


ACTIONS = {
    "submit": lambda s, a, rid, body: submit(s, a, rid),
    "triage": lambda s, a, rid, body: triage(s, a, rid, body.get("note")),
    "accept": lambda s, a, rid, body: accept(s, a, rid, body.get("note")),
    "decline": lambda s, a, rid, body: decline(s, a, rid, body.get("reason", "")),
    "redirect": lambda s, a, rid, body: redirect(s, a, rid, body.get("reason", "")),
    "arrive": lambda s, a, rid, body: arrive(s, a, rid),
    "start_treatment": lambda s, a, rid, body: start_treatment(s, a, rid),
    "follow_up": lambda s, a, rid, body: follow_up(s, a, rid, body.get("note", "")),
    "close": lambda s, a, rid, body: close(s, a, rid),
    "cancel": lambda s, a, rid, body: cancel(s, a, rid, body.get("reason", "")),
}


def record_times(session: Session, actor: Actor, referral_id: uuid.UUID | str, data: TimesIn) -> Referral:
    """Record points of a green-channel time chain (onset, first contact, transfer start, key treatment ...)."""
    r = get(session, actor, referral_id, lock=True)
    if r.state in {s.value for s in states.FINAL}:
        raise Conflict(f"the referral is {r.state}: its time chain is closed", field="state")
    if not _may_act(actor, r, "arrive") and not _may_act(actor, r, "cancel"):
        raise Forbidden("only the sending or receiving side records the time chain", field="times")
    times = dict(r.times)
    for point, at in data.times.items():
        if point not in TIME_POINTS:
            raise Invalid(f"time point must be one of {', '.join(TIME_POINTS)}", field=f"times.{point}")
        if at.tzinfo is None:
            raise Invalid("times need a time zone", field=f"times.{point}")
        times[point] = at.isoformat()
    r.times = times
    r.version += 1
    _event(
        session, r, actor, "record_times", r.state, detail={"times": {k: v.isoformat() for k, v in data.times.items()}}
    )
    _publish(session, r, "times", actor)
    return r


@dataclass
class ChainStatus:
    channel: str
    target_minutes: int
    door_target_minutes: int
    treatment: str
    points: list[tuple[str, str | None]] = field(default_factory=list)
    elapsed_minutes: float | None = None
    door_minutes: float | None = None
    within: bool | None = None


def chain_status(r: Referral, now: datetime | None = None) -> ChainStatus | None:
    """Elapsed time of a green-channel chain against its targets (whole chain; door-to-treatment)."""
    if not r.green_channel:
        return None
    terms = sla_config()["green_channels"][r.green_channel]
    times = {k: _at(v) for k, v in (r.times or {}).items()}
    start = times.get("symptom_onset") or times.get("first_contact") or times.get("referral")
    end = times.get("key_treatment") or now or clock()
    elapsed = (end - start).total_seconds() / 60 if start else None
    door = None
    if times.get("arrival") and times.get("key_treatment"):
        door = (times["key_treatment"] - times["arrival"]).total_seconds() / 60  # type: ignore[operator]
    return ChainStatus(
        channel=r.green_channel,
        target_minutes=int(terms["chain"]),
        door_target_minutes=int(terms["door_to_treatment"]),
        treatment=str(terms["treatment"]),
        points=[(p, r.times.get(p)) for p in TIME_POINTS],
        elapsed_minutes=round(elapsed, 1) if elapsed is not None else None,
        door_minutes=round(door, 1) if door is not None else None,
        within=None if elapsed is None else elapsed <= int(terms["chain"]),
    )


# --- timers and queues -------------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    escalated: list[Referral] = field(default_factory=list)
    expired: list[Referral] = field(default_factory=list)


# States whose timer (`sla_due_at`) the sweep watches: waiting for acceptance, waiting to be booked, waiting for the
# patient to arrive. Once the patient arrives no timer runs.
TIMED = (*AWAITING_ACCEPTANCE, State.ACCEPTED, State.BOOKED)


def sweep(session: Session, now: datetime | None = None, limit: int = 500) -> SweepResult:
    """Run the SLA timers once: escalate each referral past its acceptance deadline to the referral centre (once), and
    expire open referrals that went stale — unanswered past the expiry time of their urgency, accepted but never
    booked, or booked and the patient never came. Several servers may sweep at once: rows another sweep holds are
    skipped (PostgreSQL `SKIP LOCKED`), and escalation is recorded on the row, so nothing is escalated twice."""
    now = now or clock()
    system = _system()
    due = list(
        session.scalars(
            select(Referral)
            .where(Referral.state.in_([s.value for s in TIMED]), Referral.sla_due_at < now)
            .order_by(Referral.sla_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    out = SweepResult()
    for r in due:
        assert r.sla_due_at is not None
        if r.state in (State.ACCEPTED, State.BOOKED):
            note = "accepted but not booked in time" if r.state == State.ACCEPTED else "the patient did not arrive"
            _expire(session, system, r, note)
            out.expired.append(r)
            continue
        submitted: datetime = r.sla_due_at - accept_within(r.urgency)
        if now >= submitted + expire_after(r.urgency):
            _expire(session, system, r, "unanswered past the SLA")
            out.expired.append(r)
            continue
        if r.escalated_at is None:
            r.escalated_at = now
            r.version += 1
            _event(
                session, r, system, "escalate", r.state, note="acceptance SLA missed: escalated to the referral centre"
            )
            _publish(session, r, "escalated", system)
            out.escalated.append(r)
    return out


def _expire(session: Session, system: Actor, r: Referral, note: str) -> None:
    _transition(session, system, r, "expire", note=note)
    r.sla_due_at = None
    _publish(session, r, "expired", system)


def escalate_overdue(session: Session, now: datetime | None = None) -> list[Referral]:
    """The SLA timers once (see `sweep`); returns the referrals escalated."""
    return sweep(session, now).escalated


def _visible(stmt: Any, actor: Actor) -> Any:
    if actor.role == Role.SYSTEM_ADMIN:
        return stmt
    fid = actor.facility_id
    conds = []
    if fid is not None:
        conds += [
            Referral.sender_facility_id == fid,
            Referral.receiver_facility_id == fid,
            Referral.down_facility_id == fid,
        ]
    if actor.role == Role.REFERRAL_COORDINATOR:
        # consortium_ids is a JSON list of uuid strings: a text match works on SQLite and PostgreSQL alike.
        conds += [cast(Referral.consortium_ids, String).like(f"%{c}%") for c in actor.consortium_ids]
    if not conds:
        return stmt.where(Referral.id.is_(None))
    return stmt.where(or_(*conds))


def list_referrals(
    session: Session,
    actor: Actor,
    *,
    queue: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[Referral], int]:
    """A work queue (or all the actor may see), newest first; each read is audited once for the list."""
    now = now or clock()
    if not 1 <= limit <= 500:
        raise Invalid("limit must be between 1 and 500", field="limit")
    stmt = _visible(select(Referral), actor)
    fid = actor.facility_id
    if queue is None:
        pass
    elif queue == "sent":
        stmt = stmt.where(Referral.sender_facility_id == fid)
    elif queue == "to_triage":
        stmt = stmt.where(Referral.state.in_(["submitted", "declined", "redirected", "triaged"]))
    elif queue == "overdue":
        stmt = stmt.where(Referral.state.in_([s.value for s in AWAITING_ACCEPTANCE]), Referral.sla_due_at < now)
    elif queue == "escalated":
        stmt = stmt.where(
            Referral.escalated_at.is_not(None), Referral.state.in_([s.value for s in AWAITING_ACCEPTANCE])
        )
    elif queue == "offered":
        stmt = stmt.where(Referral.receiver_facility_id == fid, Referral.state == "offered")
    elif queue == "incoming":
        stmt = stmt.where(
            Referral.receiver_facility_id == fid,
            Referral.state.in_(["accepted", "booked", "arrived", "in_treatment", "discharged"]),
        )
    elif queue == "arriving_today":
        stmt = stmt.where(*_arriving_today(actor, now))
    elif queue == "down_referral_due":
        stmt = stmt.where(Referral.state == "discharged", Referral.stable.is_(True))
    elif queue == "follow_up":
        stmt = stmt.where(Referral.down_facility_id == fid, Referral.state.in_(["down_referred", "followed_up"]))
    elif queue == "open":
        stmt = stmt.where(Referral.state.in_([s.value for s in OPEN]))
    else:
        raise Invalid(
            "queue must be one of sent, to_triage, overdue, escalated, offered, incoming, arriving_today, "
            "down_referral_due, follow_up, open",
            field="queue",
        )
    if state:
        if state not in {s.value for s in State}:
            raise Invalid("unknown state", field="state")
        stmt = stmt.where(Referral.state == state)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    order = Referral.sla_due_at if queue in ("overdue", "escalated", "arriving_today") else Referral.created_at.desc()
    items = list(session.scalars(stmt.order_by(order, Referral.id).offset(offset).limit(limit)))
    if items:
        audit.record(
            session, actor, "referral.list", resource=f"Referral?queue={queue or ''}", detail={"count": len(items)}
        )
    return items, total


def _arriving_today(actor: Actor, now: datetime) -> list[Any]:
    """Booked for today (Asia/Shanghai) at the caller's facility. A booked referral's deadline is its appointment plus
    the no-show allowance (`book`), so "appointment today" is a range of the indexed deadline."""
    day = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    grace = after_acceptance("no_show_after")
    return [
        Referral.receiver_facility_id == actor.facility_id,
        Referral.state == State.BOOKED.value,
        Referral.sla_due_at >= day + grace,
        Referral.sla_due_at < day + timedelta(days=1) + grace,
    ]


def monthly_counts(session: Session, actor: Actor, division_prefix: str) -> list[dict[str, Any]]:
    """Up- and down-referrals per sending facility per month, for officials (aggregates, no person data)."""
    month = func.substr(cast(Referral.created_at, String), 1, 7)
    stmt = (
        select(Facility.name, Referral.direction, month, func.count())
        .join(Facility, Facility.id == Referral.sender_facility_id)
        .where(Facility.division_code.startswith(division_prefix), Referral.state != "draft")
        .group_by(Facility.name, Referral.direction, month)
        .order_by(month.desc(), func.count().desc())
        .limit(200)
    )
    return [
        {"facility": name, "direction": direction, "month": m, "count": n}
        for name, direction, m, n in session.execute(stmt)
    ]


def count_queues(session: Session, actor: Actor) -> dict[str, int]:
    names = {
        Role.REFERRAL_COORDINATOR: ("to_triage", "overdue", "escalated", "down_referral_due"),
        Role.COUNTY_DOCTOR: ("offered", "arriving_today", "incoming", "sent", "down_referral_due"),
        Role.SPECIALIST: ("offered", "arriving_today", "incoming", "sent", "down_referral_due"),
        Role.TOWNSHIP_DOCTOR: ("sent", "follow_up", "offered", "incoming"),
        Role.VILLAGE_DOCTOR: ("sent", "follow_up"),
    }.get(actor.role, ())
    return {q: _count(session, actor, q) for q in names}


def _count(session: Session, actor: Actor, queue: str) -> int:
    stmt = _visible(select(Referral.id), actor)
    fid = actor.facility_id
    now = clock()
    waiting = [s.value for s in AWAITING_ACCEPTANCE]
    queues: dict[str, list[Any]] = {
        "sent": [Referral.sender_facility_id == fid, Referral.state.in_([s.value for s in OPEN])],
        "to_triage": [Referral.state.in_(["submitted", "declined", "redirected", "triaged"])],
        "overdue": [Referral.state.in_(waiting), Referral.sla_due_at < now],
        "escalated": [Referral.escalated_at.is_not(None), Referral.state.in_(waiting)],
        "offered": [Referral.receiver_facility_id == fid, Referral.state == "offered"],
        "incoming": [
            Referral.receiver_facility_id == fid,
            Referral.state.in_(["accepted", "booked", "arrived", "in_treatment", "discharged"]),
        ],
        "arriving_today": _arriving_today(actor, now),
        "down_referral_due": [Referral.state == "discharged", Referral.stable.is_(True)],
        "follow_up": [Referral.down_facility_id == fid, Referral.state == "down_referred"],
    }
    where = queues[queue]
    filtered = stmt.where(*where).subquery()
    return int(session.scalar(select(func.count()).select_from(filtered)) or 0)


# --- notifications -------------------------------------------------------------------------------------------------------


def deliver_to_inboxes(session: Session, event: Any) -> None:
    """Outbox handler: put a referral's news into the in-app inbox of every facility involved. Runs in the worker's
    transaction together with marking the event delivered, so a crash delivers nothing and the retry delivers once;
    the unique (event, facility) key makes a second delivery impossible anyway."""
    payload = event.payload or {}
    if not payload.get("referral"):
        return
    facilities = {str(payload[k]) for k in ("sender", "receiver", "down") if payload.get(k)}
    done = set(session.scalars(select(ReferralInboxItem.facility_id).where(ReferralInboxItem.event_id == event.id)))
    for fid in sorted(facilities):
        facility_id = uuid.UUID(str(fid))
        if facility_id in done:
            continue
        session.add(
            ReferralInboxItem(
                event_id=event.id,
                facility_id=facility_id,
                referral_id=uuid.UUID(payload["referral"]),
                topic=event.topic,
                state=str(payload.get("state", "")),
            )
        )
    session.flush()


def inbox(session: Session, actor: Actor, limit: int = 50) -> list[ReferralInboxItem]:
    if actor.facility_id is None:
        return []
    return list(
        session.scalars(
            select(ReferralInboxItem)
            .where(ReferralInboxItem.facility_id == actor.facility_id)
            .order_by(ReferralInboxItem.created_at.desc(), ReferralInboxItem.id)
            .limit(limit)
        )
    )
