"""HTML pages of the registry: the jurisdiction overview, facility and consortium lists and pages, home panels."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yilian.db import read_session, unit_of_work
from yilian.errors import Forbidden, Invalid
from yilian.network import service
from yilian.network.rules import CAPABILITIES, LEVEL_ORDER, ConsortiumForm, Level
from yilian.network.schemas import AccountIn
from yilian.security import scope
from yilian.security.actor import Actor
from yilian.security.roles import FACILITY_ROLES, JURISDICTION_ROLES, Role
from yilian.web.auth import current_actor
from yilian.web.home import NavItem, Panel
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)

# Enum values → English labels (msgids); Chinese comes from i18n/zh-pages.po.
LABELS: dict[str, str] = {
    "national_regional_centre": "National regional medical centre",
    "tertiary": "Provincial / city tertiary hospital",
    "county_hospital": "County hospital",
    "township_centre": "Township / community health centre",
    "village_clinic": "Village clinic / community station",
    "general": "General",
    "tcm": "Traditional Chinese medicine",
    "maternal_child": "Maternal and child health",
    "specialist": "Specialist",
    "public": "Public",
    "collective": "Collective",
    "private": "Private",
    "urban_medical_group": "Urban medical group",
    "county_medical_community": "County medical community",
    "specialist_alliance": "Specialist alliance",
    "telemedicine_network": "Telemedicine network",
    "tight": "Tight",
    "loose": "Loose",
    "lead": "Lead",
    "member": "Member",
    "imaging_partner": "Imaging partner",
    "ecg_partner": "ECG partner",
    "pathology_partner": "Pathology partner",
    "lab_partner": "Lab partner",
    "fourth_level_surgery": "4th-level surgery",
    "chest_pain_centre": "Chest-pain centre",
    "stroke_centre": "Stroke centre",
    "trauma_centre": "Trauma centre",
    "critical_maternal_centre": "Critical maternal centre",
    "critical_neonatal_centre": "Critical neonatal centre",
    "imaging_reading_centre": "Imaging reading centre",
    "ecg_reading_centre": "ECG reading centre",
    "lab_centre": "Lab centre",
    "pathology_centre": "Pathology centre",
    "sterile_supply": "Sterile supply centre",
}
LEVELS_TOP_DOWN = [lv.value for lv in reversed(LEVEL_ORDER)]
OVERVIEW_ROLES = frozenset({str(r) for r in JURISDICTION_ROLES | {Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN}})
PAGE_SIZE = 50

NAV = [
    (10, NavItem("/network/overview", "Network overview", OVERVIEW_ROLES)),
    (20, NavItem("/network/facilities", "Facilities")),
    (30, NavItem("/network/consortia", "Consortia")),
    (90, NavItem("/network/accounts", "Accounts", frozenset(str(r) for r in service.ACCOUNT_ADMINS))),
]


def _ctx(**values: object) -> dict[str, object]:
    return {"label": lambda v: LABELS.get(str(v), str(v)), "levels": LEVELS_TOP_DOWN, **values}


def _overview_division(session: Session, actor: Actor, requested: str | None) -> str:
    """The division an overview shows: the one asked for if the actor may see it, else the actor's own."""
    own = scope.division_prefix(actor)
    if own is None and actor.role == Role.CONSORTIUM_ADMIN and actor.facility_division_code:
        own = actor.facility_division_code[:6]  # a consortium administrator sees the county of the lead hospital
    if own is None:
        raise Forbidden("the network overview is for health commissions, insurers and consortium administrators")
    if requested:
        service.require_division(session, requested)
        if not scope.in_jurisdiction(actor, requested) and not requested.startswith(own):
            raise Forbidden(f"division {requested} is outside your jurisdiction", field="division")
        return requested
    return own


def overview_context(session: Session, actor: Actor, division: str | None) -> dict[str, object]:
    prefix = _overview_division(session, actor, division)
    overview = service.network_overview(session, prefix)
    children = service.list_divisions(session, parent=prefix) if prefix else []
    child_rows = []
    for child in children[:40]:
        counts = service.list_facilities(session, division_prefix=child.code, limit=1).total
        child_rows.append((child.code, child.name, counts, child.population))
    points = {
        level: [[p.lon, p.lat, p.name, str(p.id)] for p in overview.points if p.level == level]
        for level in LEVELS_TOP_DOWN
    }
    crumbs = service.division_path(session, prefix) if prefix else []
    return _ctx(overview=overview, children=child_rows, points=points, crumbs=crumbs)


def overview_panel(session: Session, actor: Actor) -> Panel | None:
    if str(actor.role) not in OVERVIEW_ROLES:
        return None
    try:
        return Panel("network/overview_panel.html", overview_context(session, actor, None))
    except Forbidden:
        return None


def facility_panel(session: Session, actor: Actor) -> Panel | None:
    if actor.role not in FACILITY_ROLES or actor.facility_id is None:
        return None
    return Panel("network/facility_panel.html", _ctx(facility=service.facility_detail(session, actor.facility_id)))


@router.get("/network/overview")
def overview_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    division: Annotated[str | None, Query(max_length=12, pattern=r"^\d{2,9}$")] = None,
) -> Response:
    with read_session() as session:
        ctx = overview_context(session, actor, division)
    return render(request, "network/overview.html", ctx)


