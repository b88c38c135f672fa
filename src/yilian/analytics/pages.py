"""HTML pages of the views: the catalogue (views, their columns, whether they are materialised) and one view's page
with a preview of its first rows over what the user may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from yilian.analytics import service
from yilian.db import unit_of_work
from yilian.security.actor import Actor
from yilian.web.auth import current_actor
from yilian.web.home import NavItem
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)

NAV = [(80, NavItem("/analytics/views", "Analytic views"))]


@router.get("/analytics/views")
def views_page(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with unit_of_work() as session:
        views = service.catalogue(session)
    return render(request, "analytics/views.html", {"views": views})


@router.get("/analytics/views/{name}")
def view_page(
    request: Request,
    name: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    # a unit of work, not a read session: showing person-level rows writes audit rows
    with unit_of_work() as session:
        view = service.summary(session, name)
        preview = service.preview(session, actor, name)
    return render(request, "analytics/view.html", {"view": view, "preview": preview})
