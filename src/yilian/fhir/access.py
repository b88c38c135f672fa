"""Who may read and write what through /fhir. The patients domain registers the real policy (consent, consortium,
break-glass); until then the default below applies."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from yilian.errors import Forbidden
from yilian.fhir.searchparams import REGISTRY_TYPES
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, Role

# (session, actor, action, resource type, patient reference or None) → None, or raise Forbidden.
# action is one of "read", "search", "write". patient is "Patient/<id>" when the data belongs to one patient.
Policy = Callable[[Session, Actor, str, str, str | None], None]


def default_policy(session: Session, actor: Actor, action: str, res_type: str, patient: str | None) -> None:
    if actor.role == Role.SYSTEM_ADMIN or actor.role in CLINICAL_ROLES:
        return
    raise Forbidden(f"a {actor.role} may not {action} patient records ({res_type})", field=res_type)


_policy: Policy = default_policy


def register_policy(fn: Policy) -> None:
    """Replace the decision for patient data (registry types keep their own rule below)."""
    global _policy
    _policy = fn


def is_registry(res_type: str) -> bool:
    return res_type in REGISTRY_TYPES


def check(session: Session, actor: Actor, action: str, res_type: str, patient: str | None = None) -> None:
    if is_registry(res_type):
        if action == "write" and actor.role != Role.SYSTEM_ADMIN:
            raise Forbidden(f"only a system administrator writes {res_type} (the registry)", field=res_type)
        return
    if action == "write" and not (actor.role == Role.SYSTEM_ADMIN or actor.role in CLINICAL_ROLES):
        raise Forbidden(f"a {actor.role} may not write {res_type}", field=res_type)
    _policy(session, actor, action, res_type, patient)
