"""Sign in, sign out, language switch and the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from yilian.db import read_session
from yilian.errors import Unauthorized
from yilian.security import service, tokens
from yilian.security.actor import Actor
from yilian.web.auth import LANG_COOKIE, SESSION_COOKIE, current_actor, optional_actor
from yilian.web.home import panels_for
from yilian.web.i18n import LANGS
from yilian.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a signed-in user to another site.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if optional_actor(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None, "username": ""})


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        with read_session() as session:
            user = service.authenticate(session, username.strip(), password)
    except Unauthorized as exc:
        ctx = {"next": _safe_next(next), "error": exc.message, "username": username}
        return render(request, "login.html", ctx, status=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, tokens.issue(user.username, kind="session"), httponly=True, samesite="lax")
    if not request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, user.lang, samesite="lax", max_age=365 * 86400)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    return response


@router.get("/")
def home(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    with read_session() as session:
        panels = panels_for(session, actor)
    return render(request, "home.html", {"panels": panels})
