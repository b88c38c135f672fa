"""Who is calling: a bearer token (API, FHIR) or the session cookie (pages). FastAPI dependencies."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

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


async def current_actor(request: Request) -> Actor:
    """The signed-in user, or 401. Stores the actor on request.state for templates and audit.

    A coroutine: the token check and a remembered actor cost microseconds on the event loop, where a plain function
    dependency would cost a hop to the thread pool and back on every request; only a cache miss reads the database,
    in the thread pool."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    username = _username(request)
    actor, generation = actor_cache.get(username)
    if actor is None:
        actor = await run_in_threadpool(_load, username, generation)
    request.state.actor = actor
    return actor


def _username(request: Request) -> str:
    token = _token(request)
    if not token:
        raise Unauthorized("sign in first: send a bearer token or log in")
    return tokens.username_from(token)  # signature and expiry: every request


def _load(username: str, generation: int) -> Actor:
    with read_session() as session:
        actor = service.actor_for(session, username)
    actor_cache.put(actor, generation)
    return actor


def optional_actor(request: Request) -> Actor | None:
    """The signed-in user or None, for code that is not a dependency (a plain function: it may read the database)."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    try:
        username = _username(request)
    except Unauthorized:
        return None
    actor, generation = actor_cache.get(username)
    try:
        actor = actor or _load(username, generation)
    except Unauthorized:
        return None
    request.state.actor = actor
    return actor
