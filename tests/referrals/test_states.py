"""The workflow table, walked exhaustively: only the table's entries succeed."""

from __future__ import annotations

import itertools

import pytest

from yilian.referrals.states import FINAL, SYSTEM, TRANSITIONS, IllegalStep, State, next_actions, step
from yilian.security.roles import Role

ACTIONS = sorted({a for _, a in TRANSITIONS})
ROLES = [str(r) for r in Role] + [SYSTEM]


def test_it_allows_exactly_the_steps_in_the_table_for_every_state_action_and_role() -> None:
    for state, action, role in itertools.product(State, ACTIONS, ROLES):
        entry = TRANSITIONS.get((state, action))
        if entry is not None and role in entry[1]:
            assert step(state, action, role) == entry[0]
        else:
            with pytest.raises(IllegalStep) as info:
                step(state, action, role)
            assert info.value.allowed == next_actions(state, role)


def test_it_walks_the_whole_up_and_down_loop_to_closed() -> None:
    path = [
        ("submit", Role.VILLAGE_DOCTOR),
        ("triage", Role.REFERRAL_COORDINATOR),
        ("offer", Role.REFERRAL_COORDINATOR),
        ("accept", Role.COUNTY_DOCTOR),
        ("book", Role.COUNTY_DOCTOR),
        ("arrive", Role.COUNTY_DOCTOR),
        ("start_treatment", Role.COUNTY_DOCTOR),
        ("discharge", Role.COUNTY_DOCTOR),
        ("down_refer", Role.COUNTY_DOCTOR),
        ("follow_up", Role.TOWNSHIP_DOCTOR),
        ("close", Role.TOWNSHIP_DOCTOR),
    ]
    state = State.DRAFT
    for action, role in path:
        state = step(state, action, str(role))
    assert state == State.CLOSED


def test_it_refuses_to_close_a_referral_that_was_never_followed_up_and_says_what_is_next() -> None:
    with pytest.raises(IllegalStep) as info:
        step(State.DISCHARGED, "close", str(Role.REFERRAL_COORDINATOR))
    assert "discharged" in str(info.value)
    assert next_actions(State.DISCHARGED, str(Role.COUNTY_DOCTOR)) == ["down_refer"]


def test_it_lets_nobody_leave_a_final_state() -> None:
    for state in FINAL:
        assert all(next_actions(state, role) == [] for role in ROLES)


def test_it_lets_the_referral_centre_offer_a_declined_referral_elsewhere() -> None:
    assert step(State.DECLINED, "offer", str(Role.REFERRAL_COORDINATOR)) == State.OFFERED
    assert step(State.OFFERED, "expire", SYSTEM) == State.EXPIRED
