"""The shared record across a consortium: who may read a person, search, the person page, consent and break-glass.

Services take a Session and never commit. Every read of person-level data leaves an audit row; the decision itself is
security.scope.can_read_patient over facts gathered here (where the person's records were written, the consortia of
those facilities, and whether the patient restricted sharing with a FHIR Consent).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yilian.db import utcnow
from yilian.errors import Forbidden, Invalid, NotFound
from yilian.fhir import store
from yilian.patients import rules, service
from yilian.patients.features import display_name
from yilian.patients.models import MpiLink, MpiPerson, MpiRecord, MpiReview
from yilian.patients.names import name_keys
from yilian.security import actor_cache, audit, scope
from yilian.security.actor import Actor
from yilian.security.models import AuditEvent
from yilian.security.roles import CLINICAL_ROLES, JURISDICTION_ROLES, Role

# A break-glass reason opens a person's record to that user for this long (pages and /fhir alike).
BREAK_GLASS_HOURS = 12
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_POLICY = "urn:yilian:policy:share-within-consortium"
TIMELINE_TYPES = (
    "Encounter",
    "Condition",
    "Observation",
    "Procedure",
    "MedicationRequest",
    "DiagnosticReport",
    "Immunization",
    "AllergyIntolerance",
)


# --- facilities ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FacilityInfo:
    id: uuid.UUID
    code: str
    name: str
    level: str
    division_code: str
    consortium_ids: frozenset[uuid.UUID]


_FACILITY_TTL_S = 60.0
_facility_cache: dict[str, tuple[float, int, FacilityInfo | None]] = {}


def facility_info(session: Session, value: str | None) -> FacilityInfo | None:
    """The facility a record names (managingOrganization reference or facility code), with its consortia.

    Cached for a minute per process: the policy runs on every FHIR read and facilities rarely change. A write to the
    facility or consortium-membership tables in this process drops the entry at once (actor_cache's generation)."""
    if not value:
        return None
    now, generation = time.monotonic(), actor_cache.generation()
    hit = _facility_cache.get(value)
    if hit is not None and now - hit[0] < _FACILITY_TTL_S and hit[1] == generation:
        return hit[2]
    from yilian.network import service as network

    key = value.removeprefix("Organization/")
    info: FacilityInfo | None
    try:
        fid = network.resolve_facility_id(session, key)
    except NotFound:
        info = None
    else:
        f = network.get_facility(session, fid)
        consortia = frozenset(c.id for c in network.consortia_of_facility(session, fid))
        info = FacilityInfo(f.id, f.code, f.name, f.level, f.division_code, consortia)
    if len(_facility_cache) > 20_000:
        _facility_cache.clear()
    _facility_cache[value] = (now, generation, info)
    return info


def forget_facilities() -> None:
    """Drop the facility cache (after consortium changes in tests and tools)."""
    _facility_cache.clear()


# --- who may read ----------------------------------------------------------------------------------------------------


def _records(session: Session, person_id: uuid.UUID) -> list[MpiRecord]:
    return list(
        session.scalars(select(MpiRecord).where(MpiRecord.person_id == person_id).order_by(MpiRecord.patient_ref))
    )


def restricted(session: Session, refs: list[str]) -> bool:
    """Whether the patient restricted sharing to their consortium: an active Consent that denies, on any record."""
    for ref in refs:
        result = store.search(session, "Consent", [("patient", ref), ("status", "active"), ("_count", "20")])
        if any((c.get("provision") or {}).get("type") == "deny" for c in result.resources):
            return True
    return False


def facts(session: Session, records: list[MpiRecord], *, with_consent: bool = True) -> scope.PatientFacts:
    infos = [i for i in (facility_info(session, r.facility) for r in records) if i is not None]
    divisions = {i.division_code for i in infos} | {r.county for r in records if r.county}
    return scope.PatientFacts(
        facility_ids=frozenset(i.id for i in infos),
        consortium_ids=frozenset(c for i in infos for c in i.consortium_ids),
        division_codes=frozenset(divisions),
        share_outside_consortium=not restricted(session, [r.patient_ref for r in records]) if with_consent else True,
    )


def broke_glass(session: Session, actor: Actor, refs: list[str]) -> bool:
    """The actor gave a break-glass reason for this person within the last BREAK_GLASS_HOURS."""
    if not refs:
        return False
    since = utcnow() - timedelta(hours=BREAK_GLASS_HOURS)
    found = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.username == actor.username,
            AuditEvent.action == "patients.break_glass",
            AuditEvent.patient_ref.in_(refs),
            AuditEvent.at >= since,
        )
    )
    return bool(found)


