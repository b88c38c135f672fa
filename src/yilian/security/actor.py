"""The caller of a request: who they are, their role, and where their world is."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy.orm import Session

from yilian.security.roles import Role


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    username: str
    role: Role
    display_name: str = ""
    facility_id: uuid.UUID | None = None
    division_code: str | None = None
    lang: str = "zh"
    practitioner_id: uuid.UUID | None = None  # the registry practitioner the account is linked to, if any
    # Filled in by the network domain (see `register_enricher`): the consortia the actor's facility belongs to,
    # and the division code of that facility, so that scope rules stay pure.
    consortium_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    facility_division_code: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.SYSTEM_ADMIN


# The kernel knows nothing of facilities or consortia; the network domain registers a function that adds them.
Enricher = Callable[[Session, Actor], Actor]
_enrichers: list[Enricher] = []


def register_enricher(fn: Enricher) -> None:
    if fn not in _enrichers:
        _enrichers.append(fn)


def enrich(session: Session, actor: Actor) -> Actor:
    for fn in _enrichers:
        actor = fn(session, actor)
    return actor


SYSTEM = Actor(user_id=None, username="system", role=Role.SYSTEM_ADMIN, display_name="system")


def with_lang(actor: Actor, lang: str) -> Actor:
    return replace(actor, lang=lang)
