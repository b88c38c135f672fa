"""The index's FHIR face: the golden person as a FHIR Person, and Patient/$match (R4 operation).

Why Person and not Patient.link: Patient resources belong to the facilities that wrote them (their versions, their
ETags); a merge must not rewrite another hospital's record, and an unmerge must leave no trace in it. A Person resource
generated from the index groups them instead (`Person.link.target` → each Patient, `assurance` how sure we are).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from yilian.db import unit_of_work
from yilian.errors import BadRequest, Forbidden
from yilian.fhir import access, store
from yilian.fhir.validation import parse_body, validate
from yilian.patients import record, rules, service
from yilian.patients.models import MpiRecord
from yilian.security import audit
from yilian.security.actor import Actor
from yilian.web.auth import current_actor

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
ASSURANCE = {
    "exact-id": "level4",
    "manual": "level4",
    "review": "level4",
    "probabilistic": "level3",
    "initial": "level2",
}
MAX_MATCH_COUNT = 100

router = APIRouter(prefix="/fhir", tags=["fhir"])


def to_person(person: service.PersonView) -> dict[str, Any]:
    """The golden record: demographics of the most complete record, one link per Patient record."""
    records = person.records
    best = max(records, key=lambda r: (bool(r.resident_id), sum(1 for v in (r.display or {}).values() if v)))
    shown = best.display or {}
    resource: dict[str, Any] = {
        "resourceType": "Person",
        "id": str(person.id),
        "active": person.status == "active",
        "link": [{"target": {"reference": r.patient_ref}, "assurance": _assurance(r, records)} for r in records],
    }
    if best.resident_id:
        resource["identifier"] = [
            {
                "type": {"coding": [{"system": rules.V2_0203, "code": rules.RESIDENT_ID_TYPE}]},
                "system": rules.RESIDENT_ID_SYSTEM,
                "value": best.resident_id,
            }
        ]
    if shown.get("name"):
        resource["name"] = [{"text": shown["name"]}]
    if shown.get("gender") in ("male", "female", "other", "unknown"):
        resource["gender"] = shown["gender"]
    if shown.get("birthDate"):
        resource["birthDate"] = shown["birthDate"]
    if shown.get("phone"):
        resource["telecom"] = [{"system": "phone", "value": shown["phone"]}]
    if person.status == "merged" and person.merged_into:
        resource["link"] = [{"target": {"reference": f"Person/{person.merged_into}"}, "assurance": "level4"}]
    return resource


def _assurance(r: MpiRecord, records: list[MpiRecord]) -> str:
    """How sure the index is that this record is this person. The first record of a person was not matched to
    anything: it is as sure as the strongest link that others made to it (alone, it is the person)."""
    if r.link_method != "initial":
        return ASSURANCE.get(r.link_method, "level2")
    others = [ASSURANCE.get(o.link_method, "level2") for o in records if o.link_method != "initial"]
    return max(others) if others else "level4"


# --- Patient/$match --------------------------------------------------------------------------------------------------


def _parameters(body: Any) -> tuple[dict[str, Any], bool, int]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("Patient/$match takes a Parameters resource", field="Parameters")
    patient: dict[str, Any] | None = None
    only_certain, count = False, 10
    for i, p in enumerate(body.get("parameter") or []):
        if not isinstance(p, dict):
            raise BadRequest("each parameter is an object", field=f"Parameters.parameter[{i}]")
        name = p.get("name")
        if name == "resource":
            patient = p.get("resource")
            if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
                raise BadRequest("the resource parameter must hold a Patient", field="Parameters.parameter.resource")
        elif name == "onlyCertainMatches":
            if not isinstance(p.get("valueBoolean"), bool):
                raise BadRequest(
                    "onlyCertainMatches takes valueBoolean", field="Parameters.parameter.onlyCertainMatches"
                )
            only_certain = p["valueBoolean"]
        elif name == "count":
            value = p.get("valueInteger")
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_MATCH_COUNT:
                raise BadRequest(f"count takes valueInteger between 1 and {MAX_MATCH_COUNT}",
                                 field="Parameters.parameter.count")  # fmt: skip
            count = value
    if patient is None:
        raise BadRequest("Patient/$match needs a resource parameter holding a Patient", field="Parameters.parameter")
    return patient, only_certain, count


def match_bundle(
    session: Session, actor: Actor, patient: dict[str, Any], *, only_certain: bool, count: int, base: str
) -> dict[str, Any]:
    patient = validate(dict(patient), "Patient")
    service.sync_index(session)
    matches = service.find_matches(session, patient)
    entries: list[dict[str, Any]] = []
    seen_persons: set[Any] = set()
    for m in matches:
        if m.route == rules.Outcome.SEPARATE and m.score.probability < 0.5:
            continue
        if only_certain and m.grade != "certain":
            continue
        if m.person_id in seen_persons:
            continue  # one entry per person: the best-scoring record stands for it
        try:
            access.check(session, actor, "read", "Patient", m.score.right)
        except Forbidden:
            continue  # a match the caller may not read is not disclosed
        try:
            found = store.read(session, "Patient", m.score.right.split("/", 1)[1])
        except Exception:  # deleted since it was indexed
            continue
        seen_persons.add(m.person_id)
        audit.record(session, actor, "fhir.match", patient=m.score.right, detail={"score": m.score.probability})
        entries.append(
            {
                "fullUrl": f"{base}/{m.score.right}",
                "resource": found,
                "search": {
                    "mode": "match",
                    "score": round(m.score.probability, 6),
                    "extension": [{"url": MATCH_GRADE, "valueCode": m.grade}],
                },
            }
        )
        if len(entries) >= count:
            break
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


@router.post("/Patient/$match")
async def patient_match(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """R4 Patient/$match: candidates from the master patient index, best first, with score and match grade."""
    raw = await request.body()
    body = parse_body(raw)
    patient, only_certain, count = _parameters(body)
    base = str(request.base_url).rstrip("/") + "/fhir"
    with unit_of_work() as session:
        access.check(session, actor, "search", "Patient", None)
        bundle = match_bundle(session, actor, patient, only_certain=only_certain, count=count, base=base)
    return JSONResponse(bundle, media_type="application/fhir+json")


def person_resource(session: Session, actor: Actor, person_id: Any) -> dict[str, Any]:
    """The FHIR Person of a person the actor may read (the read is audited by person_record)."""
    pr = record.person_record(session, actor, person_id)
    view = service.get_person(session, pr.id)
    return to_person(view)


__all__ = ["match_bundle", "person_resource", "router", "to_person"]
