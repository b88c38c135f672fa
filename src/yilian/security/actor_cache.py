"""The actor of a token, remembered for a few seconds per process.

Resolving a bearer token used to cost a read-only transaction of its own on every request (the user row, then the
enricher's facility and consortium queries): about a third of the CPU of a FHIR read. The actor now stays in memory
for ACTOR_TTL_S seconds. Correctness rests on two rules:

- in this process, any statement that writes a table the actor is built from (users, and the facility/consortium
  tables the network enricher reads) drops every cached actor, once when it runs and again when its transaction
  commits, so a disabled user's next request is refused and a role change applies at once;
- another process (a second uvicorn worker, the CLI) cannot reach this memory: its changes take effect here within
  ACTOR_TTL_S seconds, the bound on how long a disabled user's token keeps working elsewhere.

The token itself (signature, expiry) is still checked on every request; a user that no longer exists or is disabled
is never cached.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause

from yilian.security.actor import Actor

ACTOR_TTL_S = 5.0
# Tables an actor is built from: app_user here; facility and consortium_member through the network domain's enricher
# (named, not imported: the kernel does not depend on the domain).
WATCHED_TABLES = frozenset({"app_user", "facility", "consortium_member"})

_actors: dict[str, tuple[float, Actor]] = {}
_generation = 0
_lock = threading.Lock()


def get(username: str) -> tuple[Actor | None, int]:
    """The remembered actor (or None) and the generation to hand back to `put` after loading it."""
    hit = _actors.get(username)
    if hit is not None and time.monotonic() - hit[0] < ACTOR_TTL_S:
        return hit[1], _generation
    return None, _generation


def put(actor: Actor, generation: int) -> None:
    """Remember an actor loaded while `generation` was current; a change in between means it may be stale: drop it."""
    with _lock:
        if generation != _generation:
            return
        if len(_actors) > 10_000:
            _actors.clear()
        _actors[actor.username] = (time.monotonic(), actor)


def generation() -> int:
    """Changes whenever a watched table is written in this process: other caches of facility facts key on it."""
    return _generation


def forget() -> None:
    global _generation
    with _lock:
        _generation += 1
        _actors.clear()


def _writes_watched(statement: Any) -> bool:
    if isinstance(statement, UpdateBase):
        table = getattr(statement, "table", None)
        return getattr(table, "name", None) in WATCHED_TABLES
    if isinstance(statement, TextClause | str):  # raw SQL: a write that names one of the tables
        sql = (statement.text if isinstance(statement, TextClause) else statement).lower()
        return not sql.lstrip().startswith("select") and any(name in sql for name in WATCHED_TABLES)
    return False


@event.listens_for(Engine, "after_execute")
def _after_execute(conn: Any, statement: Any, *_: Any) -> None:
    if _writes_watched(statement):
        conn.info["yilian.actors_changed"] = True
        forget()


@event.listens_for(Engine, "commit")
def _on_commit(conn: Any) -> None:
    # Again at commit: a request that loaded the actor between the write and its commit saw the old row.
    if conn.info.pop("yilian.actors_changed", False):
        forget()


@event.listens_for(Engine, "rollback")
def _on_rollback(conn: Any) -> None:
    conn.info.pop("yilian.actors_changed", None)