@dataclass(frozen=True)
class Access:
    allowed: bool
    needs_break_glass: bool
    why: str
    broke_glass: bool = False


def decide(session: Session, actor: Actor, records: list[MpiRecord]) -> Access:
    """May this actor read the person these records make up? Cheap facts first, the consent only when it matters."""
    if actor.role == Role.SYSTEM_ADMIN:
        return Access(True, False, "system administrator")
    decision = scope.can_read_patient(actor, facts(session, records, with_consent=False))
    if decision.allowed and decision.why == "patient shares the record across the regional network":
        decision = scope.can_read_patient(actor, facts(session, records))
    if decision.allowed:
        return Access(True, False, decision.why)
    if decision.needs_break_glass and broke_glass(session, actor, [r.patient_ref for r in records]):
        return Access(True, True, decision.why, broke_glass=True)
    return Access(False, decision.needs_break_glass, decision.why)


def _person_records_for_ref(session: Session, patient_ref: str) -> list[MpiRecord]:
    """Every record of the person this record belongs to, in one query (the policy runs on every FHIR read)."""
    person = select(MpiRecord.person_id).where(MpiRecord.patient_ref == patient_ref).scalar_subquery()
    return list(session.scalars(select(MpiRecord).where(MpiRecord.person_id == person).order_by(MpiRecord.patient_ref)))


def fhir_policy(session: Session, actor: Actor, action: str, res_type: str, patient: str | None) -> None:
    """The decision behind /fhir for patient data (registered with fhir.access.register_policy by install()).

    Writes are limited by role in fhir.access; reads and searches of one patient's compartment follow the person's
    facts (all linked records, so a county doctor sees what the village clinic wrote about the same person)."""
    if action == "write" or actor.role == Role.SYSTEM_ADMIN:
        return
    if patient is None:
        if actor.role in CLINICAL_ROLES or actor.role == Role.CONSORTIUM_ADMIN:
            return  # each result is checked again with its patient before it leaves the server
        raise Forbidden(f"a {actor.role} reads person-level records only through a person's page", field=res_type)
    cache: dict[tuple[str, str], Access] = session.info.setdefault("patients.access", {})
    key = (actor.username, patient)
    access = cache.get(key)
    if access is None:
        records = _person_records_for_ref(session, patient)
        if not records:
            records = [_transient_record(session, patient)]
        access = decide(session, actor, records)
        cache[key] = access
        if access.broke_glass:
            audit.record(session, actor, "patients.read", patient=patient[:128], break_glass=True,
                         reason="break-glass given on the person page", detail={"via": "fhir"})  # fmt: skip
    if not access.allowed:
        person = session.scalar(select(MpiRecord.person_id).where(MpiRecord.patient_ref == patient))
        where = f" (/patients/persons/{person})" if person else ""
        if access.needs_break_glass:
            raise Forbidden(
                f"{access.why}: give a break-glass reason on the person's page first{where}", field=res_type
            )
        raise Forbidden(f"{access.why}: you may not read {patient}", field=res_type)


def _transient_record(session: Session, patient_ref: str) -> MpiRecord:
    """A Patient not indexed yet: judge it by its own managingOrganization and address."""
    from yilian.patients.features import features

    record = MpiRecord(patient_ref=patient_ref)
    try:
        patient = store.read(session, "Patient", patient_ref.split("/", 1)[-1])
    except Exception:  # gone or never there: nothing to decide on but the role
        return record
    f = features(patient)
    record.facility = service._facility_code(patient)
    record.county = f.county
    return record


# --- search ----------------------------------------------------------------------------------------------------------

_ID_LIKE = re.compile(r"^\d{17}[\dXx]$")
_PHONE_LIKE = re.compile(r"^[\d+\-\s()]{7,20}$")
_PINYIN_LIKE = re.compile(r"^[A-Za-z\s]{2,64}$")


@dataclass
class Hit:
    person_id: uuid.UUID
    name: str
    gender: str | None
    birth_date: str | None
    records: list[dict[str, Any]]  # ref, facility name, level, display
    access: Access


def query_kind(q: str) -> str:
    text = q.strip()
    if _ID_LIKE.match(text):
        return "resident_id"
    if _PHONE_LIKE.match(text) and len(re.sub(r"\D", "", text)) >= 7:
        return "phone"
    if _PINYIN_LIKE.match(text):
        return "pinyin"
    return "name"


