"""Pure decisions: transitions as tables, upload checks, critical values, turnaround targets, recognition scope."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from yilian.diagnostics import catalogue, limits, rules
from yilian.diagnostics.rules import PlaceFacts, PriorResult
from yilian.diagnostics.states import (
    CONSULT_TRANSITIONS,
    ORDER_TRANSITIONS,
    ConsultState,
    OrderState,
    Party,
    next_consult_state,
    next_order_state,
)
from yilian.errors import Conflict, Forbidden, Invalid

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ACTIONS = ("receive", "sign", "cancel", "schedule", "answer", "close")
SIDES = [frozenset({p}) for p in Party] + [frozenset()]


def test_it_allows_exactly_the_order_transitions_in_the_table() -> None:
    for state, action, sides in itertools.product(OrderState, ACTIONS, SIDES):
        entry = ORDER_TRANSITIONS.get((state, action))
        if entry is None:
            with pytest.raises(Conflict):
                next_order_state(state, action, sides)
        elif not sides & entry[1]:
            with pytest.raises(Forbidden):
                next_order_state(state, action, sides)
        else:
            assert next_order_state(state, action, sides) == entry[0]


def test_it_allows_exactly_the_consultation_transitions_in_the_table() -> None:
    for state, action, sides in itertools.product(ConsultState, ACTIONS, SIDES):
        entry = CONSULT_TRANSITIONS.get((state, action))
        if entry is None:
            with pytest.raises(Conflict):
                next_consult_state(state, action, sides)
        elif not sides & entry[1]:
            with pytest.raises(Forbidden):
                next_consult_state(state, action, sides)
        else:
            assert next_consult_state(state, action, sides) == entry[0]


def test_it_never_lets_the_ordering_site_sign_its_own_study() -> None:
    assert Party.ORDERING_SITE not in ORDER_TRANSITIONS[(OrderState.RECEIVED, "sign")][1]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7 ...", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0....", "image/jpeg"),
        (b"\x00" * 128 + b"DICM....", "application/dicom"),
        (b'\xef\xbb\xbf<?xml version="1.0"?><AnnotatedECG>', "application/xml"),
        (b"MZ\x90\x00", None),
        (b"", None),
    ],
)
def test_it_tells_a_file_by_its_first_bytes(head: bytes, kind: str | None) -> None:
    assert rules.sniff(head) == kind


def test_it_refuses_uploads_a_reader_could_not_open() -> None:
    assert rules.check_upload("imaging", b"\x00" * 128 + b"DICM", 1000, 10_000) == "application/dicom"
    with pytest.raises(Invalid, match="PDF") as e:
        rules.check_upload("lab", b"\x89PNG\r\n\x1a\n", 1000, 10_000)
    assert e.value.field == "file"
    with pytest.raises(Invalid, match="larger"):
        rules.check_upload("ecg", b"%PDF-", 10_001, 10_000)
    with pytest.raises(Invalid, match="empty"):
        rules.check_upload("ecg", b"", 0, 10_000)


def test_it_flags_critical_values_in_plain_words() -> None:
    values = rules.parse_measurements({"heart_rate": "35", "qtc": 450, "potassium": 6.8})
    measures = limits.defaults().measures
    assert rules.critical_values(values, measures) == ["Heart rate 35 /min < 40", "Potassium 6.8 mmol/L > 6.2"]
    with pytest.raises(Invalid) as e:
        rules.parse_measurements({"mood": 3})
    assert e.value.field == "measurements.mood"
    with pytest.raises(Invalid):
        rules.parse_measurements({"qtc": "nan"})


def test_it_reads_stat_ecgs_within_minutes_and_routine_ct_within_a_day() -> None:
    targets = limits.defaults().targets
    assert rules.due_at(T0, "ecg", "stat", targets) == T0 + timedelta(minutes=10)
    assert rules.due_at(T0, "imaging", "routine", targets) == T0 + timedelta(hours=24)
    assert rules.is_overdue(T0, None, "ecg", "stat", T0 + timedelta(minutes=11), targets)
    assert not rules.is_overdue(T0, T0 + timedelta(hours=1), "ecg", "stat", T0 + timedelta(hours=2), targets)
    assert not rules.is_overdue(None, None, "ecg", "stat", T0 + timedelta(days=9), targets)


def test_a_region_sets_its_own_limits_and_validity_windows_in_yaml() -> None:
    linfen, shanxi, elsewhere = limits.for_division("141002"), limits.for_division("1401"), limits.for_division("11")
    # Linfen's network reads urgent ECGs in 20 minutes and calls potassium critical from 6.0; Shanxi keeps the default.
    assert linfen.targets[(rules.Modality.ECG, rules.Priority.URGENT)] == timedelta(minutes=20)
    assert shanxi.targets[(rules.Modality.ECG, rules.Priority.URGENT)] == timedelta(minutes=30)
    assert rules.critical_values({"potassium": 6.1}, linfen.measures) == ["Potassium 6.1 mmol/L > 6"]
    assert rules.critical_values({"potassium": 6.1}, shanxi.measures) == []
    # The province shortens the blood count's window from the catalogue's 7 days to 3; Beijing keeps 7.
    cbc = catalogue.get("LAB-CBC")
    assert linfen.item(cbc).validity_days == 3 and elsewhere.item(cbc).validity_days == 7
    assert all(source for source in linfen.sources)


def test_it_puts_arrived_urgent_work_before_routine_and_awaited_work_last() -> None:
    items = [
        rules.WorkItem("routine", T0, T0),
        rules.WorkItem("stat", None, T0),
        rules.WorkItem("urgent", T0 + timedelta(minutes=5), T0),
        rules.WorkItem("routine", T0 - timedelta(minutes=5), T0),
    ]
    ordered = sorted(items, key=rules.worklist_key)
    assert [(i.priority, i.received_at is None) for i in ordered] == [
        ("urgent", False), ("routine", False), ("routine", False), ("stat", True),
    ]  # fmt: skip
    assert ordered[1].received_at == T0 - timedelta(minutes=5)


def test_it_summarises_turnaround_with_median_and_90th_percentile() -> None:
    t = rules.turnaround(timedelta(minutes=m) for m in (10, 20, 30, 40, 100))
    assert (t.count, t.median_minutes, t.p90_minutes) == (5, 30.0, 100.0)
    assert rules.turnaround([]).median_minutes is None


def place(fid: str, division: str, *consortia: str) -> PlaceFacts:
    return PlaceFacts(fid, division, frozenset(consortia))


def prior(days_ago: int, performer: PlaceFacts, code: str = "LAB-LFT", qualified: bool = True) -> PriorResult:
    when = T0 - timedelta(days=days_ago)
    return PriorResult(uuid.uuid4(), code, when, performer, (when + timedelta(days=300)).date() if qualified else None)


def test_it_recognises_the_newest_valid_result_from_a_qualified_facility_in_scope() -> None:
    lft = catalogue.get("LAB-LFT")  # city scope, 14 days
    township = place("T", "141024100", "group-a")
    same_city = place("H2", "141023", "group-b")
    other_city = place("H9", "140105", "group-c")
    newest = prior(3, same_city)
    assert rules.recognised_result(lft, township, [prior(10, same_city), newest], T0) == newest
    assert rules.recognised_result(lft, township, [prior(15, same_city)], T0) is None  # expired
    assert rules.recognised_result(lft, township, [prior(3, other_city)], T0) is None  # out of scope
    assert rules.recognised_result(lft, township, [prior(3, same_city, qualified=False)], T0) is None
    assert rules.recognised_result(lft, township, [prior(3, same_city, code="LAB-RFT")], T0) is None
    ecg = catalogue.get("ECG-12")  # consortium scope
    assert rules.recognised_result(ecg, township, [prior(3, same_city, "ECG-12")], T0) is None
    assert rules.recognised_result(ecg, township, [prior(3, place("H1", "141024", "group-a"), "ECG-12")], T0)


def test_it_asks_for_one_of_the_six_reasons_and_that_the_patient_was_told() -> None:
    assert len(rules.RepeatReason) == 6
    assert rules.check_repeat("emergency", True) == rules.RepeatReason.EMERGENCY
    for reason, told, field in (
        (None, True, "repeat_reason"),
        ("whim", True, "repeat_reason"),
        ("other", False, "patient_informed"),
    ):
        with pytest.raises(Invalid) as e:
            rules.check_repeat(reason, told)
        assert e.value.field == field
    assert rules.repeat_rate(1, 3) == 0.25 and rules.repeat_rate(0, 0) is None


def test_it_needs_two_experts_for_a_multidisciplinary_consultation() -> None:
    rules.check_experts("consultation", ["zhou"])
    for kind, experts in (("mdt", ["zhou"]), ("consultation", []), ("ward_round", ["a", "a"])):
        with pytest.raises(Invalid) as e:
            rules.check_experts(kind, experts)
        assert e.value.field == "experts"
    assert rules.meeting_url("https://meet.example.org/yl-{id}", "abc") == "https://meet.example.org/yl-abc"
    assert rules.meeting_url("", "abc") is None
