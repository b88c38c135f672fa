"""Outreach and diagnostics KPIs, and the function-guide coverage matrix, on the hand-built region of conftest.py."""

from __future__ import annotations

from typing import Any

from yilian.indicators import service
from yilian.indicators.engine import Engine

A, B = "141021", "141022"


def results(ind: Engine, set_id: str, period: str = "2026") -> dict[tuple[str, str], Any]:
    return {(r.id, r.scope): r for r in service.compute(ind, set_id, period, "1410").results}


def test_it_counts_expert_clinics_bookings_and_no_shows_at_the_receiving_county(ind: Engine) -> None:
    r = results(ind, "outreach")
    # A-T1: cd1 + cd2 held (cd3 called off); 30 + 15 of 2 × 30 numbers booked
    assert r["out.clinic_days", A].value == 2 and r["out.clinic_days", B].value == 1
    assert r["out.clinic_bookings", A].value == 45
    assert (r["out.clinic_fill_rate", A].numerator, r["out.clinic_fill_rate", A].denominator) == (45, 60)
    assert r["out.clinic_fill_rate", A].value == 75.0 and r["out.clinic_fill_rate", B].value == 50.0
    # missed 4 + 2 of (26 + 4) + (10 + 2) numbers whose day is over; B: none missed, a real 0
    assert r["out.no_show_rate", A].value == 14.2857 and r["out.no_show_rate", B].value == 0.0


def test_it_counts_days_on_site_operations_and_teaching(ind: Engine) -> None:
    r = results(ind, "outreach")
    assert r["out.expert_days_on_site", A].value == 3  # the December 2025 check-in is outside 2026
    assert r["out.surgeries", A].value == 2  # a1 surgery + a3 mentored surgery
    assert r["out.teaching_sessions", A].value == 2  # a2 lecture + a3 mentored surgery
    assert r["out.staff_trained", A].value == 28  # 25 + 3 attendees
    assert (r["out.surgeries", B].value, r["out.surgeries", B].status) == (0, "partial")


def test_it_measures_the_reading_centres_from_the_orders_sent_to_them(ind: Engine) -> None:
    r = results(ind, "diagnostics")
    assert r["dx.orders_from_primary", A].value == 3  # o1, o2, o3; o4 cancelled, o5 from the county hospital
    assert r["dx.order_turnaround_hours", A].value == 24.0  # median of 12, 30, 24 hours
    assert (r["dx.reported_share", A].numerator, r["dx.reported_share", A].denominator) == (3, 4)
    # B sent nothing: no median (null, not 0) and a zero denominator for the share
    assert r["dx.order_turnaround_hours", B].value is None
    assert r["dx.reported_share", B].status == "zero_denominator"
    assert r["dx.reports_for_primary", A].value == 2  # o1 and o2 reported; o5 was ordered by the county hospital
    assert r["dx.recognition_rate", A].value == 33.3333  # o1 carries the HR mark, of o1, o2, o5 reported


def test_it_counts_tests_avoided_by_recognition_and_what_they_would_have_cost(ind: Engine) -> None:
    r = results(ind, "diagnostics")
    assert r["dx.tests_avoided", A].value == 2
    assert r["dx.cost_avoided", A].value == 200.0  # 120 + 80 yuan
    assert r["dx.reuse_rate", A].value == 66.6667  # 2 reused of 3 decisions
    assert r["dx.reuse_rate", B].value == 0.0  # B repeated its one test: a real 0
    assert r["dx.teleconsultations", A].value == 3
    assert r["dx.teleconsultation_response_hours", A].value == 14.0  # median of 4 and 24; t3 unanswered


def test_the_function_matrix_tells_used_from_not_used_from_not_recorded(ind: Engine) -> None:
    m = service.function_coverage(ind, "2026", "1410")
    assert m["total"] == 36 and len(m["functions"]) == 36
    cells = {f["id"]: f["cells"] for f in m["functions"]}
    assert cells["fn.imaging_centre"][A] == {
        "state": "used",
        "count": 2.0,
        "note": "no data for diagnostic_order since 2026-04-01",
    }
    assert cells["fn.imaging_centre"][B]["state"] == "not_used"  # orders are recorded, B sent none
    assert cells["fn.expert_ward_rounds"][A]["state"] == "not_used"
    assert cells["fn.expert_ward_rounds"][B]["state"] == "used"
    # no domain records family-doctor contracts; green-channel priority is not in this snapshot's referrals
    assert cells["fn.family_doctor"][A]["state"] == "no_data"
    assert cells["fn.emergency_centres"][A]["note"] == "no data: referral.priority is not recorded"
    summary = {s["scope"]: (s["used"], s["not_used"], s["no_data"]) for s in m["scopes"]}
    assert summary == {A: (15, 1, 20), B: (7, 9, 20)}


def test_imaging_and_ecg_coverage_count_the_primary_units_that_sent_orders_to_the_county_centre(ind: Engine) -> None:
    r = results(ind, "county-community")
    # A's townships A-T1 (imaging o1) and A-T2 (lab only): 1 of 2; the village clinic A-V1 sent an ECG (o2)
    assert (r["cc.imaging_primary_coverage", A].numerator, r["cc.imaging_primary_coverage", A].denominator) == (1, 2)
    assert r["cc.imaging_primary_coverage", A].value == 50.0 and r["cc.ecg_primary_coverage", A].value == 0.0
    assert r["cc.village_ecg_coverage", A].value == 100.0
    assert r["cc.imaging_primary_coverage", B].value == 0.0  # B-T1 sent nothing: a real 0
    assert r["cc.village_ecg_coverage", B].status == "zero_denominator"  # B has no village clinic
