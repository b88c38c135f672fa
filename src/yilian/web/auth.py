"""Who is calling: a bearer token (API, FHIR) or the session cookie (pages). FastAPI dependencies."""

from __future__ import annotations

from fastapi import Request

from yilian.db import read_session
from yilian.errors import Unauthorized
from yilian.security import actor_cache, service, tokens
from yilian.security.actor import Actor

SESSION_COOKIE = "yilian_session"
LANG_COOKIE = "yilian_lang"


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use 'Authorization: Bearer <token>' (get one with `yilian token --user NAME`)")
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def current_actor(request: Request) -> Actor:
    """The signed-in user, or 401. Stores the actor on request.state for templates and audit."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    token = _token(request)
    if not token:
        raise Unauthorized("sign in first: send a bearer token or log in")
    username = tokens.username_from(token)  # signature and expiry: every request
    actor, generation = actor_cache.get(username)
    if actor is None:
        with read_session() as session:
            actor = service.actor_for(session, username)
        actor_cache.put(actor, generation)
    request.state.actor = actor
    return actor


def optional_actor(request: Request) -> Actor | None:
    try:
        return current_actor(request)
    except Unauthorized:
        return None
