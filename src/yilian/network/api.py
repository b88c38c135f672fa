"""JSON API under /api/v1/network: the registry for programs. Reads for any signed-in user; writes by scope."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from yilian.db import read_session, unit_of_work
from yilian.network import service
from yilian.network.schemas import (
    ConsortiumIn,
    ConsortiumOut,
    ConsortiumPatch,
    DivisionOut,
    FacilityIn,
    FacilityOut,
    FacilityPatch,
    GridIn,
    Page,
    PageOut,
    PostingIn,
    PractitionerIn,
    PractitionerOut,
    PractitionerRoleOut,
)
from yilian.security.actor import Actor
from yilian.web.auth import current_actor

router = APIRouter(prefix="/api/v1/network", tags=["network"])

CurrentActor = Annotated[Actor, Depends(current_actor)]
Offset = Annotated[int, Query(ge=0, description="How many items to skip")]
Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="Page size")]


def _page(request: Request, page: Page[Any]) -> dict[str, Any]:
    nxt = None
    if page.has_next:
        nxt = str(request.url.include_query_params(offset=page.offset + page.limit, limit=page.limit))
    return {"items": page.items, "total": page.total, "offset": page.offset, "limit": page.limit, "next": nxt}


def _plain(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj


# -- divisions ------------------------------------------------------------------------------------------------------


@router.get("/divisions", response_model=list[DivisionOut])
def get_divisions(
    actor: CurrentActor, parent: Annotated[str | None, Query(description="Parent code, e.g. 14 or 1410")] = None
) -> list[DivisionOut]:
    """Provinces, or the children of a division (`?parent=1410` lists Linfen's counties)."""
    with read_session() as session:
        return [DivisionOut.model_validate(d) for d in service.list_divisions(session, parent)]


@router.get("/divisions/{code}", response_model=DivisionOut)
def get_division(code: str, actor: CurrentActor) -> DivisionOut:
    with read_session() as session:
        return DivisionOut.model_validate(service.require_division(session, code, field="code"))


@router.get("/overview")
def get_overview(
    actor: CurrentActor, division: Annotated[str, Query(description="Division prefix, e.g. 1410")] = ""
) -> dict[str, Any]:
    """A region at a glance: facilities and beds per level, residents, consortia, map points."""
    with read_session() as session:
        return dataclasses.asdict(service.network_overview(session, division))


# -- facilities -----------------------------------------------------------------------------------------------------


@router.get("/facilities", response_model=PageOut[FacilityOut])
def get_facilities(
    request: Request,
    actor: CurrentActor,
    division: Annotated[str | None, Query(description="Division code prefix: 14, 1410, 141024 ...")] = None,
    level: str | None = None,
    kind: str | None = None,
    capability: str | None = None,
    consortium: uuid.UUID | None = None,
    q: Annotated[str | None, Query(description="Part of the name, or a code prefix")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    with read_session() as session:
        page = service.list_facilities(
            session,
            division_prefix=division,
            level=level,
            kind=kind,
            capability=capability,
            consortium_id=consortium,
            q=q,
            offset=offset,
            limit=limit,
        )
    return _page(request, page)


@router.get("/facilities/{facility}", response_model=FacilityOut)
def get_facility(facility: str, actor: CurrentActor) -> FacilityOut:
    """One facility by id or code."""
    with read_session() as session:
        return service.get_facility(session, facility)


@router.get("/facilities/{facility}/detail")
def get_facility_detail(facility: str, actor: CurrentActor) -> dict[str, Any]:
    """A facility with its place, consortia, capabilities and staff figures (what its page shows)."""
    with read_session() as session:
        return dataclasses.asdict(service.facility_detail(session, facility))


@router.post("/facilities", response_model=FacilityOut, status_code=201)
def post_facility(body: FacilityIn, actor: CurrentActor) -> FacilityOut:
    with unit_of_work() as session:
        return service.facility_out(service.create_facility(session, body, actor=actor))


@router.patch("/facilities/{facility}", response_model=FacilityOut)
def patch_facility(facility: str, body: FacilityPatch, actor: CurrentActor) -> FacilityOut:
    with unit_of_work() as session:
        return service.facility_out(service.update_facility(session, facility, body, actor=actor))


# -- consortia and grids --------------------------------------------------------------------------------------------


@router.get("/consortia", response_model=PageOut[ConsortiumOut])
def get_consortia(
    request: Request,
    actor: CurrentActor,
    form: str | None = None,
    division: str | None = None,
    facility: Annotated[str | None, Query(description="Consortia this facility (id or code) belongs to")] = None,
    q: str | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    with read_session() as session:
        facility_id = service.resolve_facility_id(session, facility, field="facility") if facility else None
        page = service.list_consortia(
            session, form=form, division_prefix=division, facility_id=facility_id, q=q, offset=offset, limit=limit
        )
    return _page(request, page)


@router.get("/consortia/{consortium_id}")
def get_consortium(consortium_id: str, actor: CurrentActor) -> dict[str, Any]:
    """A consortium with its members (level, membership, role), capacity and grids."""
    with read_session() as session:
        return dataclasses.asdict(service.consortium_detail(session, consortium_id))


@router.post("/consortia", response_model=ConsortiumOut, status_code=201)
def post_consortium(body: ConsortiumIn, actor: CurrentActor) -> ConsortiumOut:
    with unit_of_work() as session:
        c = service.create_consortium(session, body, actor=actor)
        return service.get_consortium(session, c.id)


@router.patch("/consortia/{consortium_id}", response_model=ConsortiumOut)
def patch_consortium(consortium_id: str, body: ConsortiumPatch, actor: CurrentActor) -> ConsortiumOut:
    with unit_of_work() as session:
        c = service.update_consortium(session, consortium_id, body, actor=actor)
        return service.get_consortium(session, c.id)


@router.get("/grids")
def get_grids(actor: CurrentActor, city: Annotated[str, Query(description="City code, e.g. 1410")]) -> dict[str, Any]:
    """A city's grid partition: the grids with their townships/streets, and the gaps no grid covers."""
    with read_session() as session:
        return dataclasses.asdict(service.grid_partition(session, city))


@router.post("/grids", status_code=201)
def post_grid(body: GridIn, actor: CurrentActor) -> dict[str, Any]:
    with unit_of_work() as session:
        grid = service.create_grid(session, body, actor=actor)
        return {"id": grid.id, "name": grid.name, "city_code": grid.city_code, "consortium_id": grid.consortium_id}


# -- practitioners --------------------------------------------------------------------------------------------------


@router.get("/practitioners", response_model=PageOut[PractitionerOut])
def get_practitioners(
    request: Request,
    actor: CurrentActor,
    facility: Annotated[str | None, Query(description="Facility id or code where they hold a role")] = None,
    q: str | None = None,
    title: str | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    with read_session() as session:
        facility_id = service.resolve_facility_id(session, facility, field="facility") if facility else None
        page = service.list_practitioners(
            session, facility_id=facility_id, q=q, title=title, offset=offset, limit=limit
        )
    return _page(request, page)


@router.get("/practitioners/{practitioner_id}", response_model=PractitionerOut)
def get_practitioner(practitioner_id: str, actor: CurrentActor) -> PractitionerOut:
    with read_session() as session:
        return service.get_practitioner(session, practitioner_id)


@router.post("/practitioners", response_model=PractitionerOut, status_code=201)
def post_practitioner(body: PractitionerIn, actor: CurrentActor) -> PractitionerOut:
    with unit_of_work() as session:
        p = service.create_practitioner(session, body, actor=actor)
        return service.get_practitioner(session, p.id)


@router.post("/practitioners/{practitioner_id}/postings", response_model=PractitionerRoleOut, status_code=201)
def post_posting(practitioner_id: str, body: PostingIn, actor: CurrentActor) -> PractitionerRoleOut:
    """Post a practitioner to another facility (expert outreach, resident expert, honorary chief)."""
    with unit_of_work() as session:
        return PractitionerRoleOut.model_validate(service.add_posting(session, practitioner_id, body, actor=actor))
