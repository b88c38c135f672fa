"""The function-guide matrix: the 36 functions of the 2025 guide in DOMAIN.md's 5 classes, each "used" only from
recorded activity, on a tiny region whose every cell is counted by hand below."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from yilian.indicators import definitions, service, snapshot
from yilian.indicators.engine import Engine

A, B = "141021", "141022"

# DOMAIN.md "The 2025 function guide for county medical communities (5 classes, 36 functions)": every function it
# names, by class. The regional class is a closed list there (no "…"); the others end with "…" and are filled up to
# 36 by items of ours.
NAMED = {
    "fg_regional": {
        "fn.imaging_centre",
        "fn.ecg_centre",
        "fn.lab_centre",
        "fn.pathology_centre",
        "fn.remote_consultation",
        "fn.sterile_supply",
        "fn.emergency_centres",
    },
    "fg_convenience": {
        "fn.appointments",
        "fn.two_way_referral",
        "fn.family_doctor",
        "fn.result_recognition",
        "fn.one_stop_settlement",
        "fn.long_prescriptions",
        "fn.record_access",
    },
    "fg_management": {"fn.quality_control", "fn.prescription_review", "fn.infection_control"},
    "fg_public_health": {
        "fn.chronic_disease",
        "fn.maternal_child",
        "fn.elderly",
        "fn.vaccination",
        "fn.health_education",
        "fn.surveillance",
    },
    "fg_primary": {
        "fn.operations_dashboard",
        "fn.staff_deployment",  # DOMAIN.md: HR
        "fn.finance",
        "fn.drug_supply",
        "fn.performance",
        "fn.medical_waste",
    },
}


def test_the_guide_has_36_functions_in_domain_md_s_5_classes() -> None:
    guide = definitions.get_set("function-guide")
    by_class: dict[str, set[str]] = {}
    for ind in guide.indicators:
        by_class.setdefault(ind.aspect, set()).add(ind.id)
    assert len(guide.indicators) == 36 and len({i.id for i in guide.indicators}) == 36
    assert set(by_class) == set(NAMED)
    for cls, named in NAMED.items():
        assert named <= by_class[cls], f"{cls}: {named - by_class[cls]} missing or in another class"
    assert by_class["fg_regional"] == NAMED["fg_regional"]  # the closed list: nothing of ours added to it
    assert {c: len(v) for c, v in by_class.items()} == {
        "fg_regional": 7,
        "fg_convenience": 9,
        "fg_management": 7,
        "fg_public_health": 7,
        "fg_primary": 6,
    }
    # the classes listed together, in DOMAIN.md's order (the matrix page groups its rows by class)
    order = [i.aspect for i in guide.indicators]
    assert [c for n, c in enumerate(order) if n == 0 or order[n - 1] != c] == list(NAMED)


def test_used_comes_from_recorded_activity_never_from_a_checkbox() -> None:
    for ind in definitions.get_set("function-guide").indicators:
        assert not ind.assessment, ind.id
        assert ind.unit == "count" and ind.denominator is None, ind.id
        # a count of activity rows, or a function whose activity nothing records (always "no data")
        assert ind.unrecorded == (ind.numerator is None), ind.id
        assert ind.numerator is None or ind.numerator.table != "assessment", ind.id


def _region() -> dict[str, list[dict[str, Any]]]:
    facilities = [
        ("A-CH", "A县人民医院", "county_hospital", "141021"),
        ("A-T1", "A县甲镇卫生院", "township_centre", "141021100"),
        ("B-CH", "B县人民医院", "county_hospital", "141022"),
        ("B-T1", "B县乙镇卫生院", "township_centre", "141022100"),
    ]
    return {
        "division": [
            {"code": "1410", "name": "临汾市", "level": "city", "parent_code": "14"},
            {"code": A, "name": "A县", "level": "county", "parent_code": "1410", "population": 20000},
            {"code": B, "name": "B县", "level": "county", "parent_code": "1410", "population": 10000},
        ],
        "facility": [
            {"id": i, "code": i, "name": n, "level": lv, "kind": "general", "division_code": d, "county_code": d[:6]}
            for i, n, lv, d in facilities
        ],
        "consortium": [
            {"id": f"c-{c}", "name": f"{c}医共体", "form": "county_medical_community", "division_code": c}
            for c in (A, B)
        ],
        "consortium_member": [
            {"consortium_id": f"c-{f[3][:6]}", "facility_id": f[0], "role": "member"} for f in facilities
        ],
        # A asked for two teleconsultations in 2026, B for none (and one in 2025, outside the period)
        "teleconsultation": [
            {"id": "t1", "facility_id": "A-T1", "centre_facility_id": "A-CH", "requested_at": datetime(2026, 3, 1, 9)},
            {
                "id": "t2",
                "facility_id": "A-CH",
                "centre_facility_id": "A-CH",
                "requested_at": datetime(2026, 11, 23, 7),
            },
            {"id": "t3", "facility_id": "B-T1", "centre_facility_id": "B-CH", "requested_at": datetime(2025, 12, 1, 9)},
        ],
        # B referred one patient up on the green channel; A's only referral is routine
        "referral": [
            {
                "id": "r1",
                "direction": "up",
                "from_facility_id": "A-T1",
                "to_facility_id": "A-CH",
                "priority": "routine",
                "submitted_at": datetime(2026, 5, 1, 9),
            },
            {
                "id": "r2",
                "direction": "up",
                "from_facility_id": "B-T1",
                "to_facility_id": "B-CH",
                "priority": "stat",
                "submitted_at": datetime(2026, 11, 23, 7),
            },
        ],
        # one doctor of A's hospital posted to A's township for the whole year (B receives nobody)
        "posting": [
            {
                "practitioner_id": "p1",
                "title": "attending",
                "home_facility_id": "A-CH",
                "facility_id": "A-T1",
                "start": date(2026, 1, 1),
                "end": date(2026, 12, 31),
            }
        ],
        # no claims, deaths, outreach, diagnostics orders … are recorded in this region at all
    }


def test_a_function_with_activity_is_used_one_without_is_not_and_one_without_a_source_says_no_data(
    tmp_path: Path,
) -> None:
    snap = snapshot.write(_region(), tmp_path / "indicators", now=datetime(2026, 11, 23, 8))  # type: ignore[arg-type]
    m = service.function_coverage(Engine(snap), "2026", "1410")
    cells = {f["id"]: f["cells"] for f in m["functions"]}

    assert cells["fn.remote_consultation"][A] == {"state": "used", "count": 2.0, "note": None}
    assert cells["fn.remote_consultation"][B] == {"state": "not_used", "count": 0.0, "note": None}  # t3 is 2025
    assert cells["fn.emergency_centres"][A]["state"] == "not_used"  # a routine referral is not the green channel
    assert cells["fn.emergency_centres"][B] == {"state": "used", "count": 1.0, "note": None}
    assert cells["fn.two_way_referral"][A]["count"] == 1.0 and cells["fn.two_way_referral"][B]["count"] == 1.0
    assert cells["fn.staff_deployment"][A]["state"] == "used"  # counted where the doctor works: A's township
    assert cells["fn.staff_deployment"][B] == {"state": "not_used", "count": 0.0, "note": None}
    # the region records no claims: "no data", never "not used", in either county
    for county in (A, B):
        assert cells["fn.one_stop_settlement"][county] == {
            "state": "no_data",
            "count": None,
            "note": "no data: claim is not recorded yet",
        }
        assert cells["fn.sterile_supply"][county]["state"] == "no_data"  # no domain records it anywhere
        assert cells["fn.imaging_centre"][county]["state"] == "no_data"  # no diagnostic orders recorded here
    # what counts as using each function, as the page shows it under the function's name
    evidence = {f["id"]: f["evidence"] for f in m["functions"]}
    assert evidence["fn.emergency_centres"] == "referral: priority = stat"
    assert evidence["fn.expert_clinics"] == "outreach_clinic_day: status ≠ cancelled"
    assert evidence["fn.results_at_primary"] == (
        "diagnostic_order: facility_level ∈ {township_centre, village_clinic} · reported_at ≠ ∅"
    )
    assert evidence["fn.sterile_supply"] is None
    summary = {s["scope"]: (s["used"], s["not_used"], s["no_data"]) for s in m["scopes"]}
    # recorded here: teleconsultation (2 functions read referrals: emergency, two-way), postings → 4 answerable
    assert summary == {A: (3, 1, 32), B: (2, 2, 32)}


def test_a_period_before_anything_was_recorded_says_no_data_not_unused(tmp_path: Path) -> None:
    snap = snapshot.write(_region(), tmp_path / "indicators", now=datetime(2026, 11, 23, 8))  # type: ignore[arg-type]
    m = service.function_coverage(Engine(snap), "2024", "1410")
    cells = {f["id"]: f["cells"] for f in m["functions"]}
    assert cells["fn.remote_consultation"][A]["state"] == "no_data"  # teleconsultations start in December 2025
    assert cells["fn.two_way_referral"][B]["state"] == "no_data"
