from __future__ import annotations

import pytest

from yilian.referrals.catalogue import load_criteria
from yilian.referrals.rules import ClinicalFacts, CriteriaError, Observation, parse_criteria
from yilian.referrals.rules import matching_criteria as _matching


def matching_criteria(facts: ClinicalFacts, direction: str):  # type: ignore[no-untyped-def]
    return _matching(facts, load_criteria(), direction)


SYS, DIA, HBA1C = "8480-6", "8462-4", "4548-4"


def bp(systolic: float, diastolic: float) -> tuple[Observation, ...]:
    return (
        Observation(SYS, systolic, "mmHg", ref="Observation/s"),
        Observation(DIA, diastolic, "mmHg", ref="Observation/d"),
    )


def test_it_ships_up_and_down_criteria_for_every_chronic_condition_with_a_source() -> None:
    criteria = load_criteria()
    for condition in ("hypertension", "type-2 diabetes", "COPD", "coronary heart disease", "stroke"):
        directions = {c.direction for c in criteria if c.condition == condition}
        assert directions == {"up", "down"}, condition
    assert all(c.source for c in criteria)
    assert any(c.id == "beyond-capability" for c in criteria)


def test_it_flags_a_hypertensive_patient_at_186_over_114_for_up_referral_with_the_reading() -> None:
    facts = ClinicalFacts(conditions=frozenset({"I10"}), observations=bp(186, 114))
    matches = matching_criteria(facts, direction="up")
    assert [m.criterion.id for m in matches] == ["htn-up-severe"]
    assert "8480-6 = 186 mmHg >= 180" in matches[0].evidence
    assert {o.ref for o in matches[0].observations} == {"Observation/s", "Observation/d"}


def test_it_does_not_refer_a_controlled_patient_up_but_proposes_down_referral() -> None:
    facts = ClinicalFacts(
        conditions=frozenset({"I10"}), observations=bp(128, 82), flags=frozenset({"regimen_set", "controlled_2_weeks"})
    )
    assert matching_criteria(facts, direction="up") == []
    assert [m.criterion.id for m in matching_criteria(facts, direction="down")] == ["htn-down-controlled"]


def test_it_puts_green_channel_emergencies_first() -> None:
    facts = ClinicalFacts(
        conditions=frozenset({"I10", "I25.1"}), observations=bp(190, 100), flags=frozenset({"suspected_mi"})
    )
    matches = matching_criteria(facts, direction="up")
    assert matches[0].criterion.urgency == "emergency"
    assert matches[0].criterion.green_channel == "chest_pain"


def test_it_uses_the_latest_reading_not_an_old_one() -> None:
    from datetime import UTC, datetime

    old = Observation(HBA1C, 9.1, "%", at=datetime(2026, 1, 1, tzinfo=UTC))
    new = Observation(HBA1C, 6.4, "%", at=datetime(2026, 6, 1, tzinfo=UTC))
    facts = ClinicalFacts(
        conditions=frozenset({"E11.9"}), observations=(old, new), flags=frozenset({"treated_3_months"})
    )
    assert matching_criteria(facts, direction="up") == []


def test_it_refers_up_what_the_facility_cannot_do() -> None:
    facts = ClinicalFacts(
        conditions=frozenset({"K80.1"}),
        facility_services=frozenset({"general_practice", "chronic_disease"}),
        needed_services=frozenset({"general_surgery"}),
    )
    [match] = matching_criteria(facts, direction="up")
    assert match.criterion.id == "beyond-capability"
    assert "general_surgery" in match.evidence[0]


def test_it_refuses_a_malformed_criteria_file_naming_the_criterion() -> None:
    doc = {
        "criteria": [
            {
                "id": "x1",
                "condition": "c",
                "direction": "sideways",
                "urgency": "routine",
                "name": {"zh": "z", "en": "e"},
                "when": {"flag": "f"},
                "source": "s",
            }
        ]
    }
    with pytest.raises(CriteriaError, match="x1"):
        parse_criteria(doc)
    doc["criteria"][0]["direction"] = "up"
    doc["criteria"][0]["when"] = {"obs": {"code": "1", "op": "~", "value": 1}}
    with pytest.raises(CriteriaError, match="obs needs"):
        parse_criteria(doc)