@router.get("/network/facilities")
def facilities_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    q: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[Level | None, Query()] = None,
    capability: Annotated[str | None, Query(max_length=40)] = None,
    division: Annotated[str | None, Query(max_length=12, pattern=r"^\d{2,9}$")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    with read_session() as session:
        page = service.list_facilities(
            session,
            q=q or None,
            level=level.value if level else None,
            capability=capability or None,
            division_prefix=division,
            offset=offset,
            limit=PAGE_SIZE,
        )
    filters = {
        "q": q or "",
        "level": level.value if level else "",
        "capability": capability or "",
        "division": division or "",
    }
    return render(request, "network/facilities.html", _ctx(page=page, filters=filters, capabilities=CAPABILITIES))


@router.get("/network/facilities/{facility_id}")
def facility_page(request: Request, facility_id: str, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with read_session() as session:
        facility = service.facility_detail(session, facility_id)
    return render(request, "network/facility.html", _ctx(facility=facility))


@router.get("/network/consortia")
def consortia_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    form: Annotated[ConsortiumForm | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    with read_session() as session:
        page = service.list_consortia(
            session, form=form.value if form else None, q=q or None, offset=offset, limit=PAGE_SIZE
        )
    filters = {"form": form.value if form else "", "q": q or ""}
    return render(request, "network/consortia.html", _ctx(page=page, filters=filters, forms=list(ConsortiumForm)))


@router.get("/network/consortia/{consortium_id}")
def consortium_page(
    request: Request, consortium_id: uuid.UUID, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    with read_session() as session:
        consortium = service.consortium_detail(session, consortium_id)
    return render(request, "network/consortium.html", _ctx(consortium=consortium))


@router.get("/network/accounts")
def accounts_page(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    q: Annotated[str | None, Query(max_length=64)] = None,
    role: Annotated[Role | None, Query()] = None,
    facility: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The accounts an administrator looks after: who works where, in which role, as which practitioner."""
    with read_session() as session:
        page = service.list_accounts(
            session, actor, q=q or None, role=role, facility=facility or None, offset=offset, limit=PAGE_SIZE
        )
    filters = {"q": q or "", "role": role.value if role else "", "facility": facility or ""}
    return render(request, "network/accounts.html", _ctx(page=page, filters=filters, roles=list(Role)))


@router.post("/network/accounts")
def account_create(
    actor: Annotated[Actor, Depends(current_actor)],
    username: Annotated[str, Form()],
    display_name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
    facility: Annotated[str, Form()] = "",
    division_code: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = AccountIn.model_validate(
            {
                "username": username,
                "display_name": display_name,
                "role": role,
                "password": password,
                "facility": facility.strip() or None,
                "division_code": division_code.strip() or None,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "username"
        raise Invalid(f"{field}: {first['msg']}", field=field) from None
    with unit_of_work() as session:
        user = service.create_account(session, data, actor=actor)
        name = user.username
    return RedirectResponse(f"/network/accounts/{name}", status_code=303)


@router.get("/network/accounts/{username}")
def account_page(
    request: Request,
    username: str,
    actor: Annotated[Actor, Depends(current_actor)],
    changed: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    if username == "me":  # the header's link to one's own account
        username = actor.username
    with read_session() as session:
        account = service.get_account(session, actor, username)
        candidates = (
            service.linkable_practitioners(session, account.facility_id)
            if account.facility_id and account.practitioner_id is None
            else []
        )
    own = username == actor.username
    admin = actor.role in service.ACCOUNT_ADMINS  # the account is one they administer (get_account checked), or theirs
    return render(
        request,
        "network/account.html",
        _ctx(account=account, candidates=candidates, own=own, admin=admin, changed=changed),
    )


@router.post("/network/accounts/{username}/password")
def account_password(
    username: str,
    actor: Annotated[Actor, Depends(current_actor)],
    new_password: Annotated[str, Form()],
    confirm_password: Annotated[str, Form()],
    current_password: Annotated[str, Form()] = "",
) -> Response:
    if new_password != confirm_password:
        raise Invalid("the two new passwords differ", field="confirm_password")
    with unit_of_work() as session:
        service.get_account(session, actor, username)  # 404 for accounts outside the caller's reach
        service.change_password(session, username, new_password, current_password=current_password or None, actor=actor)
    return RedirectResponse(f"/network/accounts/{username}?changed=password", status_code=303)


@router.post("/network/accounts/{username}/active")
def account_active(
    username: str, actor: Annotated[Actor, Depends(current_actor)], active: Annotated[bool, Form()]
) -> Response:
    with unit_of_work() as session:
        service.set_account_active(session, username, active, actor=actor)
    return RedirectResponse(f"/network/accounts/{username}", status_code=303)


@router.post("/network/accounts/{username}/practitioner")
def account_practitioner(
    username: str, actor: Annotated[Actor, Depends(current_actor)], practitioner_id: Annotated[str, Form()] = ""
) -> Response:
    """Link the account to the practitioner chosen, or unlink it when none is given."""
    with unit_of_work() as session:
        service.get_account(session, actor, username)  # 404 for accounts outside the caller's reach
        service.link_account(session, username, practitioner_id.strip() or None, actor=actor)
    return RedirectResponse(f"/network/accounts/{username}", status_code=303)
