"""Use cases of the registry: load divisions, register facilities, consortia, grids and practitioners, and answer the
questions other domains and pages ask (where is this facility, which consortia, what does this region look like).

Services take a session and never commit; `yilian.db.unit_of_work()` around the caller commits once.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from yilian.errors import Conflict, Forbidden, Invalid, NotFound
from yilian.fhir import store
from yilian.network import fhir, rules
from yilian.network.models import (
    Consortium,
    ConsortiumMember,
    Division,
    Facility,
    Grid,
    GridTownship,
    Practitioner,
    PractitionerRole,
)
from yilian.network.rules import CAPABILITIES, ConsortiumForm, DivisionLevel, Level, PostingKind
from yilian.network.schemas import (
    AccountIn,
    AccountRow,
    ConsortiumDetail,
    ConsortiumIn,
    ConsortiumOut,
    ConsortiumPatch,
    ConsortiumSummary,
    FacilityDetail,
    FacilityIn,
    FacilityOut,
    FacilityPatch,
    FacilityPoint,
    GridIn,
    GridPartition,
    GridView,
    LoadReport,
    MemberIn,
    MemberView,
    NetworkOverview,
    Page,
    PostingIn,
    PractitionerIn,
    PractitionerOut,
    PractitionerRoleOut,
)
from yilian.security import audit, scope
from yilian.security import service as security_service
from yilian.security.actor import SYSTEM, Actor
from yilian.security.models import User
from yilian.security.roles import FACILITY_ROLES, Role

MAX_LIMIT = 500

# ----------------------------------------------------------------------------------------------------------------------
# Region data shipped in the package (read with importlib.resources so that an installed wheel has it)


def read_region_csv(name: str) -> Iterator[dict[str, str]]:
    ref = resources.files("yilian.network").joinpath("data", "regions", name)
    with ref.open("rb") as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))


def _num(value: str) -> int | float | None:
    if value in ("", None):
        return None
    f = float(value)
    return int(f) if f.is_integer() else f


def _province_code(province: str | None) -> str | None:
    if province is None or province == "":
        return None
    code = rules.normalise_division_code(province)
    if len(code) != 2:
        raise Invalid(f"--province takes a 2-digit province code such as 14 (got {province!r})", field="province")
    return code


def load_divisions(session: Session, province: str | None = None) -> LoadReport:
    """Load provinces, cities, counties and townships with census 2020 and centroids; idempotent.

    Re-running writes nothing new. Everything that does not join (census rows of renamed or merged counties, counties
    without a centroid) is listed in the report rather than dropped silently.
    """
    prov = _province_code(province)
    report = LoadReport(province=prov)
    keep = (lambda code: code.startswith(prov)) if prov else (lambda code: True)

    rows: dict[str, dict[str, Any]] = {}
    for r in read_region_csv("provinces.csv"):
        if keep(r["code"]):
            rows[r["code"]] = {"code": r["code"], "name": r["name"], "level": "province", "parent_code": None}
    if prov and prov not in rows:
        raise NotFound(f"no province with code {prov}", field="province")
    for r in read_region_csv("cities.csv"):
        if keep(r["code"]):
            rows[r["code"]] = {"code": r["code"], "name": r["name"], "level": "city", "parent_code": r["provinceCode"]}
    for r in read_region_csv("counties.csv"):
        if keep(r["code"]):
            rows[r["code"]] = {"code": r["code"], "name": r["name"], "level": "county", "parent_code": r["cityCode"]}
    townships_by_county: dict[str, list[str]] = defaultdict(list)
    for r in read_region_csv("townships.csv"):
        if keep(r["code"]):
            rows[r["code"]] = {"code": r["code"], "name": r["name"], "level": "township", "parent_code": r["areaCode"]}
            townships_by_county[r["areaCode"]].append(r["code"])

    # Centroids are published by 6-digit code: 140000 (province), 141000 (city), 141002 (county).
    centroids: dict[str, tuple[float, float, str]] = {}
    for r in read_region_csv("centroids.csv"):
        if keep(r["code"]):
            centroids[r["code"]] = (float(r["lon"]), float(r["lat"]), r["name"])
    used_centroids: set[str] = set()

    def padded(code: str) -> str:
        return code.ljust(6, "0")

    for code, row in rows.items():
        if row["level"] in ("province", "city", "county") and padded(code) in centroids:
            lon, lat, _ = centroids[padded(code)]
            row.update(lon=lon, lat=lat, position_approximate=False)
            used_centroids.add(padded(code))
            if row["level"] == "county":
                report.centroids_joined += 1
    for code, row in rows.items():
        if row["level"] == "county" and "lon" not in row:
            report.counties_without_centroid.append((code, row["name"]))
            city = rows.get(code[:4]) or rows.get(code[:2]) or {}
            row.update(lon=city.get("lon"), lat=city.get("lat"), position_approximate=True)
    report.centroids_unjoined = sorted((c, n) for c, (_, _, n) in centroids.items() if c not in used_centroids)

    for county_code, codes in townships_by_county.items():
        county = rows.get(county_code)
        if not county or county.get("lon") is None:
            continue
        codes.sort()
        # Urban districts are compact; rural counties spread their townships wider.
        radius = 0.06 if county["name"].endswith("区") else 0.16
        for i, code in enumerate(codes):
            lon, lat = rules.place_around(county["lon"], county["lat"], i, len(codes), radius)
            rows[code].update(lon=lon, lat=lat, position_approximate=True)
            report.townships_placed += 1

    _join_census(rows, keep, report)

    for row in rows.values():
        row.setdefault("lon", None)
        row.setdefault("lat", None)
        row.setdefault("position_approximate", row["level"] == "township")
        for k in ("population", "urban", "rural", "households", "census"):
            row.setdefault(k, None)
    report.divisions_by_level = dict(Counter(r["level"] for r in rows.values()))
    report.divisions_by_level = {
        lvl.value: report.divisions_by_level.get(lvl.value, 0)
        for lvl in DivisionLevel
        if report.divisions_by_level.get(lvl.value)
    }

    existing = {d.code: d for d in session.scalars(select(Division).where(Division.code.in_(list(rows))))}
    fresh_rows, changed_rows = [], []
    for code, row in rows.items():
        have = existing.get(code)
        if have is None:
            fresh_rows.append(row)
        elif any(getattr(have, k) != v for k, v in row.items()):
            changed_rows.append(row)
    for chunk in _chunks(fresh_rows, 2000):
        session.execute(insert(Division), chunk)
    for chunk in _chunks(changed_rows, 2000):
        session.execute(update(Division), chunk)
    report.inserted, report.updated = len(fresh_rows), len(changed_rows)
    report.unchanged = len(rows) - report.inserted - report.updated
    session.flush()
    session.expire_all()
    return report


def _join_census(rows: dict[str, dict[str, Any]], keep: Any, report: LoadReport) -> None:
    census_counties: dict[str, dict[str, Any]] = {}
    for r in read_region_csv("census_county_2020.csv"):
        code = r["code"]
        if not keep(code):
            continue
        figures = {k: _num(v) for k, v in r.items() if k not in ("code", "province", "city", "county")}
        facts = {
            "population": figures.get("population"),
            "urban": figures.get("urban"),
            "rural": figures.get("rural"),
            "households": figures.get("households"),
            "census": {"year": 2020, **figures},
        }
        short = rules.normalise_division_code(code)
        if len(short) in (2, 4):  # province and city totals
            if short in rows:
                rows[short].update(facts)
            continue
        census_counties[code] = {"name": r["county"], "city": r["city"], **facts}
    matched: set[str] = set()
    for code, row in rows.items():
        if row["level"] != "county":
            continue
        if code in census_counties:
            row.update({k: v for k, v in census_counties[code].items() if k not in ("name", "city")})
            matched.add(code)
            report.census_joined += 1
    # Codes changed for some counties between 2020 and 2023 (a county became a district): try the name in the same city.
    by_name = {(c[:4], v["name"]): c for c, v in census_counties.items() if c not in matched}
    for code, row in sorted(rows.items()):
        if row["level"] != "county" or code in matched:
            continue
        census_code = by_name.get((code[:4], row["name"]))
        if census_code and census_code not in matched:
            row.update({k: v for k, v in census_counties[census_code].items() if k not in ("name", "city")})
            matched.add(census_code)
            report.census_joined_by_name.append((code, row["name"], census_code))
        elif row["name"] != "市辖区":
            report.counties_without_census.append((code, row["name"]))
    report.census_rows_unjoined = sorted(
        (c, v["name"]) for c, v in census_counties.items() if c not in matched and v["name"] != "市辖区"
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ----------------------------------------------------------------------------------------------------------------------
# Divisions


def require_division(session: Session, code: str, *, field: str = "division") -> Division:
    """The division with this code, or NotFound naming the field. Accepts padded codes (141000 → 1410)."""
    if not code or not code.strip().isdigit():
        raise NotFound(f"no division with code {code!r}: use a GB/T 2260 code such as 1410 or 141002", field=field)
    short = rules.normalise_division_code(code)
    division = session.get(Division, short)
    if division is None:
        raise NotFound(
            f"no division with code {code}; load them with `yilian network load-divisions` if the registry is empty",
            field=field,
        )
    return division


def list_divisions(session: Session, parent: str | None = None) -> list[Division]:
    if parent:
        require_division(session, parent, field="parent")
        stmt = select(Division).where(Division.parent_code == rules.normalise_division_code(parent))
    else:
        stmt = select(Division).where(Division.level == DivisionLevel.PROVINCE.value)
    return list(session.scalars(stmt.order_by(Division.code)))


def division_path(session: Session, code: str) -> list[tuple[str, str]]:
    """(code, name) from the province down to this division."""
    codes = [code[:n] for n in (2, 4, 6, 9) if n <= len(code)]
    found = {d.code: d.name for d in session.scalars(select(Division).where(Division.code.in_(codes)))}
    return [(c, found[c]) for c in codes if c in found]


def population_of(session: Session, division_prefix: str) -> int:
    """Residents in the 2020 census of the counties under a division prefix ('' for the whole registry)."""
    stmt = select(func.coalesce(func.sum(Division.population), 0)).where(Division.level == DivisionLevel.COUNTY.value)
    if division_prefix:
        stmt = stmt.where(Division.code.startswith(division_prefix))
    return int(session.scalar(stmt) or 0)


# ----------------------------------------------------------------------------------------------------------------------
# Facilities


def resolve_facility_id(session: Session, id_or_code: str | uuid.UUID, *, field: str = "facility") -> uuid.UUID:
    """A facility's uuid from its uuid or its code; NotFound naming `field` otherwise."""
    if isinstance(id_or_code, uuid.UUID):
        found = session.scalar(select(Facility.id).where(Facility.id == id_or_code))
    else:
        text = str(id_or_code).strip()
        try:
            as_uuid = uuid.UUID(text)
        except ValueError:
            found = session.scalar(select(Facility.id).where(Facility.code == text))
        else:
            found = session.scalar(select(Facility.id).where(Facility.id == as_uuid))
    if found is None:
        raise NotFound(f"no facility with id or code {id_or_code}", field=field)
    return found