def search(session: Session, actor: Actor, q: str, *, limit: int = 20) -> list[Hit]:
    """Persons whose records match a name (characters, homophones), pinyin, resident ID card number or phone."""
    text = (q or "").strip()
    if not text:
        raise Invalid("Type a name, pinyin, ID card number or phone number.", field="q")
    if len(text) > 64:
        raise Invalid("The search text is longer than 64 characters.", field="q")
    if (
        actor.role not in CLINICAL_ROLES
        and actor.role not in JURISDICTION_ROLES
        and actor.role
        not in (
            Role.CONSORTIUM_ADMIN,
            Role.SYSTEM_ADMIN,
        )
    ):
        raise Forbidden("your role does not read patient records", field="q")
    service.sync_index(session)
    kind = query_kind(text)
    if kind == "resident_id":
        condition = MpiRecord.resident_id == text.upper()
    elif kind == "phone":
        phone = rules.normalise_phone(text)
        if phone is None:
            raise Invalid("A phone number has at least 7 digits.", field="q")
        condition = MpiRecord.phone == phone
    elif kind == "pinyin":
        letters = re.sub(r"\s+", "", text.lower())
        condition = func.replace(MpiRecord.name_pinyin, " ", "") == letters
    else:
        keys = name_keys(text)
        if not keys.simplified:
            raise Invalid("Type a name, pinyin, ID card number or phone number.", field="q")
        condition = or_(MpiRecord.name == keys.simplified, MpiRecord.name_pinyin == keys.pinyin)
    person_ids = list(
        dict.fromkeys(
            session.scalars(select(MpiRecord.person_id).where(condition).order_by(MpiRecord.name).limit(limit * 4))
        )
    )[:limit]
    hits = []
    for person_id in person_ids:
        records = _records(session, person_id)
        access = decide(session, actor, records)
        if not access.allowed and not access.needs_break_glass:
            continue
        first = records[0].display
        hits.append(
            Hit(
                person_id,
                first.get("name") or "",
                first.get("gender"),
                first.get("birthDate") if access.allowed else None,
                [_record_row(session, r, full=access.allowed) for r in records],
                access,
            )
        )
        for r in records:
            audit.record(session, actor, "patients.search", patient=r.patient_ref,
                         detail={"kind": kind, "shown": "full" if access.allowed else "name only"})  # fmt: skip
    return hits


def _record_row(session: Session, r: MpiRecord, *, full: bool) -> dict[str, Any]:
    info = facility_info(session, r.facility)
    row: dict[str, Any] = {
        "ref": r.patient_ref,
        "facility": info.name if info else (r.display or {}).get("facility"),
        "facility_id": str(info.id) if info else None,
        "level": info.level if info else None,
        "link_method": r.link_method,
    }
    if full:
        row["display"] = r.display or {}
    return row


# --- the person page -------------------------------------------------------------------------------------------------


@dataclass
class TimelineItem:
    date: str
    kind: str  # resource type
    text: str
    status: str | None
    ref: str
    patient_ref: str
    facility: str | None
    level: str | None


@dataclass
class PersonRecord:
    id: uuid.UUID
    status: str
    merged_into: uuid.UUID | None
    name: str
    gender: str | None
    birth_date: str | None
    resident_id: str | None
    phone: str | None
    records: list[dict[str, Any]]
    history: list[MpiLink]
    timeline: list[TimelineItem]
    restricted: bool
    access: Access
    audit: list[AuditEvent] | None  # only for the patient's own facilities (and administrators)
    can_change_consent: bool
    can_review: bool
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_person(session: Session, person_id: uuid.UUID) -> MpiPerson:
    """The person, following merges to the one that holds the records now."""
    person = session.get(MpiPerson, person_id)
    seen = set()
    while person is not None and person.status == "merged" and person.merged_into_id and person.id not in seen:
        seen.add(person.id)
        person = session.get(MpiPerson, person.merged_into_id)
    if person is None:
        raise NotFound(f"No person {person_id} in the patient index.", field="person_id")
    return person


