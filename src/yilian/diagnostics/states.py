"""Allowed transitions of a diagnostic order and of a teleconsultation, as tables.

Parties rather than roles: what someone may do to an order depends on which side of it their facility is — the site
that ordered it, or the centre that reads it. Everything not listed is illegal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from yilian.errors import Conflict, Forbidden

S = TypeVar("S", bound=StrEnum)


class OrderState(StrEnum):
    ORDERED = "ordered"  # waiting for the study, sample or tracing
    RECEIVED = "received"  # the data arrived at the centre: on the reader's worklist
    REPORTED = "reported"  # read and signed: a final DiagnosticReport
    CANCELLED = "cancelled"


class Party(StrEnum):
    ORDERING_SITE = "ordering_site"
    CENTRE = "centre"
    EXPERT = "expert"  # an expert assigned to a teleconsultation


ORDER_TRANSITIONS: dict[tuple[OrderState, str], tuple[OrderState, frozenset[Party]]] = {
    (OrderState.ORDERED, "receive"): (OrderState.RECEIVED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
    # A second file (another view, a corrected tracing) may be added until the report is signed.
    (OrderState.RECEIVED, "receive"): (OrderState.RECEIVED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
    (OrderState.RECEIVED, "sign"): (OrderState.REPORTED, frozenset({Party.CENTRE})),
    # A reader takes an item from the centre's worklist (or gives it back) so that two never read the same study.
    (OrderState.ORDERED, "claim"): (OrderState.ORDERED, frozenset({Party.CENTRE})),
    (OrderState.RECEIVED, "claim"): (OrderState.RECEIVED, frozenset({Party.CENTRE})),
    (OrderState.ORDERED, "release"): (OrderState.ORDERED, frozenset({Party.CENTRE})),
    (OrderState.RECEIVED, "release"): (OrderState.RECEIVED, frozenset({Party.CENTRE})),
    # A signed report is corrected by a new version (status amended); the earlier one is kept.
    (OrderState.REPORTED, "amend"): (OrderState.REPORTED, frozenset({Party.CENTRE})),
    (OrderState.ORDERED, "cancel"): (OrderState.CANCELLED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
    (OrderState.RECEIVED, "cancel"): (OrderState.CANCELLED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
}


class ConsultState(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


CONSULT_TRANSITIONS: dict[tuple[ConsultState, str], tuple[ConsultState, frozenset[Party]]] = {
    (ConsultState.REQUESTED, "schedule"): (ConsultState.SCHEDULED, frozenset({Party.CENTRE})),
    (ConsultState.SCHEDULED, "schedule"): (ConsultState.SCHEDULED, frozenset({Party.CENTRE})),
    (ConsultState.SCHEDULED, "answer"): (ConsultState.ANSWERED, frozenset({Party.EXPERT})),
    (ConsultState.REQUESTED, "cancel"): (ConsultState.CANCELLED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
    (ConsultState.SCHEDULED, "cancel"): (ConsultState.CANCELLED, frozenset({Party.ORDERING_SITE, Party.CENTRE})),
}


def _next(
    table: dict[tuple[S, str], tuple[S, frozenset[Party]]], kind: str, state: S, action: str, parties: frozenset[Party]
) -> S:
    entry = table.get((state, action))
    if entry is None:
        raise Conflict(f"{kind} that is {state} cannot be {_past(action)}", field="state")
    target, allowed = entry
    if not parties & allowed:
        sides = " or ".join(sorted(p.replace("_", " ") for p in allowed))
        raise Forbidden(f"only the {sides} may {action} this {kind.split()[-1]}")
    return target


def next_order_state(state: str, action: str, parties: frozenset[Party]) -> OrderState:
    """The state after `action`, or Conflict (not allowed in this state) / Forbidden (not your side of the order)."""
    return _next(ORDER_TRANSITIONS, "an order", OrderState(state), action, parties)


def next_consult_state(state: str, action: str, parties: frozenset[Party]) -> ConsultState:
    return _next(CONSULT_TRANSITIONS, "a consultation", ConsultState(state), action, parties)


def order_actions(state: str, parties: frozenset[Party]) -> list[str]:
    return [a for (s, a), (_, allowed) in ORDER_TRANSITIONS.items() if s == state and parties & allowed]


def consult_actions(state: str, parties: frozenset[Party]) -> list[str]:
    return [a for (s, a), (_, allowed) in CONSULT_TRANSITIONS.items() if s == state and parties & allowed]


def _past(action: str) -> str:
    return {
        "receive": "given a study",
        "sign": "signed",
        "cancel": "cancelled",
        "schedule": "scheduled",
        "answer": "answered",
        "claim": "claimed",
        "release": "released",
        "amend": "amended",
    }.get(action, action)
