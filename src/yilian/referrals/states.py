"""The referral workflow as a table: (state, action) -> (next state, roles allowed). Everything not listed is illegal.

The loop of an up-referral: a sending doctor submits, the referral centre triages and offers it to a receiver, the
receiving department accepts and books, the patient arrives, is treated and discharged, is sent back down with a care
plan, the family-doctor team records follow-up, and the referral closes. "system" is the platform itself (SLA timers,
green-channel auto-routing).
"""

from __future__ import annotations

from enum import StrEnum

from yilian.security.roles import Role


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    TRIAGED = "triaged"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REDIRECTED = "redirected"
    BOOKED = "booked"
    ARRIVED = "arrived"
    IN_TREATMENT = "in_treatment"
    DISCHARGED = "discharged"
    DOWN_REFERRED = "down_referred"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


SYSTEM = "system"
SENDERS = frozenset({Role.VILLAGE_DOCTOR, Role.TOWNSHIP_DOCTOR, Role.COUNTY_DOCTOR, Role.SPECIALIST})
COORDINATOR = frozenset({Role.REFERRAL_COORDINATOR})
RECEIVERS = frozenset({Role.COUNTY_DOCTOR, Role.SPECIALIST, Role.TOWNSHIP_DOCTOR})
FAMILY_DOCTORS = frozenset({Role.VILLAGE_DOCTOR, Role.TOWNSHIP_DOCTOR})


def _roles(*groups: frozenset[str] | str) -> frozenset[str]:
    out: set[str] = set()
    for g in groups:
        out |= {g} if isinstance(g, str) else {str(r) for r in g}
    return frozenset(out)


TRANSITIONS: dict[tuple[State, str], tuple[State, frozenset[str]]] = {
    (State.DRAFT, "submit"): (State.SUBMITTED, _roles(SENDERS)),
    (State.SUBMITTED, "triage"): (State.TRIAGED, _roles(COORDINATOR, SYSTEM)),
    (State.TRIAGED, "offer"): (State.OFFERED, _roles(COORDINATOR, SYSTEM)),
    (State.DECLINED, "offer"): (State.OFFERED, _roles(COORDINATOR, SYSTEM)),
    (State.REDIRECTED, "offer"): (State.OFFERED, _roles(COORDINATOR, SYSTEM)),
    (State.OFFERED, "accept"): (State.ACCEPTED, _roles(RECEIVERS)),
    (State.OFFERED, "decline"): (State.DECLINED, _roles(RECEIVERS)),
    (State.OFFERED, "redirect"): (State.REDIRECTED, _roles(RECEIVERS, COORDINATOR)),
    (State.ACCEPTED, "book"): (State.BOOKED, _roles(RECEIVERS, COORDINATOR, SYSTEM)),
    (State.BOOKED, "arrive"): (State.ARRIVED, _roles(RECEIVERS)),
    (State.ARRIVED, "start_treatment"): (State.IN_TREATMENT, _roles(RECEIVERS)),
    (State.IN_TREATMENT, "discharge"): (State.DISCHARGED, _roles(RECEIVERS)),
    (State.DISCHARGED, "down_refer"): (State.DOWN_REFERRED, _roles(RECEIVERS)),
    (State.DOWN_REFERRED, "follow_up"): (State.FOLLOWED_UP, _roles(FAMILY_DOCTORS)),
    (State.FOLLOWED_UP, "close"): (State.CLOSED, _roles(FAMILY_DOCTORS, COORDINATOR)),
}

# Open states may be cancelled by the sender or the referral centre, and expire when their SLA runs out unanswered.
OPEN_BEFORE_ARRIVAL = (
    State.DRAFT,
    State.SUBMITTED,
    State.TRIAGED,
    State.OFFERED,
    State.DECLINED,
    State.REDIRECTED,
    State.ACCEPTED,
    State.BOOKED,
)
for _state in OPEN_BEFORE_ARRIVAL:
    TRANSITIONS[(_state, "cancel")] = (State.CANCELLED, _roles(SENDERS, COORDINATOR))
    if _state is not State.DRAFT:
        TRANSITIONS[(_state, "expire")] = (State.EXPIRED, _roles(SYSTEM))

FINAL = frozenset({State.CLOSED, State.CANCELLED, State.EXPIRED})


class IllegalStep(Exception):
    def __init__(self, state: State, action: str, allowed: list[str]):
        super().__init__(
            f"cannot {action} a referral that is {state.value}; allowed next steps: {', '.join(allowed) or 'none'}"
        )
        self.state, self.action, self.allowed = state, action, allowed


def next_actions(state: State, role: str) -> list[str]:
    return [action for (s, action), (_, roles) in TRANSITIONS.items() if s == state and role in roles]


def step(state: State, action: str, role: str) -> State:
    """The state after `action` by `role`, or IllegalStep listing what this role may do now."""
    entry = TRANSITIONS.get((state, action))
    if entry is None or role not in entry[1]:
        raise IllegalStep(state, action, next_actions(state, role))
    return entry[0]