def _timeline(session: Session, records: list[MpiRecord], per_record: int = 300) -> list[TimelineItem]:
    items = []
    for r in records:
        info = facility_info(session, r.facility)
        try:
            result = store.everything(session, r.patient_ref.split("/", 1)[1], count=per_record)
        except Exception:  # a deleted Patient keeps its index row; it simply has nothing to show
            continue
        for res in result.resources:
            if res.get("resourceType") not in TIMELINE_TYPES:
                continue
            items.append(
                TimelineItem(
                    date=_when(res),
                    kind=res["resourceType"],
                    text=_what(res),
                    status=res.get("status") or (res.get("clinicalStatus") or {}).get("coding", [{}])[0].get("code"),
                    ref=f"{res['resourceType']}/{res['id']}",
                    patient_ref=r.patient_ref,
                    facility=info.name if info else (r.display or {}).get("facility"),
                    level=info.level if info else None,
                )
            )
    items.sort(key=lambda i: i.date, reverse=True)
    return items


def _when(res: dict[str, Any]) -> str:
    for key in ("effectiveDateTime", "onsetDateTime", "performedDateTime", "authoredOn", "occurrenceDateTime",
                "recordedDate", "issued", "date"):  # fmt: skip
        if res.get(key):
            return str(res[key])
    for key in ("period", "effectivePeriod", "performedPeriod"):
        if (res.get(key) or {}).get("start"):
            return str(res[key]["start"])
    return str((res.get("meta") or {}).get("lastUpdated", ""))


def _concept_text(concept: dict[str, Any] | None) -> str:
    if not concept:
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
        if coding.get("code"):
            return str(coding["code"])
    return ""


def _what(res: dict[str, Any]) -> str:
    t = res["resourceType"]
    if t == "Encounter":
        kinds = [_concept_text(c) for c in res.get("type") or []]
        return " · ".join(k for k in kinds if k) or (res.get("class") or {}).get("display") or "Encounter"
    if t == "MedicationRequest":
        return _concept_text(res.get("medicationCodeableConcept")) or "MedicationRequest"
    if t == "Immunization":
        return _concept_text(res.get("vaccineCode")) or "Immunization"
    text = _concept_text(res.get("code"))
    if t == "Observation":
        q = res.get("valueQuantity")
        if q and q.get("value") is not None:
            text += f" {q['value']} {q.get('unit') or q.get('code') or ''}".rstrip()
        elif res.get("valueString"):
            text += f" {res['valueString']}"
        elif res.get("valueCodeableConcept"):
            text += f" {_concept_text(res['valueCodeableConcept'])}"
    return text or t


def person_record(session: Session, actor: Actor, person_id: uuid.UUID) -> PersonRecord:
    """Everything the person page shows, if the actor may read it; Forbidden (saying why) otherwise. Audited."""
    service.sync_index(session)
    person = resolve_person(session, person_id)
    records = _records(session, person.id)
    if not records:
        raise NotFound(f"Person {person.id} has no records in the index.", field="person_id")
    access = decide(session, actor, records)
    refs = [r.patient_ref for r in records]
    if not access.allowed:
        audit.record(session, actor, "patients.read", patient=refs[0], outcome="denied", detail={"why": access.why})
        raise Forbidden(access.why, field="break_glass_reason" if access.needs_break_glass else "person_id",
                        details={"person_id": str(person.id), "needs_break_glass": access.needs_break_glass})  # fmt: skip
    for ref in refs:
        audit.record(session, actor, "patients.read", patient=ref, break_glass=access.broke_glass,
                     detail={"person": str(person.id), "why": access.why})  # fmt: skip
    f = facts(session, records, with_consent=False)
    own = actor.role == Role.SYSTEM_ADMIN or (actor.facility_id is not None and actor.facility_id in f.facility_ids)
    history = list(
        session.scalars(
            select(MpiLink).where(MpiLink.patient_ref.in_(refs)).order_by(MpiLink.at.desc(), MpiLink.id).limit(200)
        )
    )
    best = _best(records)
    return PersonRecord(
        id=person.id,
        status=person.status,
        merged_into=person.merged_into_id,
        name=best.get("name") or "",
        gender=best.get("gender"),
        birth_date=best.get("birthDate"),
        resident_id=next((r.resident_id for r in records if r.resident_id), None),
        phone=best.get("phone"),
        records=[_record_row(session, r, full=True) for r in records],
        history=history,
        timeline=_timeline(session, records),
        restricted=restricted(session, refs),
        access=access,
        audit=audit.for_patient(session, refs) if own else None,
        can_change_consent=own and actor.role in (CLINICAL_ROLES | {Role.SYSTEM_ADMIN}),
        can_review=actor.role in service.REVIEWER_ROLES,
    )


def _best(records: list[MpiRecord]) -> dict[str, Any]:
    """The golden view: the record with an ID card, else the most complete one."""

    def completeness(r: MpiRecord) -> tuple[int, int]:
        d = r.display or {}
        return (1 if r.resident_id else 0, sum(1 for v in d.values() if v))

    return dict(max(records, key=completeness).display or {})


