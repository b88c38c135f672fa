"""The registry's FHIR R4 face: one translator per resource, symmetric to_/from_, each tested round-trip.

Facility → Organization (+ Location, + one HealthcareService per department); consortium → Organization of type
"consortium" and one OrganizationAffiliation per member; practitioner → Practitioner; home posting and postings
elsewhere → PractitionerRole. Ids are the registry's uuids, so a resource and its row share an identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Protocol

from yilian.errors import Invalid
from yilian.network.rules import CAPABILITIES, ConsortiumForm, Kind, Level, MemberRole, Membership
from yilian.network.schemas import ConsortiumIn, FacilityIn, MemberIn, PostingIn, PractitionerIn

FACILITY_CODE = "urn:yilian:facility-code"
LEVEL_SYSTEM = "urn:yilian:facility-level"
KIND_SYSTEM = "urn:yilian:facility-kind"
ORG_TYPE_SYSTEM = "urn:yilian:organization-type"
FORM_SYSTEM = "urn:yilian:consortium-form"
MEMBER_ROLE_SYSTEM = "urn:yilian:consortium-role"
MEMBERSHIP_SYSTEM = "urn:yilian:consortium-membership"
TITLE_SYSTEM = "urn:yilian:practitioner-title"
POSTING_SYSTEM = "urn:yilian:posting-kind"
CAPABILITY_SYSTEM = "urn:yilian:facility-capability"
HL7_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
EXT = "https://yilian.example.org/fhir/StructureDefinition/"
EXT_DIVISION = EXT + "division-code"
EXT_BEDS = EXT + "beds"
EXT_DOCTORS = EXT + "doctors"
EXT_NURSES = EXT + "nurses"
EXT_STAFF = EXT + "staff-total"
EXT_OWNERSHIP = EXT + "ownership"
EXT_CAPABILITY = EXT + "capability"
EXT_APPROXIMATE = EXT + "position-approximate"
EXT_LEAD = EXT + "consortium-lead"
EXT_START = EXT + "consortium-start"
EXT_SPECIALTY = EXT + "consortium-specialty"
EXT_HOME = EXT + "home-facility"
EXT_SPECIALTY_P = EXT + "practitioner-specialty"
SERVICE_NS = uuid.UUID("5d8d3c1e-6c7a-4c1e-9f0b-9a1f3b7a2e10")

LEVEL_DISPLAY = {
    Level.NATIONAL_REGIONAL_CENTRE: "National regional medical centre",
    Level.TERTIARY: "Provincial/city tertiary hospital",
    Level.COUNTY_HOSPITAL: "County hospital",
    Level.TOWNSHIP_CENTRE: "Township/community health centre",
    Level.VILLAGE_CLINIC: "Village clinic/community station",
}


class FacilityLike(Protocol):
    id: uuid.UUID
    code: str
    name: str
    name_en: str | None
    level: str
    kind: str
    ownership: str
    division_code: str
    parent_id: uuid.UUID | None
    address: str | None
    lon: float | None
    lat: float | None
    position_approximate: bool
    beds: int
    doctors: int
    nurses: int
    staff_total: int
    departments: list[str]
    active: bool


def _ext(url: str, kind: str, value: Any) -> dict[str, Any]:
    return {"url": url, kind: value}


def _ext_value(resource: Mapping[str, Any], url: str, default: Any = None) -> Any:
    for e in resource.get("extension", []) or []:
        if e.get("url") == url:
            for k, v in e.items():
                if k.startswith("value"):
                    return v
    return default


def _ext_values(resource: Mapping[str, Any], url: str) -> list[Any]:
    return [
        v
        for e in resource.get("extension", []) or []
        if e.get("url") == url
        for k, v in e.items()
        if k.startswith("value")
    ]


def _code(concepts: Iterable[Mapping[str, Any]] | None, system: str) -> str | None:
    for concept in concepts or []:
        for coding in concept.get("coding", []) or []:
            if coding.get("system") == system:
                return coding.get("code")
    return None


def _ref_id(ref: Mapping[str, Any] | None, rtype: str, field: str) -> str | None:
    if not ref:
        return None
    value = str(ref.get("reference", ""))
    prefix = f"{rtype}/"
    if not value.startswith(prefix):
        raise Invalid(f"{field} must reference a {rtype}", field=field)
    return value.removeprefix(prefix)


def address(division_code: str, names: Mapping[str, str], text: str | None = None) -> dict[str, Any]:
    """Chinese address parts: state = province, city = prefecture city, district = county; the code as extension."""
    addr: dict[str, Any] = {
        "extension": [_ext(EXT_DIVISION, "valueCode", division_code)],
        "use": "work",
        "country": "CN",
    }
    parts = {"state": division_code[:2], "city": division_code[:4], "district": division_code[:6]}
    for key, code in parts.items():
        if len(division_code) >= len(code) and code in names:
            addr[key] = names[code]
    # The township has no Address part of its own: it leads the line. (No `text`: it would repeat the parts, and
    # every string is indexed with its pinyin forms.)
    township = names.get(division_code[:9]) if len(division_code) == 9 else None
    line = [x for x in (township, text) if x]
    if line:
        addr["line"] = line
    return addr


# ---------------------------------------------------------------------------------------------------------------------
# Organization (facility)


def to_organization(f: FacilityLike, names: Mapping[str, str]) -> dict[str, Any]:
    ext = [
        _ext(EXT_OWNERSHIP, "valueCode", f.ownership),
        _ext(EXT_BEDS, "valueInteger", f.beds),
        _ext(EXT_DOCTORS, "valueInteger", f.doctors),
        _ext(EXT_NURSES, "valueInteger", f.nurses),
        _ext(EXT_STAFF, "valueInteger", f.staff_total),
    ]
    ext += [_ext(EXT_CAPABILITY, "valueCode", c) for c in CAPABILITIES if getattr(f, c, False)]
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(f.id),
        "extension": ext,
        "identifier": [{"use": "official", "system": FACILITY_CODE, "value": f.code}],
        "active": bool(f.active),
        "type": [
            {"coding": [{"system": HL7_ORG_TYPE, "code": "prov", "display": "Healthcare Provider"}]},
            {
                "coding": [
                    {"system": LEVEL_SYSTEM, "code": f.level, "display": LEVEL_DISPLAY.get(Level(f.level), f.level)}
                ]
            },
            {"coding": [{"system": KIND_SYSTEM, "code": f.kind}]},
        ],
        "name": f.name,
        "address": [address(f.division_code, names, f.address)],
    }
    if f.name_en:
        org["alias"] = [f.name_en]
    if f.parent_id:
        org["partOf"] = {"reference": f"Organization/{f.parent_id}"}
    return org


def from_organization(org: Mapping[str, Any], services: Iterable[Mapping[str, Any]] = ()) -> FacilityIn:
    """A facility from an Organization (and its HealthcareServices, which carry the departments)."""
    if org.get("resourceType") != "Organization":
        raise Invalid("expected an Organization", field="resourceType")
    code = next((i.get("value") for i in org.get("identifier", []) if i.get("system") == FACILITY_CODE), None)
    if not code:
        raise Invalid(
            f"an Organization of the registry carries an identifier with system {FACILITY_CODE}", field="identifier"
        )
    types = org.get("type", [])
    addr = (org.get("address") or [{}])[0]
    division = _ext_value(addr, EXT_DIVISION)
    if not division:
        raise Invalid("address[0] must carry the division code extension", field="address[0].extension")
    parent = _ref_id(org.get("partOf"), "Organization", "partOf")
    lines = list(addr.get("line") or [])
    if len(division) == 9 and lines:
        lines = lines[1:]  # the first line is the township's name
    street = lines[0] if lines else None
    return FacilityIn(
        code=code,
        name=org.get("name", ""),
        name_en=(org.get("alias") or [None])[0],
        level=Level(_code(types, LEVEL_SYSTEM) or ""),
        kind=Kind(_code(types, KIND_SYSTEM) or Kind.GENERAL.value),
        ownership=_ext_value(org, EXT_OWNERSHIP, "public"),
        division_code=division,
        parent_id=uuid.UUID(parent) if parent else None,
        address=street,
        beds=_ext_value(org, EXT_BEDS, 0),
        doctors=_ext_value(org, EXT_DOCTORS, 0),
        nurses=_ext_value(org, EXT_NURSES, 0),
        staff_total=_ext_value(org, EXT_STAFF),
        departments=[s["name"] for s in services if s.get("name")],
        capabilities=_ext_values(org, EXT_CAPABILITY),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Location and HealthcareService (facility)


def to_location(f: FacilityLike, names: Mapping[str, str]) -> dict[str, Any]:
    loc: dict[str, Any] = {
        "resourceType": "Location",
        "id": str(f.id),
        "extension": [_ext(EXT_APPROXIMATE, "valueBoolean", bool(f.position_approximate))],
        "identifier": [{"system": FACILITY_CODE, "value": f.code}],
        "status": "active" if f.active else "inactive",
        "name": f.name,
        "mode": "instance",
        "physicalType": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "bu"}]
        },
        "address": address(f.division_code, names, f.address),
        "managingOrganization": {"reference": f"Organization/{f.id}", "display": f.name},
    }
    if f.lon is not None and f.lat is not None:
        loc["position"] = {"longitude": f.lon, "latitude": f.lat}
    return loc


def from_location(loc: Mapping[str, Any]) -> dict[str, Any]:
    """Position and its approximation flag, to patch a facility."""
    pos = loc.get("position") or {}
    return {
        "facility_id": _ref_id(loc.get("managingOrganization"), "Organization", "managingOrganization"),
        "lon": pos.get("longitude"),
        "lat": pos.get("latitude"),
        "position_approximate": bool(_ext_value(loc, EXT_APPROXIMATE, False)),
    }


def healthcare_service_id(facility_id: uuid.UUID, department: str) -> str:
    return str(uuid.uuid5(SERVICE_NS, f"{facility_id}/{department}"))


def to_healthcare_services(f: FacilityLike) -> list[dict[str, Any]]:
    """One HealthcareService per department of a hospital or health centre.

    Village clinics and community stations offer the basic package only; they have no department services (this also
    keeps the demo's FHIR projection small: two thousand clinics would add two thousand resources saying the same).
    """
    if f.level == Level.VILLAGE_CLINIC.value:
        return []
    return [
        {
            "resourceType": "HealthcareService",
            "id": healthcare_service_id(f.id, dept),
            "active": bool(f.active),
            "providedBy": {"reference": f"Organization/{f.id}", "display": f.name},
            "location": [{"reference": f"Location/{f.id}"}],
            "name": dept,
            "specialty": [{"text": dept}],
        }
        for dept in (f.departments or [])
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Consortium: an Organization of type "consortium", and its members as OrganizationAffiliation


class ConsortiumLike(Protocol):
    id: uuid.UUID
    name: str
    form: str
    lead_facility_id: uuid.UUID
    division_code: str | None
    start_date: date | None
    specialty: str | None
    description: str | None


class MemberLike(Protocol):
    id: uuid.UUID
    consortium_id: uuid.UUID
    facility_id: uuid.UUID
    membership: str
    role: str
    joined_on: date | None


def to_consortium_organization(c: ConsortiumLike) -> dict[str, Any]:
    ext = [_ext(EXT_LEAD, "valueReference", {"reference": f"Organization/{c.lead_facility_id}"})]
    if c.start_date:
        ext.append(_ext(EXT_START, "valueDate", c.start_date.isoformat()))
    if c.specialty:
        ext.append(_ext(EXT_SPECIALTY, "valueString", c.specialty))
    if c.division_code:
        ext.append(_ext(EXT_DIVISION, "valueCode", c.division_code))
    return {
        "resourceType": "Organization",
        "id": str(c.id),
        "extension": ext,
        "active": True,
        "type": [
            {"coding": [{"system": ORG_TYPE_SYSTEM, "code": "consortium", "display": "Medical consortium"}]},
            {"coding": [{"system": FORM_SYSTEM, "code": c.form}]},
        ],
        "name": c.name,
    }


def from_consortium_organization(
    org: Mapping[str, Any], affiliations: Iterable[Mapping[str, Any]] = ()
) -> ConsortiumIn:
    if _code(org.get("type"), ORG_TYPE_SYSTEM) != "consortium":
        raise Invalid("expected an Organization of type consortium", field="type")
    lead = _ref_id(_ext_value(org, EXT_LEAD), "Organization", "extension")
    start = _ext_value(org, EXT_START)
    return ConsortiumIn(
        name=org.get("name", ""),
        form=ConsortiumForm(_code(org.get("type"), FORM_SYSTEM) or ""),
        lead_facility_id=lead or "",
        division_code=_ext_value(org, EXT_DIVISION),
        start_date=date.fromisoformat(start) if start else None,
        specialty=_ext_value(org, EXT_SPECIALTY),
        members=[from_affiliation(a) for a in affiliations],
    )


def to_affiliation(c: ConsortiumLike, m: MemberLike) -> dict[str, Any]:
    aff: dict[str, Any] = {
        "resourceType": "OrganizationAffiliation",
        "id": str(m.id),
        "active": True,
        "organization": {"reference": f"Organization/{c.id}", "display": c.name},
        "participatingOrganization": {"reference": f"Organization/{m.facility_id}"},
        "code": [
            {"coding": [{"system": MEMBER_ROLE_SYSTEM, "code": m.role}]},
            {"coding": [{"system": MEMBERSHIP_SYSTEM, "code": m.membership}]},
        ],
    }
    if m.joined_on:
        aff["period"] = {"start": m.joined_on.isoformat()}
    return aff


def from_affiliation(aff: Mapping[str, Any]) -> MemberIn:
    fid = _ref_id(aff.get("participatingOrganization"), "Organization", "participatingOrganization")
    if not fid:
        raise Invalid("an affiliation names its participatingOrganization", field="participatingOrganization")
    return MemberIn(
        facility_id=fid,
        membership=Membership(_code(aff.get("code"), MEMBERSHIP_SYSTEM) or Membership.TIGHT.value),
        role=MemberRole(_code(aff.get("code"), MEMBER_ROLE_SYSTEM) or MemberRole.MEMBER.value),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Practitioner and PractitionerRole


class PractitionerLike(Protocol):
    id: uuid.UUID
    name: str
    gender: str
    title: str
    specialty: str | None
    home_facility_id: uuid.UUID
    active: bool


class RoleLike(Protocol):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    facility_id: uuid.UUID
    kind: str
    specialty: str | None
    start: date | None
    end: date | None


def to_practitioner(p: PractitionerLike) -> dict[str, Any]:
    # Chinese names: the family name is the first character (two for 欧阳, 司马 ... which we do not guess).
    ext = [_ext(EXT_HOME, "valueReference", {"reference": f"Organization/{p.home_facility_id}"})]
    if p.specialty:
        ext.append(_ext(EXT_SPECIALTY_P, "valueString", p.specialty))
    return {
        "resourceType": "Practitioner",
        "id": str(p.id),
        "extension": ext,
        "active": bool(p.active),
        "name": [
            {"use": "official", "text": p.name, "family": p.name[:1], "given": [p.name[1:]] if p.name[1:] else []}
        ],
        "gender": p.gender,
        "qualification": [{"code": {"coding": [{"system": TITLE_SYSTEM, "code": p.title}]}}],
    }


def from_practitioner(res: Mapping[str, Any]) -> PractitionerIn:
    name = (res.get("name") or [{}])[0]
    text = name.get("text") or (name.get("family", "") + "".join(name.get("given", [])))
    title = _code([q.get("code", {}) for q in res.get("qualification", [])], TITLE_SYSTEM)
    home = _ref_id(_ext_value(res, EXT_HOME), "Organization", "extension")
    return PractitionerIn.model_validate(
        {
            "name": text,
            "gender": res.get("gender"),
            "title": title,
            "specialty": _ext_value(res, EXT_SPECIALTY_P),
            "home_facility_id": home or "",
        }
    )


def to_practitioner_role(r: RoleLike) -> dict[str, Any]:
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(r.id),
        "active": r.end is None or r.end >= date.today(),
        "practitioner": {"reference": f"Practitioner/{r.practitioner_id}"},
        "organization": {"reference": f"Organization/{r.facility_id}"},
        "location": [{"reference": f"Location/{r.facility_id}"}],
        "code": [{"coding": [{"system": POSTING_SYSTEM, "code": r.kind}]}],
    }
    if r.specialty:
        role["specialty"] = [{"text": r.specialty}]
    period = {k: v.isoformat() for k, v in (("start", r.start), ("end", r.end)) if v}
    if period:
        role["period"] = period
    return role


def from_practitioner_role(res: Mapping[str, Any]) -> tuple[str, str, PostingIn]:
    """(practitioner id, posting kind, posting) from a PractitionerRole."""
    pid = _ref_id(res.get("practitioner"), "Practitioner", "practitioner")
    fid = _ref_id(res.get("organization"), "Organization", "organization")
    if not pid or not fid:
        raise Invalid("a PractitionerRole names its practitioner and organization", field="practitioner")
    period = res.get("period") or {}
    return (
        pid,
        _code(res.get("code"), POSTING_SYSTEM) or "posting",
        PostingIn(
            facility_id=fid,
            specialty=((res.get("specialty") or [{}])[0]).get("text"),
            start=date.fromisoformat(period["start"]) if period.get("start") else None,
            end=date.fromisoformat(period["end"]) if period.get("end") else None,
        ),
    )
