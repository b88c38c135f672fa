"""Scope rules are pure: every case is a plain value in, a decision out."""

from __future__ import annotations

import uuid

from yilian.security.actor import Actor
from yilian.security.roles import Role
from yilian.security.scope import (
    FacilityFacts,
    PatientFacts,
    can_change_consortium,
    can_change_facility,
    can_read_patient,
    division_prefix,
    in_jurisdiction,
)

CLINIC, CENTRE, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
COUNTY_GROUP, OTHER_GROUP = uuid.uuid4(), uuid.uuid4()


def doctor(facility: uuid.UUID = CLINIC, consortia: frozenset[uuid.UUID] = frozenset({COUNTY_GROUP})) -> Actor:
    return Actor(
        user_id=uuid.uuid4(), username="d", role=Role.VILLAGE_DOCTOR, facility_id=facility, consortium_ids=consortia
    )


def official(code: str) -> Actor:
    return Actor(user_id=uuid.uuid4(), username="o", role=Role.COMMISSION_OFFICIAL, division_code=code)


def patient(restricted: bool = False, where: uuid.UUID = CENTRE, group: uuid.UUID = COUNTY_GROUP) -> PatientFacts:
    return PatientFacts(
        facility_ids=frozenset({where}),
        consortium_ids=frozenset({group}),
        division_codes=frozenset({"141002100"}),
        share_outside_consortium=not restricted,
    )


def test_it_lets_a_city_official_see_every_township_of_the_city_but_not_the_next_city() -> None:
    linfen = official("1410")
    assert in_jurisdiction(linfen, "141002100")
    assert in_jurisdiction(linfen, "141002")
    assert not in_jurisdiction(linfen, "140105")
    assert division_prefix(linfen) == "1410"


def test_it_reads_padded_gb2260_codes_as_their_meaningful_prefix() -> None:
    assert in_jurisdiction(official("141000"), "141081203")
    assert in_jurisdiction(official("140000"), "140105001")
    assert not in_jurisdiction(official("141000"), "140105001")


def test_it_lets_a_doctor_read_records_written_in_the_own_consortium() -> None:
    decision = can_read_patient(doctor(), patient())
    assert decision.allowed and not decision.needs_break_glass


def test_it_asks_for_break_glass_outside_the_consortium_when_the_patient_restricted_sharing() -> None:
    outsider = doctor(facility=OTHER, consortia=frozenset({OTHER_GROUP}))
    assert can_read_patient(outsider, patient(restricted=False)).allowed
    decision = can_read_patient(outsider, patient(restricted=True))
    assert not decision.allowed and decision.needs_break_glass


def test_it_keeps_consortium_members_reading_even_when_sharing_is_restricted() -> None:
    assert can_read_patient(doctor(), patient(restricted=True)).allowed


def test_it_never_lets_an_insurer_read_a_person_silently() -> None:
    insurer = Actor(user_id=uuid.uuid4(), username="i", role=Role.INSURANCE_OFFICER, division_code="1410")
    decision = can_read_patient(insurer, patient())
    assert not decision.allowed and decision.needs_break_glass
    far = Actor(user_id=uuid.uuid4(), username="i", role=Role.INSURANCE_OFFICER, division_code="1401")
    assert not can_read_patient(far, patient()).needs_break_glass


def test_it_lets_only_admins_officials_in_jurisdiction_and_consortium_admins_change_facilities() -> None:
    facility = FacilityFacts(id=CENTRE, division_code="141002100", consortium_ids=frozenset({COUNTY_GROUP}))
    admin = Actor(user_id=None, username="a", role=Role.SYSTEM_ADMIN)
    group_admin = Actor(
        user_id=None, username="c", role=Role.CONSORTIUM_ADMIN, consortium_ids=frozenset({COUNTY_GROUP})
    )
    assert can_change_facility(admin, facility)
    assert can_change_facility(official("1410"), facility)
    assert not can_change_facility(official("1401"), facility)
    assert can_change_facility(group_admin, facility)
    assert not can_change_facility(doctor(), facility)
    assert can_change_consortium(group_admin, COUNTY_GROUP, "141002")
    assert not can_change_consortium(group_admin, OTHER_GROUP, "141002")
