"""Use cases for people and access: create users, sign in, resolve the actor of a request."""

from __future__ import annotations

import re
import uuid
from typing import cast as typed

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.errors import Conflict, Invalid, NotFound, Unauthorized
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor, enrich
from yilian.security.models import User
from yilian.security.passwords import hash_password, verify_password
from yilian.security.roles import CLINICAL_ROLES, FACILITY_ROLES, JURISDICTION_ROLES, Role

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise Invalid(f"role must be one of {', '.join(r.value for r in Role)}", field="role") from None


def _check_placement(role: Role, facility_id: uuid.UUID | None, division_code: str | None) -> None:
    """Where a user of this role works must be known: a facility, or a jurisdiction's division."""
    if role in FACILITY_ROLES and facility_id is None:
        raise Invalid(f"a {role.value} works at a facility: give its id", field="facility_id")
    if role in JURISDICTION_ROLES and not division_code:
        raise Invalid(f"a {role.value} is tied to a jurisdiction: give its division code", field="division_code")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    facility_id: uuid.UUID | None = None,
    division_code: str | None = None,
    lang: str = "zh",
    actor: Actor = SYSTEM,
) -> User:
    """Create a user. The caller (service of the network domain, CLI) has checked that the facility/division exists."""
    if not USERNAME.match(username):
        raise Invalid(
            "username: 2-64 lower-case letters, digits, '.', '_' or '-', starting with a letter", field="username"
        )
    if username == "me":  # the pages' alias of the signed-in user's own account
        raise Invalid("the username 'me' is reserved", field="username")
    role_enum = check_role(role)
    if len(password) < 8:
        raise Invalid("password must have at least 8 characters", field="password")
    _check_placement(role_enum, facility_id, division_code)
    if lang not in ("zh", "en"):
        raise Invalid("lang must be zh or en", field="lang")
    if session.scalar(select(func.count()).select_from(User).where(User.username == username)):
        raise Conflict(f"user {username} already exists", field="username")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role_enum.value,
        facility_id=facility_id,
        division_code=division_code,
        password_hash=hash_password(password),
        lang=lang,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", resource=f"User/{user.id}", detail={"username": username, "role": role})
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username}", field="username")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        raise Unauthorized("wrong username or password")
    return user


def update_user(
    session: Session,
    username: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    facility_id: uuid.UUID | None = None,
    division_code: str | None = None,
    display_name: str | None = None,
    actor: Actor = SYSTEM,
) -> User:
    """Change a user's role, workplace, name or whether they may sign in. Takes effect on their next request (cached actors
    are dropped when app_user is written; see security.actor_cache)."""
    user = get_user(session, username)
    changes: dict[str, object] = {}
    if role is not None:
        changes["role"] = check_role(role).value
    if facility_id is not None:
        changes["facility_id"] = facility_id
    if division_code is not None:
        changes["division_code"] = division_code
    if active is not None:
        changes["active"] = active
    if display_name is not None:
        if not display_name.strip():
            raise Invalid("display name must not be empty", field="display_name")
        changes["display_name"] = display_name.strip()
    _check_placement(
        Role(str(changes.get("role", user.role))),
        typed(uuid.UUID | None, changes.get("facility_id", user.facility_id)),
        typed(str | None, changes.get("division_code", user.division_code)),
    )
    for key, value in changes.items():
        setattr(user, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "user.update",
        resource=f"User/{user.id}",
        detail={"username": username, **{k: str(v) for k, v in changes.items()}},
    )
    return user


def link_practitioner(
    session: Session, username: str, practitioner_id: uuid.UUID | None, *, actor: Actor = SYSTEM
) -> User:
    """Link a clinician's account to the registry practitioner it belongs to (None unlinks). The caller (network
    service) has checked that the practitioner exists and works where the account does. One account per practitioner:
    a second link would let two people act as the same doctor."""
    user = get_user(session, username)
    if practitioner_id is not None:
        if Role(user.role) not in CLINICAL_ROLES:
            raise Invalid(
                f"only a clinician's account can belong to a practitioner, not a {user.role}", field="practitioner_id"
            )
        holder = session.scalar(
            select(User.username).where(User.practitioner_id == practitioner_id, User.id != user.id)
        )
        if holder is not None:
            raise Conflict(
                f"practitioner {practitioner_id} is already linked to user {holder}", field="practitioner_id"
            )
    user.practitioner_id = practitioner_id
    session.flush()
    audit.record(
        session,
        actor,
        "user.link_practitioner",
        resource=f"User/{user.id}",
        detail={"username": username, "practitioner_id": str(practitioner_id) if practitioner_id else None},
    )
    return user


def set_password(
    session: Session, username: str, new_password: str, *, current_password: str | None = None, actor: Actor = SYSTEM
) -> User:
    """Change a user's password. A user changing their own proves the current one; an administrator's reset does not
    (the caller has checked that the administrator may). The audit row records who, never the password."""
    user = get_user(session, username)
    if current_password is not None and not verify_password(user.password_hash, current_password):
        raise Invalid("the current password is wrong", field="current_password")
    if len(new_password) < 8:
        raise Invalid("password must have at least 8 characters", field="new_password")
    user.password_hash = hash_password(new_password)
    session.flush()
    own = actor.user_id == user.id
    audit.record(session, actor, "user.password", resource=f"User/{user.id}", detail={"username": username, "own": own})
    return user


def actor_for(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise Unauthorized("the user of this token no longer exists or is disabled")
    return enrich(session, actor_from_user(user))


def actor_from_user(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        display_name=user.display_name,
        facility_id=user.facility_id,
        division_code=user.division_code,
        lang=user.lang,
        practitioner_id=user.practitioner_id,
    )