def break_glass(session: Session, actor: Actor, person_id: uuid.UUID, reason: str) -> MpiPerson:
    """Record why this user must read a record outside their scope (emergency, transfer); audited, shown to the
    patient's facility, and it opens the record to this user for BREAK_GLASS_HOURS."""
    text = (reason or "").strip()
    if len(text) < 4:
        raise Invalid("Say why you need this record (at least a few words).", field="reason")
    if len(text) > 500:
        raise Invalid("The reason is longer than 500 characters.", field="reason")
    person = resolve_person(session, person_id)
    records = _records(session, person.id)
    access = decide(session, actor, records)
    if not access.allowed and not access.needs_break_glass:
        raise Forbidden(f"{access.why}: break-glass is not available to you for this person", field="reason")
    for r in records:
        audit.record(session, actor, "patients.break_glass", patient=r.patient_ref, reason=text, break_glass=True,
                     detail={"person": str(person.id)})  # fmt: skip
    return person


def set_sharing(session: Session, actor: Actor, person_id: uuid.UUID, share_outside_consortium: bool) -> bool:
    """The patient's choice, recorded by their own facility as a FHIR Consent: deny outside the consortium, or not."""
    person = resolve_person(session, person_id)
    records = _records(session, person.id)
    f = facts(session, records, with_consent=False)
    own = actor.facility_id is not None and actor.facility_id in f.facility_ids
    if not (actor.role == Role.SYSTEM_ADMIN or (own and actor.role in CLINICAL_ROLES)):
        raise Forbidden("only a clinician of a facility holding this person's records records their consent",
                        field="share_outside_consortium")  # fmt: skip
    refs = [r.patient_ref for r in records]
    active = []
    for ref in refs:
        result = store.search(session, "Consent", [("patient", ref), ("status", "active"), ("_count", "50")])
        active += [c for c in result.resources if (c.get("provision") or {}).get("type") == "deny"]
    if share_outside_consortium:
        for consent in active:
            store.update(session, "Consent", consent["id"], {**consent, "status": "inactive"}, actor=actor)
    elif not active:
        mine = next((r for r in records if (i := facility_info(session, r.facility)) and i.id == actor.facility_id),
                    records[0])  # fmt: skip
        store.create(session, consent_resource(mine.patient_ref, actor), actor=actor)
    for ref in refs:
        audit.record(session, actor, "patients.consent", patient=ref,
                     detail={"share_outside_consortium": share_outside_consortium})  # fmt: skip
    return share_outside_consortium