def _facility(session: Session, id_or_code: str | uuid.UUID, *, field: str = "facility") -> Facility:
    facility = session.get(Facility, resolve_facility_id(session, id_or_code, field=field))
    assert facility is not None
    return facility


def get_facility(session: Session, id_or_code: str | uuid.UUID) -> FacilityOut:
    return facility_out(_facility(session, id_or_code))


def facility_out(f: Facility) -> FacilityOut:
    return FacilityOut.model_validate(
        {
            **{c: getattr(f, c) for c in FacilityOut.model_fields if c != "capabilities"},
            "capabilities": capabilities_of(f),
        }
    )


def capabilities_of(f: Facility) -> list[str]:
    return [c for c in CAPABILITIES if getattr(f, c)]


def list_facilities(
    session: Session,
    *,
    division_prefix: str | None = None,
    level: str | None = None,
    q: str | None = None,
    consortium_id: uuid.UUID | None = None,
    kind: str | None = None,
    capability: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[FacilityOut]:
    """Facilities, ordered by level (top first) then code. `q` matches a name part or a code prefix."""
    if offset < 0:
        raise Invalid("offset must be >= 0", field="offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    stmt: Select[Any] = select(Facility)
    if division_prefix:
        stmt = stmt.where(Facility.division_code.startswith(rules.normalise_division_code(division_prefix)))
    if level:
        try:
            stmt = stmt.where(Facility.level == Level(level).value)
        except ValueError:
            raise Invalid(f"level must be one of {', '.join(lv.value for lv in Level)}", field="level") from None
    if kind:
        stmt = stmt.where(Facility.kind == kind)
    if capability:
        if capability not in CAPABILITIES:
            raise Invalid(f"capability must be one of {', '.join(CAPABILITIES)}", field="capability")
        stmt = stmt.where(getattr(Facility, capability).is_(True))
    if q:
        stmt = stmt.where(or_(Facility.name.contains(q.strip()), Facility.code.startswith(q.strip())))
    if consortium_id:
        stmt = stmt.where(
            Facility.id.in_(select(ConsortiumMember.facility_id).where(ConsortiumMember.consortium_id == consortium_id))
        )
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rank = {lv.value: i for i, lv in enumerate(reversed(rules.LEVEL_ORDER))}
    order = case(rank, value=Facility.level, else_=9)
    items = session.scalars(stmt.order_by(order, Facility.code).offset(offset).limit(limit)).all()
    return Page([facility_out(f) for f in items], total, offset, limit)


def _facility_facts(session: Session, f: Facility) -> scope.FacilityFacts:
    consortia = session.scalars(select(ConsortiumMember.consortium_id).where(ConsortiumMember.facility_id == f.id))
    return scope.FacilityFacts(id=f.id, division_code=f.division_code, consortium_ids=frozenset(consortia))


def _check_position(
    division: Division, lon: float | None, lat: float | None
) -> tuple[float | None, float | None, bool]:
    if (lon is None) != (lat is None):
        raise Invalid("give both lon and lat, or neither", field="lon" if lon is None else "lat")
    if lon is None:
        return division.lon, division.lat, True
    return lon, lat, False


def create_facility(session: Session, data: FacilityIn, *, actor: Actor = SYSTEM) -> Facility:
    division = require_division(session, data.division_code, field="division_code")
    if division.level not in (DivisionLevel.COUNTY.value, DivisionLevel.TOWNSHIP.value, DivisionLevel.CITY.value):
        raise Invalid("a facility stands in a city, county or township division", field="division_code")
    if not scope.can_change_facility(actor, scope.FacilityFacts(id=uuid.uuid4(), division_code=division.code)):
        raise Forbidden("you may not register facilities in this division", field="division_code")
    if session.scalar(select(func.count()).select_from(Facility).where(Facility.code == data.code)):
        raise Conflict(f"a facility with code {data.code} already exists", field="code")
    if data.parent_id is not None:
        resolve_facility_id(session, data.parent_id, field="parent_id")
    lon, lat, approximate = _check_position(division, data.lon, data.lat)
    values = data.model_dump(exclude={"capabilities", "division_code", "lon", "lat", "staff_total"})
    facility = Facility(
        **values,
        division_code=division.code,
        lon=lon,
        lat=lat,
        position_approximate=approximate,
        staff_total=data.staff_total if data.staff_total is not None else data.doctors + data.nurses,
        **{c: c in data.capabilities for c in CAPABILITIES},
    )
    session.add(facility)
    session.flush()
    audit.record(session, actor, "facility.create", resource=f"Organization/{facility.id}")
    project_facilities(session, [facility])
    return facility


def update_facility(
    session: Session, id_or_code: str | uuid.UUID, patch: FacilityPatch, *, actor: Actor = SYSTEM
) -> Facility:
    facility = _facility(session, id_or_code)
    if not scope.can_change_facility(actor, _facility_facts(session, facility)):
        raise Forbidden("you may not change this facility", field="facility")
    changes = patch.model_dump(exclude_unset=True)
    if "division_code" in changes:
        division = require_division(session, changes.pop("division_code"), field="division_code")
        if not scope.can_change_facility(actor, scope.FacilityFacts(id=facility.id, division_code=division.code)):
            raise Forbidden("you may not move a facility outside your jurisdiction", field="division_code")
        facility.division_code = division.code
        if "lon" not in changes:
            facility.lon, facility.lat, facility.position_approximate = division.lon, division.lat, True
    if "lon" in changes or "lat" in changes:
        lon, lat = changes.pop("lon", facility.lon), changes.pop("lat", facility.lat)
        if lon is None or lat is None:
            raise Invalid("give both lon and lat", field="lon" if lon is None else "lat")
        facility.lon, facility.lat, facility.position_approximate = lon, lat, False
    if "parent_id" in changes and changes["parent_id"] is not None:
        parent = resolve_facility_id(session, changes["parent_id"], field="parent_id")
        if parent == facility.id:
            raise Invalid("a facility cannot be its own parent", field="parent_id")
    if "capabilities" in changes:
        caps = set(changes.pop("capabilities") or [])
        for c in CAPABILITIES:
            setattr(facility, c, c in caps)
    for key, value in changes.items():
        if key in ("name", "level", "kind", "ownership", "beds", "doctors", "nurses", "staff_total") and value is None:
            raise Invalid(f"{key} cannot be empty", field=key)
        setattr(facility, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "facility.update",
        resource=f"Organization/{facility.id}",
        detail={"fields": sorted(patch.model_fields_set)},
    )
    project_facilities(session, [facility])
    return facility


# ----------------------------------------------------------------------------------------------------------------------
# Consortia


def _consortium(session: Session, consortium_id: uuid.UUID | str) -> Consortium:
    try:
        cid = consortium_id if isinstance(consortium_id, uuid.UUID) else uuid.UUID(str(consortium_id))
    except ValueError:
        raise NotFound(f"no consortium with id {consortium_id}", field="consortium") from None
    c = session.get(Consortium, cid)
    if c is None:
        raise NotFound(f"no consortium with id {consortium_id}", field="consortium")
    return c


def _member_counts(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.execute(
        select(ConsortiumMember.consortium_id, func.count())
        .where(ConsortiumMember.consortium_id.in_(ids))
        .group_by(ConsortiumMember.consortium_id)
    )
    return {cid: int(n) for cid, n in rows}


def _consortium_out(c: Consortium, lead_name: str, members: int) -> ConsortiumOut:
    out = ConsortiumOut.model_validate(c)
    return out.model_copy(update={"lead_name": lead_name, "member_count": members})


def get_consortium(session: Session, consortium_id: uuid.UUID | str) -> ConsortiumOut:
    c = _consortium(session, consortium_id)
    lead = session.get(Facility, c.lead_facility_id)
    return _consortium_out(c, lead.name if lead else "", _member_counts(session, [c.id]).get(c.id, 0))


def list_consortia(
    session: Session,
    *,
    form: str | None = None,
    division_prefix: str | None = None,
    facility_id: uuid.UUID | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[ConsortiumOut]:
    if offset < 0:
        raise Invalid("offset must be >= 0", field="offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    stmt = select(Consortium, Facility.name).join(Facility, Facility.id == Consortium.lead_facility_id)
    if form:
        try:
            stmt = stmt.where(Consortium.form == ConsortiumForm(form).value)
        except ValueError:
            raise Invalid(f"form must be one of {', '.join(f.value for f in ConsortiumForm)}", field="form") from None
    if division_prefix:
        stmt = stmt.where(Facility.division_code.startswith(rules.normalise_division_code(division_prefix)))
    if facility_id:
        stmt = stmt.where(
            Consortium.id.in_(select(ConsortiumMember.consortium_id).where(ConsortiumMember.facility_id == facility_id))
        )
    if q:
        stmt = stmt.where(Consortium.name.contains(q.strip()))
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.execute(stmt.order_by(Consortium.form, Consortium.name).offset(offset).limit(limit)).all()
    counts = _member_counts(session, [c.id for c, _ in rows])
    return Page([_consortium_out(c, name, counts.get(c.id, 0)) for c, name in rows], total, offset, limit)


def consortia_of_facility(session: Session, facility_id: uuid.UUID) -> list[ConsortiumSummary]:
    rows = session.execute(
        select(Consortium, ConsortiumMember.membership, ConsortiumMember.role, Facility.name)
        .join(ConsortiumMember, ConsortiumMember.consortium_id == Consortium.id)
        .join(Facility, Facility.id == Consortium.lead_facility_id)
        .where(ConsortiumMember.facility_id == facility_id)
        .order_by(Consortium.form, Consortium.name)
    ).all()
    counts = _member_counts(session, [c.id for c, *_ in rows])
    return [
        ConsortiumSummary(c.id, c.name, c.form, c.lead_facility_id, lead, counts.get(c.id, 0), membership, role)
        for c, membership, role, lead in rows
    ]


def _resolve_members(session: Session, members: Sequence[MemberIn]) -> list[tuple[uuid.UUID, MemberIn]]:
    out, seen = [], set()
    for i, m in enumerate(members):
        fid = resolve_facility_id(session, m.facility_id, field=f"members.{i}.facility_id")
        if fid in seen:
            raise Invalid(f"facility {m.facility_id} is listed twice", field=f"members.{i}.facility_id")
        seen.add(fid)
        out.append((fid, m))
    return out


def _check_county_community(
    session: Session, form: str, division_code: str | None, lead_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
) -> None:
    """Checked before anything is written, so that a refused consortium leaves no trace."""
    if form != ConsortiumForm.COUNTY_MEDICAL_COMMUNITY.value:
        return
    lead = session.get(Facility, lead_id)
    county = (division_code or (lead.division_code if lead else ""))[:6]
    if len(county) != 6:
        raise Invalid("a county medical community serves one county: give its 6-digit code", field="division_code")
    ids = list(member_ids)
    divisions = dict(session.execute(select(Facility.id, Facility.division_code).where(Facility.id.in_(ids))).all())
    outside = rules.outside_county(county, divisions)
    if outside:
        names = session.scalars(select(Facility.name).where(Facility.id.in_(outside))).all()
        raise Invalid(
            f"members of a county medical community lie in its county {county}: {', '.join(sorted(names))} do not",
            field="members",
        )


def create_consortium(session: Session, data: ConsortiumIn, *, actor: Actor = SYSTEM) -> Consortium:
    lead_id = resolve_facility_id(session, data.lead_facility_id, field="lead_facility_id")
    members = _resolve_members(session, data.members)
    rules.require_lead_is_member(lead_id, [fid for fid, _ in members])
    lead = session.get(Facility, lead_id)
    assert lead is not None
    if not scope.can_change_consortium(actor, None, lead.division_code):
        raise Forbidden("you may not create a consortium led from outside your jurisdiction", field="lead_facility_id")
    division_code = None
    if data.division_code:
        division_code = require_division(session, data.division_code, field="division_code").code
    elif data.form == ConsortiumForm.COUNTY_MEDICAL_COMMUNITY:
        division_code = lead.division_code[:6]
    elif data.form == ConsortiumForm.URBAN_MEDICAL_GROUP:
        division_code = lead.division_code[:4]
    if data.form == ConsortiumForm.SPECIALIST_ALLIANCE and not data.specialty:
        raise Invalid("a specialist alliance names its specialty", field="specialty")
    if session.scalar(select(func.count()).select_from(Consortium).where(Consortium.name == data.name)):
        raise Conflict(f"a consortium named {data.name} already exists", field="name")
    _check_county_community(session, data.form.value, division_code, lead_id, [fid for fid, _ in members])
    c = Consortium(
        name=data.name,
        form=data.form.value,
        lead_facility_id=lead_id,
        division_code=division_code,
        start_date=data.start_date,
        specialty=data.specialty,
        description=data.description,
    )
    session.add(c)
    session.flush()
    rows = [
        {
            "id": uuid.uuid4(),
            "consortium_id": c.id,
            "facility_id": fid,
            "membership": m.membership.value,
            "role": "lead" if fid == lead_id else m.role.value,
            "joined_on": data.start_date,
        }
        for fid, m in members
    ]
    if rows:
        session.execute(insert(ConsortiumMember), rows)
    audit.record(session, actor, "consortium.create", resource=f"Organization/{c.id}")
    project_consortia(session, [c.id])
    return c


def update_consortium(
    session: Session, consortium_id: uuid.UUID | str, patch: ConsortiumPatch, *, actor: Actor = SYSTEM
) -> Consortium:
    c = _consortium(session, consortium_id)
    lead = session.get(Facility, c.lead_facility_id)
    if not scope.can_change_consortium(actor, c.id, lead.division_code if lead else ""):
        raise Forbidden("you may not change this consortium", field="consortium")
    if patch.name is not None and patch.name != c.name:
        if session.scalar(select(func.count()).select_from(Consortium).where(Consortium.name == patch.name)):
            raise Conflict(f"a consortium named {patch.name} already exists", field="name")
        c.name = patch.name
    for key in ("start_date", "specialty", "description"):
        if key in patch.model_fields_set:
            setattr(c, key, getattr(patch, key))
    for i, ref in enumerate(patch.remove_members):
        fid = resolve_facility_id(session, ref, field=f"remove_members.{i}")
        session.execute(
            delete(ConsortiumMember).where(ConsortiumMember.consortium_id == c.id, ConsortiumMember.facility_id == fid)
        )
    current = set(session.scalars(select(ConsortiumMember.facility_id).where(ConsortiumMember.consortium_id == c.id)))
    added = _resolve_members(session, patch.add_members)
    for i, (fid, _) in enumerate(added):
        if fid in current:
            raise Conflict("this facility is already a member", field=f"add_members.{i}.facility_id")
    if added:
        session.execute(
            insert(ConsortiumMember),
            [
                {
                    "id": uuid.uuid4(),
                    "consortium_id": c.id,
                    "facility_id": fid,
                    "membership": m.membership.value,
                    "role": m.role.value,
                }
                for fid, m in added
            ],
        )
    members = current - {resolve_facility_id(session, r) for r in patch.remove_members} | {fid for fid, _ in added}
    if patch.lead_facility_id is not None:
        c.lead_facility_id = resolve_facility_id(session, patch.lead_facility_id, field="lead_facility_id")
    rules.require_lead_is_member(c.lead_facility_id, members)
    _check_county_community(session, c.form, c.division_code, c.lead_facility_id, members)
    session.flush()
    audit.record(session, actor, "consortium.update", resource=f"Organization/{c.id}")
    project_consortia(session, [c.id])
    return c


# ----------------------------------------------------------------------------------------------------------------------
# Grids


def create_grid(session: Session, data: GridIn, *, actor: Actor = SYSTEM) -> Grid:
    """A grid of a city's urban medical groups. A township already in another grid of the city → Conflict naming it."""
    city = require_division(session, data.city_code, field="city_code")
    if city.level != DivisionLevel.CITY.value:
        raise Invalid("grids partition a prefecture city: give its 4-digit code", field="city_code")
    c = _consortium(session, data.consortium_id)
    if c.form != ConsortiumForm.URBAN_MEDICAL_GROUP.value:
        raise Invalid("a grid is led by an urban medical group", field="consortium_id")
    lead = session.get(Facility, c.lead_facility_id)
    if not scope.can_change_consortium(actor, c.id, lead.division_code if lead else ""):
        raise Forbidden("you may not change this consortium's grids", field="consortium_id")
    codes = [rules.normalise_division_code(code) for code in data.township_codes]
    dupes = [code for code, n in Counter(codes).items() if n > 1]
    if dupes:
        raise Conflict(f"township {dupes[0]} is listed twice", field="township_codes")
    found = {d.code: d for d in session.scalars(select(Division).where(Division.code.in_(codes)))}
    for code in codes:
        d = found.get(code)
        if d is None:
            raise NotFound(f"no township with code {code}", field="township_codes")
        if d.level != DivisionLevel.TOWNSHIP.value or not code.startswith(city.code):
            raise Invalid(f"{code} {d.name} is not a township/street of {city.name}", field="township_codes")
    taken = session.execute(
        select(GridTownship.township_code, Grid.name)
        .join(Grid, Grid.id == GridTownship.grid_id)
        .where(GridTownship.city_code == city.code, GridTownship.township_code.in_(codes))
        .order_by(GridTownship.township_code)
    ).first()
    if taken is not None:
        code, grid_name = taken
        raise Conflict(
            f"township {code} {found[code].name} is already in grid {grid_name}: each township/street is in exactly one grid",
            field="township_codes",
            details={"township": code, "grid": grid_name},
        )
    if session.scalar(
        select(func.count()).select_from(Grid).where(Grid.city_code == city.code, Grid.name == data.name)
    ):
        raise Conflict(f"{city.name} already has a grid named {data.name}", field="name")
    grid = Grid(city_code=city.code, name=data.name, consortium_id=c.id)
    session.add(grid)
    session.flush()
    session.execute(
        insert(GridTownship),
        [{"id": uuid.uuid4(), "grid_id": grid.id, "city_code": city.code, "township_code": code} for code in codes],
    )
    audit.record(session, actor, "grid.create", resource=f"Grid/{grid.id}")
    return grid


def _grid_views(session: Session, grid_stmt: Select[Any]) -> list[GridView]:
    grids = session.scalars(grid_stmt.order_by(Grid.name)).all()
    if not grids:
        return []
    rows = session.execute(
        select(GridTownship.grid_id, Division.code, Division.name)
        .join(Division, Division.code == GridTownship.township_code)
        .where(GridTownship.grid_id.in_([g.id for g in grids]))
        .order_by(Division.code)
    ).all()
    by_grid: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)
    for gid, code, name in rows:
        by_grid[gid].append((code, name))
    return [GridView(g.id, g.name, g.city_code, by_grid[g.id]) for g in grids]


def grid_partition(session: Session, city_code: str) -> GridPartition:
    """The city's grids and the townships/streets of its urban districts that no grid covers (gaps)."""
    city = require_division(session, city_code, field="city_code")
    grids = _grid_views(session, select(Grid).where(Grid.city_code == city.code))
    districts = session.scalars(
        select(Division.code).where(Division.parent_code == city.code, Division.name.endswith("区"))
    ).all()
    if not districts:  # a city without districts: the counties its grids already reach
        districts = sorted({code[:6] for g in grids for code, _ in g.townships})
    area = dict(
        session.execute(
            select(Division.code, Division.name).where(Division.parent_code.in_(districts)).order_by(Division.code)
        ).all()
    )
    gaps = rules.grid_gaps(area, {g.name: [c for c, _ in g.townships] for g in grids})
    return GridPartition(city.code, grids, sorted(area), [(c, area[c]) for c in gaps])


# ----------------------------------------------------------------------------------------------------------------------
# Practitioners


def create_practitioner(session: Session, data: PractitionerIn, *, actor: Actor = SYSTEM) -> Practitioner:
    home = _facility(session, data.home_facility_id, field="home_facility_id")
    if not scope.can_change_facility(actor, _facility_facts(session, home)):
        raise Forbidden("you may not register practitioners at this facility", field="home_facility_id")
    p = Practitioner(
        name=data.name,
        gender=data.gender.value,
        title=data.title.value,
        specialty=data.specialty,
        home_facility_id=home.id,
    )
    session.add(p)
    session.flush()
    role = PractitionerRole(
        practitioner_id=p.id, facility_id=home.id, kind=PostingKind.HOME.value, specialty=data.specialty
    )
    session.add(role)
    session.flush()
    audit.record(session, actor, "practitioner.create", resource=f"Practitioner/{p.id}")
    _project(session, [fhir.to_practitioner(p), fhir.to_practitioner_role(role)])
    return p


def _practitioner(session: Session, practitioner_id: uuid.UUID | str) -> Practitioner:
    try:
        pid = practitioner_id if isinstance(practitioner_id, uuid.UUID) else uuid.UUID(str(practitioner_id))
    except ValueError:
        raise NotFound(f"no practitioner with id {practitioner_id}", field="practitioner") from None
    p = session.get(Practitioner, pid)
    if p is None:
        raise NotFound(f"no practitioner with id {practitioner_id}", field="practitioner")
    return p


def link_account(
    session: Session, username: str, practitioner_id: uuid.UUID | str | None, *, actor: Actor = SYSTEM
) -> uuid.UUID | None:
    """Tie a clinician's account to their practitioner record (None unties it): the account must work at the
    practitioner's home facility, and the caller must be allowed to administer the account."""
    user = security_service.get_user(session, username)
    _guard_account(session, actor, user)
    if practitioner_id is None:
        security_service.link_practitioner(session, username, None, actor=actor)
        return None
    try:
        p = _practitioner(session, practitioner_id)
    except NotFound as exc:
        raise NotFound(str(exc), field="practitioner_id") from None
    if user.facility_id != p.home_facility_id:
        home = _facility(session, p.home_facility_id, field="practitioner_id")
        raise Invalid(
            f"user {username} does not work at {home.name}, {p.name}'s home facility", field="practitioner_id"
        )
    security_service.link_practitioner(session, username, p.id, actor=actor)
    return p.id


def add_posting(
    session: Session, practitioner_id: uuid.UUID | str, data: PostingIn, *, actor: Actor = SYSTEM
) -> PractitionerRole:
    """A role at another facility: expert outreach, a resident expert, an honorary department chief."""
    p = _practitioner(session, practitioner_id)
    facility_id = resolve_facility_id(session, data.facility_id, field="facility_id")
    if facility_id == p.home_facility_id:
        raise Invalid("a posting is at a facility other than the practitioner's home", field="facility_id")
    if data.start and data.end and data.end < data.start:
        raise Invalid("the posting ends before it starts", field="end")
    home = session.get(Facility, p.home_facility_id)
    target = session.get(Facility, facility_id)
    assert home is not None and target is not None
    if not (
        scope.can_change_facility(actor, _facility_facts(session, home))
        or scope.can_change_facility(actor, _facility_facts(session, target))
    ):
        raise Forbidden("you may not post practitioners between these facilities", field="facility_id")
    role = PractitionerRole(
        practitioner_id=p.id,
        facility_id=facility_id,
        kind=PostingKind.POSTING.value,
        specialty=data.specialty or p.specialty,
        start=data.start,
        end=data.end,
    )
    session.add(role)
    session.flush()
    audit.record(session, actor, "practitioner.post", resource=f"PractitionerRole/{role.id}")
    _project(session, [fhir.to_practitioner_role(role)])
    return role


def get_practitioner(session: Session, practitioner_id: uuid.UUID | str) -> PractitionerOut:
    p = _practitioner(session, practitioner_id)
    roles = session.scalars(select(PractitionerRole).where(PractitionerRole.practitioner_id == p.id)).all()
    out = PractitionerOut.model_validate(p)
    return out.model_copy(update={"roles": [PractitionerRoleOut.model_validate(r) for r in roles]})


def list_practitioners(
    session: Session,
    *,
    facility_id: uuid.UUID | None = None,
    q: str | None = None,
    title: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[PractitionerOut]:
    """Practitioners holding a role at a facility (home or posting), or all."""
    if offset < 0:
        raise Invalid("offset must be >= 0", field="offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    stmt: Select[Any] = select(Practitioner)
    if facility_id:
        stmt = stmt.where(
            Practitioner.id.in_(
                select(PractitionerRole.practitioner_id).where(PractitionerRole.facility_id == facility_id)
            )
        )
    if q:
        stmt = stmt.where(Practitioner.name.contains(q.strip()))
    if title:
        stmt = stmt.where(Practitioner.title == title)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    items = session.scalars(stmt.order_by(Practitioner.name, Practitioner.id).offset(offset).limit(limit)).all()
    return Page([PractitionerOut.model_validate(p) for p in items], total, offset, limit)


# ----------------------------------------------------------------------------------------------------------------------
# Views for pages and other domains (plain data)


def network_overview(session: Session, division_prefix: str) -> NetworkOverview:
    """A region at a glance: facilities and beds per level, residents, consortia, and points for a scatter map."""
    prefix = rules.normalise_division_code(division_prefix) if division_prefix else ""
    name = "全部" if not prefix else require_division(session, prefix).name
    where = Facility.division_code.startswith(prefix) if prefix else Facility.id.is_not(None)
    counts: dict[str, int] = {lv.value: 0 for lv in reversed(rules.LEVEL_ORDER)}
    beds: dict[str, int] = dict.fromkeys(counts, 0)
    for level, n, b in session.execute(
        select(Facility.level, func.count(), func.coalesce(func.sum(Facility.beds), 0))
        .where(where)
        .group_by(Facility.level)
    ):
        counts[level], beds[level] = int(n), int(b)
    population = population_of(session, prefix)
    total_beds = sum(beds.values())
    practitioners = int(
        session.scalar(
            select(func.count())
            .select_from(Practitioner)
            .join(Facility, Facility.id == Practitioner.home_facility_id)
            .where(where)
        )
        or 0
    )
    consortia = list_consortia(session, division_prefix=prefix or None, limit=MAX_LIMIT).items
    points = [
        FacilityPoint(n, lv, lon, lat, fid)
        for fid, n, lv, lon, lat in session.execute(
            select(Facility.id, Facility.name, Facility.level, Facility.lon, Facility.lat).where(
                where, Facility.lon.is_not(None)
            )
        )
        if lon is not None and lat is not None
    ]
    return NetworkOverview(
        division_prefix=prefix,
        division_name=name,
        facilities=sum(counts.values()),
        counts_per_level=counts,
        beds_per_level=beds,
        beds=total_beds,
        population=population,
        beds_per_1000=round(rules.beds_per_1000(total_beds, population), 2),
        practitioners=practitioners,
        consortia=[
            ConsortiumSummary(c.id, c.name, c.form, c.lead_facility_id, c.lead_name, c.member_count) for c in consortia
        ],
        points=points,
    )


def facility_detail(session: Session, facility_id: uuid.UUID | str) -> FacilityDetail:
    f = _facility(session, facility_id)
    parent = session.get(Facility, f.parent_id) if f.parent_id else None
    practitioners = int(
        session.scalar(select(func.count()).select_from(Practitioner).where(Practitioner.home_facility_id == f.id)) or 0
    )
    postings_in = int(
        session.scalar(
            select(func.count())
            .select_from(PractitionerRole)
            .where(PractitionerRole.facility_id == f.id, PractitionerRole.kind == PostingKind.POSTING.value)
        )
        or 0
    )
    up = rules.next_level_up(f.level)
    return FacilityDetail(
        id=f.id,
        code=f.code,
        name=f.name,
        name_en=f.name_en,
        level=f.level,
        kind=f.kind,
        ownership=f.ownership,
        division_code=f.division_code,
        division_path=division_path(session, f.division_code),
        address=f.address,
        lon=f.lon,
        lat=f.lat,
        position_approximate=f.position_approximate,
        beds=f.beds,
        doctors=f.doctors,
        nurses=f.nurses,
        staff_total=f.staff_total,
        departments=list(f.departments or []),
        capabilities=capabilities_of(f),
        parent=(parent.id, parent.name) if parent else None,
        consortia=consortia_of_facility(session, f.id),
        practitioners=practitioners,
        postings_in=postings_in,
        next_level_up=up.value if up else None,
    )


def consortium_detail(session: Session, consortium_id: uuid.UUID | str) -> ConsortiumDetail:
    c = _consortium(session, consortium_id)
    lead = session.get(Facility, c.lead_facility_id)
    rows = session.execute(
        select(Facility, ConsortiumMember.membership, ConsortiumMember.role)
        .join(ConsortiumMember, ConsortiumMember.facility_id == Facility.id)
        .where(ConsortiumMember.consortium_id == c.id)
    ).all()
    members = [
        MemberView(f.id, f.code, f.name, f.level, f.kind, membership, role, f.division_code, f.beds)
        for f, membership, role in rows
    ]
    members.sort(key=lambda m: (-rules.level_rank(m.level), m.role != "lead", m.code))
    counts = Counter(m.level for m in members)
    division = session.get(Division, c.division_code) if c.division_code else None
    grids = _grid_views(session, select(Grid).where(Grid.consortium_id == c.id))
    gaps: list[tuple[str, str]] = []
    if c.form == ConsortiumForm.URBAN_MEDICAL_GROUP.value and c.division_code:
        gaps = grid_partition(session, c.division_code[:4]).gaps
    return ConsortiumDetail(
        id=c.id,
        name=c.name,
        form=c.form,
        lead_facility_id=c.lead_facility_id,
        lead_name=lead.name if lead else "",
        division_code=c.division_code,
        division_name=division.name if division else None,
        start_date=c.start_date,
        specialty=c.specialty,
        description=c.description,
        members=members,
        counts_per_level={lv.value: counts.get(lv.value, 0) for lv in reversed(rules.LEVEL_ORDER)},
        beds=sum(m.beds for m in members),
        tight_members=sum(1 for m in members if m.membership == "tight"),
        loose_members=sum(1 for m in members if m.membership == "loose"),
        grids=grids,
        grid_gaps=gaps,
    )


def actor_enricher(session: Session, actor: Actor) -> Actor:
    """Add the consortia of the actor's facility and where it stands, so that scope rules stay pure."""
    if actor.facility_id is None:
        return actor
    division = session.scalar(select(Facility.division_code).where(Facility.id == actor.facility_id))
    if division is None:
        return actor
    consortia = frozenset(
        session.scalars(select(ConsortiumMember.consortium_id).where(ConsortiumMember.facility_id == actor.facility_id))
    )
    return replace(actor, consortium_ids=consortia, facility_division_code=division)


# ----------------------------------------------------------------------------------------------------------------------
# FHIR projection: every registry write puts its resources into the FHIR store in the same transaction.


def _project(session: Session, resources_: list[dict[str, Any]], *, fresh: bool = False) -> int:
    """Upsert resources into the FHIR store; the one place the registry talks to it.

    `fresh` (the demo builder, writing resources that cannot exist yet) skips the store's per-resource validation and
    change detection: the translators' output is validated against the R4B models in tests/network/test_fhir.py.
    """
    if not resources_:
        return 0
    if fresh:
        store.bulk_put(session, resources_)
    else:
        store.upsert_many(session, resources_)
    return len(resources_)


def _names_for(session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted: set[str] = set()
    for code in codes:
        wanted.update(code[:n] for n in (2, 4, 6, 9) if n <= len(code))
    if not wanted:
        return {}
    return dict(session.execute(select(Division.code, Division.name).where(Division.code.in_(wanted))).all())


def facility_resources(session: Session, facilities: Sequence[Facility]) -> list[dict[str, Any]]:
    names = _names_for(session, [f.division_code for f in facilities])
    out: list[dict[str, Any]] = []
    for f in facilities:
        out.append(fhir.to_organization(f, names))
        out.append(fhir.to_location(f, names))
        out.extend(fhir.to_healthcare_services(f))
    return out


def project_facilities(session: Session, facilities: Sequence[Facility], *, fresh: bool = False) -> int:
    return _project(session, facility_resources(session, facilities), fresh=fresh)


def consortium_resources(session: Session, consortium_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in session.scalars(select(Consortium).where(Consortium.id.in_(consortium_ids))):
        out.append(fhir.to_consortium_organization(c))
        members = session.scalars(select(ConsortiumMember).where(ConsortiumMember.consortium_id == c.id))
        out.extend(fhir.to_affiliation(c, m) for m in members)
    return out


def project_consortia(session: Session, consortium_ids: Sequence[uuid.UUID], *, fresh: bool = False) -> int:
    return _project(session, consortium_resources(session, consortium_ids), fresh=fresh)


def project_everything(session: Session, *, fresh: bool = False, batch: int = 2000, progress: Any = None) -> int:
    """Project the whole registry into the FHIR store (the demo builder; a repair after a store rebuild).

    fresh=True when the store holds none of these resources yet (a new demo): bulk writes without change detection.
    """
    n = 0
    facilities = session.scalars(select(Facility).order_by(Facility.code)).all()
    for chunk in _chunks(facilities, batch):
        n += project_facilities(session, chunk, fresh=fresh)
        if progress:
            progress(f"FHIR: {n} resources")
    n += project_consortia(session, list(session.scalars(select(Consortium.id))), fresh=fresh)
    practitioners = session.scalars(select(Practitioner)).all()
    for pchunk in _chunks(practitioners, batch):
        n += _project(session, [fhir.to_practitioner(p) for p in pchunk], fresh=fresh)
        if progress:
            progress(f"FHIR: {n} resources")
    roles = session.scalars(select(PractitionerRole)).all()
    for rchunk in _chunks(roles, batch):
        n += _project(session, [fhir.to_practitioner_role(r) for r in rchunk], fresh=fresh)
        if progress:
            progress(f"FHIR: {n} resources")
    return n


# ----------------------------------------------------------------------------------------------------------------------
# Accounts: who may administer whose account follows who may change the account's facility (scope.can_change_facility);
# accounts without a facility (officials, insurers, administrators) are the system administrator's.

ACCOUNT_ADMINS = frozenset({Role.SYSTEM_ADMIN, Role.COMMISSION_OFFICIAL, Role.CONSORTIUM_ADMIN})


def _account_filter(actor: Actor) -> Any:
    """The accounts an administrator sees, as a WHERE clause over app_user outer-joined to facility."""
    if actor.role == Role.SYSTEM_ADMIN:
        return true()
    if actor.role == Role.COMMISSION_OFFICIAL:
        prefix = scope.division_prefix(actor)
        if prefix is None:
            raise Forbidden("your account has no jurisdiction", field="division_code")
        return or_(Facility.division_code.startswith(prefix), User.division_code.startswith(prefix))
    if actor.role == Role.CONSORTIUM_ADMIN:
        members = select(ConsortiumMember.facility_id).where(ConsortiumMember.consortium_id.in_(actor.consortium_ids))
        return or_(User.facility_id.in_(members), User.facility_id == actor.facility_id)
    raise Forbidden("accounts are administered by system administrators, health commissions and consortium offices")


def list_accounts(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    role: str | None = None,
    facility: str | None = None,
    username: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AccountRow]:
    stmt = (
        select(User, Facility.name, Practitioner.name)
        .outerjoin(Facility, Facility.id == User.facility_id)
        .outerjoin(Practitioner, Practitioner.id == User.practitioner_id)
        .where(_account_filter(actor))
    )
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.display_name.ilike(like)))
    if role:
        stmt = stmt.where(User.role == security_service.check_role(role).value)
    if facility:
        stmt = stmt.where(User.facility_id == resolve_facility_id(session, facility))
    if username:
        stmt = stmt.where(User.username == username)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(User.facility_id, User.role, User.username).offset(offset).limit(limit))
    items = [
        AccountRow(
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            active=u.active,
            facility_id=u.facility_id,
            facility_name=facility_name,
            division_code=u.division_code,
            practitioner_id=u.practitioner_id,
            practitioner_name=practitioner_name,
        )
        for u, facility_name, practitioner_name in rows
    ]
    return Page(items, total, offset, limit)


def get_account(session: Session, actor: Actor, username: str) -> AccountRow:
    if username == actor.username:  # everybody sees their own account
        found = list_accounts(session, SYSTEM, username=username, limit=1).items
    else:
        found = list_accounts(session, actor, username=username, limit=1).items
    if not found:  # also when the account exists outside the caller's reach: do not confirm it exists
        raise NotFound(f"no account {username} among those you administer", field="username")
    return found[0]


def _guard_account(session: Session, actor: Actor, user: User) -> None:
    if user.facility_id is not None:
        if scope.can_change_facility(actor, _facility_facts(session, _facility(session, user.facility_id))):
            return
    elif actor.role == Role.SYSTEM_ADMIN:
        return
    raise Forbidden(f"you may not administer the account {user.username}", field="username")


def create_account(session: Session, data: AccountIn, *, actor: Actor) -> User:
    role = security_service.check_role(data.role)
    if role in FACILITY_ROLES and not data.facility:
        raise Invalid(f"a {role.value} works at a facility: give its id or code", field="facility")
    facility_id = resolve_facility_id(session, data.facility, field="facility") if data.facility else None
    if facility_id is not None:
        if not scope.can_change_facility(actor, _facility_facts(session, _facility(session, facility_id))):
            raise Forbidden("you may not create accounts at this facility", field="facility")
    elif actor.role != Role.SYSTEM_ADMIN:
        raise Forbidden("accounts without a facility are created by the system administrator", field="facility")
    if data.division_code:
        require_division(session, data.division_code)
    user = security_service.create_user(
        session,
        username=data.username,
        password=data.password,
        role=role.value,
        display_name=data.display_name,
        facility_id=facility_id,
        division_code=data.division_code,
        lang=data.lang,
        actor=actor,
    )
    if data.practitioner_id:
        link_account(session, user.username, data.practitioner_id, actor=actor)
    return user


def change_password(
    session: Session, username: str, new_password: str, *, current_password: str | None, actor: Actor
) -> None:
    """One's own password with the current one; another account's (a reset) only by its administrator."""
    if username == actor.username:
        if not current_password:
            raise Invalid("give your current password", field="current_password")
        security_service.set_password(session, username, new_password, current_password=current_password, actor=actor)
        return
    _guard_account(session, actor, security_service.get_user(session, username))
    security_service.set_password(session, username, new_password, actor=actor)


def set_account_active(session: Session, username: str, active: bool, *, actor: Actor) -> User:
    user = security_service.get_user(session, username)
    _guard_account(session, actor, user)
    if not active and user.id == actor.user_id:
        raise Invalid("you cannot disable your own account", field="active")
    return security_service.update_user(session, username, active=active, actor=actor)


def linkable_practitioners(session: Session, facility_id: uuid.UUID) -> list[Practitioner]:
    """Practitioners whose home is the facility and whom no account speaks for yet."""
    taken = select(User.practitioner_id).where(User.practitioner_id.is_not(None))
    return list(
        session.scalars(
            select(Practitioner)
            .where(Practitioner.home_facility_id == facility_id, Practitioner.id.not_in(taken))
            .order_by(Practitioner.name)
            .limit(500)
        )
    )
