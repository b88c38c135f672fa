"""Scope rules, in one place: which facilities, consortia and patients a user may see and change.

Pure functions over plain facts (no database): services gather the facts and ask.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, JURISDICTION_ROLES, Role


@dataclass(frozen=True)
class FacilityFacts:
    id: uuid.UUID
    division_code: str  # township (9 digits) or county (6 digits) code of where it stands
    consortium_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True)
class PatientFacts:
    """Where a person's records were written and what the person agreed to."""

    facility_ids: frozenset[uuid.UUID]
    consortium_ids: frozenset[uuid.UUID]
    division_codes: frozenset[str]
    share_outside_consortium: bool = True  # False when the patient restricted sharing (Consent)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    needs_break_glass: bool = False
    why: str = ""


def in_jurisdiction(actor: Actor, division_code: str) -> bool:
    """Officials see everything under their division: a city code 1410 covers 141002, 141002100, ..."""
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    return bool(actor.division_code) and division_code.startswith(_prefix(actor.division_code or ""))


def _prefix(code: str) -> str:
    # GB/T 2260 codes are padded with zeros: 140000 is Shanxi, 141000 is Linfen; compare on the meaningful part.
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def division_prefix(actor: Actor) -> str | None:
    """The division prefix that bounds what a jurisdiction user sees; '' for everything; None when not by division."""
    if actor.role == Role.SYSTEM_ADMIN:
        return ""
    if actor.role in JURISDICTION_ROLES and actor.division_code:
        return _prefix(actor.division_code)
    return None


def can_see_facility(actor: Actor, facility: FacilityFacts) -> bool:
    """The registry is shared inside the network: any signed-in user may see facilities (names, levels, services)."""
    return True


def can_change_facility(actor: Actor, facility: FacilityFacts) -> bool:
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    if actor.role == Role.COMMISSION_OFFICIAL:
        return in_jurisdiction(actor, facility.division_code)
    if actor.role == Role.CONSORTIUM_ADMIN:
        return bool(actor.consortium_ids & facility.consortium_ids) or actor.facility_id == facility.id
    return False


def can_change_consortium(actor: Actor, consortium_id: uuid.UUID | None, lead_division_code: str) -> bool:
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    if actor.role == Role.COMMISSION_OFFICIAL:
        return in_jurisdiction(actor, lead_division_code)
    if actor.role == Role.CONSORTIUM_ADMIN:
        return consortium_id is not None and consortium_id in actor.consortium_ids
    return False


def can_read_patient(actor: Actor, patient: PatientFacts) -> Decision:
    """Clinicians read the records of patients seen at their facility or in their consortium.

    Outside the consortium the record is readable while the patient shares it across the region; once the patient
    restricts sharing to their consortium (Consent), a reader outside must give a break-glass reason, audited.
    """
    if actor.role == Role.SYSTEM_ADMIN:
        return Decision(True, why="system administrator")
    if actor.role in JURISDICTION_ROLES:
        # Officials and insurers work on aggregates; person-level reads need a stated reason.
        if any(in_jurisdiction(actor, code) for code in patient.division_codes):
            return Decision(False, needs_break_glass=True, why="person-level read by a jurisdiction user")
        return Decision(False, why="outside the user's jurisdiction")
    if actor.role not in CLINICAL_ROLES and actor.role != Role.CONSORTIUM_ADMIN:
        return Decision(False, why="role does not read clinical records")
    if actor.facility_id is not None and actor.facility_id in patient.facility_ids:
        return Decision(True, why="records written at the user's facility")
    if actor.consortium_ids & patient.consortium_ids:
        return Decision(True, why="same consortium")
    if patient.share_outside_consortium:
        return Decision(True, why="patient shares the record across the regional network")
    return Decision(False, needs_break_glass=True, why="patient restricted sharing to their consortium")