def consent_resource(patient_ref: str, actor: Actor) -> dict[str, Any]:
    """R4 Consent: the patient denies access to their record outside their consortium (break-glass excepted)."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": patient_ref},
        "dateTime": utcnow().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "policy": [{"uri": CONSENT_POLICY}],
        "provision": {"type": "deny"},
    }


# --- registration through the JSON API ------------------------------------------------------------------------------


@dataclass
class Registration:
    patient: dict[str, Any]
    result: service.MatchResult


def register(session: Session, actor: Actor, data: dict[str, Any]) -> Registration:
    """Register a patient at a facility: a FHIR Patient written to the store and matched against the index at once."""
    from yilian.network import service as network

    if actor.role not in CLINICAL_ROLES and actor.role != Role.SYSTEM_ADMIN:
        raise Forbidden("only clinical staff register patients", field="facility")
    facility_value = data.get("facility") or (str(actor.facility_id) if actor.facility_id else None)
    if not facility_value:
        raise Invalid("Name the facility the patient registers at.", field="facility")
    fid = network.resolve_facility_id(session, facility_value, field="facility")
    if actor.role != Role.SYSTEM_ADMIN and fid != actor.facility_id:
        raise Forbidden("you register patients at your own facility only", field="facility")
    facility = network.get_facility(session, fid)
    patient = patient_resource(data, facility_id=str(fid), facility_code=facility.code, facility_name=facility.name)
    stored = store.create(session, patient, actor=actor)
    result = service.match_one(session, stored, actor=actor)
    audit.record(session, actor, "patients.register", patient=result.patient_ref,
                 detail={"outcome": result.outcome, "person": str(result.person_id)})  # fmt: skip
    return Registration(stored, result)


def patient_resource(
    data: dict[str, Any], *, facility_id: str, facility_code: str, facility_name: str
) -> dict[str, Any]:
    name = (data.get("name") or "").strip()
    if not name:
        raise Invalid("A patient needs a name.", field="name")
    identifiers: list[dict[str, Any]] = []
    if data.get("resident_id"):
        card = rules.parse_resident_id(str(data["resident_id"]), today=utcnow().date(), field="resident_id")
        identifiers.append(
            {
                "type": {"coding": [{"system": rules.V2_0203, "code": rules.RESIDENT_ID_TYPE}]},
                "system": rules.RESIDENT_ID_SYSTEM,
                "value": card.number,
            }
        )
    if data.get("mrn"):
        identifiers.append(
            {
                "type": {"coding": [{"system": rules.V2_0203, "code": "MR"}]},
                "system": f"urn:yilian:facility:{facility_code}:mrn",
                "value": str(data["mrn"]),
            }
        )
    keys = name_keys(name)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [
            {"use": "official", "text": name, "family": keys.surname, "given": [keys.given] if keys.given else []}
        ],
        "managingOrganization": {
            "reference": f"Organization/{facility_id}",
            "display": facility_name,
            "identifier": {"system": "urn:yilian:facility-code", "value": facility_code},
        },
    }
    if data.get("gender"):
        resource["gender"] = data["gender"]
    if data.get("birth_date"):
        resource["birthDate"] = str(data["birth_date"])
    if data.get("phone"):
        resource["telecom"] = [{"system": "phone", "value": str(data["phone"])}]
    if data.get("address"):
        resource["address"] = [{"text": str(data["address"])}]
    if not identifiers:
        del resource["identifier"]
    if not resource["name"][0]["given"]:
        del resource["name"][0]["given"]
    return resource


def display_of(patient: dict[str, Any]) -> str:
    return display_name(patient)


# --- review: the reviewer's own consortium -------------------------------------------------------------------------


def in_review_scope(session: Session, actor: Actor, refs: list[str]) -> bool:
    """A consortium administrator or coordinator reviews pairs that touch a facility of their consortia."""
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    for r in session.scalars(select(MpiRecord).where(MpiRecord.patient_ref.in_(refs))):
        info = facility_info(session, r.facility)
        if info and (info.id == actor.facility_id or info.consortium_ids & actor.consortium_ids):
            return True
    return False


def require_review_scope(session: Session, actor: Actor, refs: list[str], field_name: str) -> None:
    service.require_reviewer(actor)
    if not in_review_scope(session, actor, refs):
        raise Forbidden("these records were not written in your consortium", field=field_name)


def review_items(session: Session, actor: Actor, *, status: str = "open", limit: int = 50) -> list[service.ReviewItem]:
    """The review queue this reviewer may work on, most likely matches first; viewing it is audited."""
    service.require_reviewer(actor)
    service.sync_index(session)
    admin = actor.role == Role.SYSTEM_ADMIN
    items = service.review_queue(session, status=status, limit=limit if admin else 1000)
    if not admin:
        items = [i for i in items if in_review_scope(session, actor, [i.left["ref"], i.right["ref"]])][:limit]
    for i in items:
        for side in (i.left, i.right):
            audit.record(session, actor, "patients.review.view", patient=side["ref"], detail={"review": str(i.id)})
    return items


def decide_review(
    session: Session, actor: Actor, review_id: uuid.UUID, decision: str, *, reason: str | None = None
) -> MpiReview:
    service.require_reviewer(actor)
    review = session.get(MpiReview, review_id)
    if review is None:
        raise NotFound("No such review item.", field="review_id")
    require_review_scope(session, actor, [review.left_ref, review.right_ref], "review_id")
    return service.decide_review(session, actor, review_id, decision, reason=reason)


def merge(session: Session, actor: Actor, keep: uuid.UUID, absorb: uuid.UUID, reason: str | None) -> MpiPerson:
    refs = [r.patient_ref for p in (keep, absorb) for r in _records(session, p)]
    require_review_scope(session, actor, refs, "absorb")
    return service.merge(session, actor, keep, absorb, reason=reason)


def unmerge(session: Session, actor: Actor, person_id: uuid.UUID, refs: list[str], reason: str | None) -> MpiPerson:
    current = resolve_person(session, person_id)
    mine = {r.patient_ref for r in _records(session, current.id)}
    strangers = [ref for ref in refs if ref not in mine]
    if strangers:
        raise Invalid(f"{', '.join(strangers)} is not a record of person {current.id}.", field="records")
    require_review_scope(session, actor, refs, "records")
    return service.unmerge(session, actor, refs, reason=reason)
