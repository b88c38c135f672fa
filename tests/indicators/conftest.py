"""A small county region written straight into the snapshot format, every number in the tests checked by hand.

Two counties of Linfen: A (141021, 20,000 residents) and B (141022, 10,000), and C (141023) without census or
facilities; a national regional centre (140105) for the 2027 targets. See the comments on each row."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from yilian.indicators import snapshot
from yilian.indicators.engine import Engine

AS_OF = datetime(2026, 11, 23, 8, 0)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def region() -> dict[str, list[dict[str, Any]]]:
    fac = [
        ("A-CH", "A县人民医院", "county_hospital", "general", "141021"),
        ("A-TCM", "A县中医医院", "county_hospital", "tcm", "141021"),
        ("A-T1", "A县甲镇卫生院", "township_centre", "general", "141021100"),
        ("A-T2", "A县乙镇卫生院", "township_centre", "general", "141021101"),
        ("A-V1", "A县甲村卫生室", "village_clinic", "general", "141021100"),
        ("B-CH", "B县人民医院", "county_hospital", "general", "141022"),
        ("B-T1", "B县丙镇卫生院", "township_centre", "general", "141022100"),
        ("RC", "区域医疗中心", "national_regional_centre", "general", "140105"),
    ]
    return {
        "division": [
            {"code": "1410", "name": "临汾市", "level": "city", "parent_code": "14", "population": None},
            {
                "code": "141021",
                "name": "A县",
                "level": "county",
                "parent_code": "1410",
                "population": 20000,
                "lon": 111.47,
                "lat": 35.64,
            },
            {
                "code": "141022",
                "name": "B县",
                "level": "county",
                "parent_code": "1410",
                "population": 10000,
                "lon": 111.22,
                "lat": 35.85,
            },
            {"code": "141023", "name": "C县", "level": "county", "parent_code": "1410", "population": None},
            {"code": "140105", "name": "小店区", "level": "county", "parent_code": "1401", "population": 800000},
        ],
        "facility": [
            {"id": i, "code": i, "name": n, "level": lv, "kind": k, "division_code": d, "county_code": d[:6]}
            for i, n, lv, k, d in fac
        ],
        "consortium": [
            {
                "id": "00000000-0000-0000-0000-00000000000a",
                "name": "A县医共体",
                "form": "county_medical_community",
                "division_code": "141021",
                "lead_facility_id": "A-CH",
            },
            {
                "id": "00000000-0000-0000-0000-00000000000b",
                "name": "B县医共体",
                "form": "county_medical_community",
                "division_code": "141022",
                "lead_facility_id": "B-CH",
            },
        ],
        "consortium_member": [  # A's TCM hospital is not a member: the consortium differs from the county
            *(
                {"consortium_id": "00000000-0000-0000-0000-00000000000a", "facility_id": f}
                for f in ("A-CH", "A-T1", "A-T2", "A-V1")
            ),
            *({"consortium_id": "00000000-0000-0000-0000-00000000000b", "facility_id": f} for f in ("B-CH", "B-T1")),
        ],
        "patient": [
            {"id": "pa1", "division_code": "141021100"},
            {"id": "pa2", "division_code": "141021101"},
            {"id": "pb1", "division_code": "141022100"},
        ],
        "encounter": [
            {
                "id": "e1",
                "class_code": "AMB",
                "patient_id": "pa1",
                "facility_id": "A-T1",
                "period_start": ts("2026-03-05T09:00"),
            },
            {
                "id": "e2",
                "class_code": "AMB",
                "patient_id": "pa1",
                "facility_id": "A-V1",
                "period_start": ts("2026-03-20T09:00"),
            },
            {
                "id": "e3",
                "class_code": "AMB",
                "patient_id": "pa2",
                "facility_id": "A-CH",
                "period_start": ts("2026-04-02T09:00"),
            },
            # a B resident seen at A's TCM hospital: counts for A's visits, not for B's residents
            {
                "id": "e4",
                "class_code": "AMB",
                "patient_id": "pb1",
                "facility_id": "A-TCM",
                "period_start": ts("2026-04-10T09:00"),
            },
            {
                "id": "e5",
                "class_code": "EMER",
                "patient_id": "pa2",
                "facility_id": "A-T2",
                "period_start": ts("2026-06-01T22:00"),
            },
            {
                "id": "e6",
                "class_code": "IMP",
                "patient_id": "pa1",
                "facility_id": "A-CH",
                "period_start": ts("2026-03-10T10:00"),
                "period_end": ts("2026-03-15T10:00"),
            },
            # an A resident admitted in B: outside the county
            {
                "id": "e7",
                "class_code": "IMP",
                "patient_id": "pa2",
                "facility_id": "B-CH",
                "period_start": ts("2026-05-01T10:00"),
                "period_end": ts("2026-05-08T10:00"),
            },
            {
                "id": "e8",
                "class_code": "IMP",
                "patient_id": "pb1",
                "facility_id": "A-CH",
                "period_start": ts("2026-06-10T10:00"),
                "period_end": ts("2026-06-12T10:00"),
            },
            # New Year's Eve 2025, local time: not in 2026
            {
                "id": "e9",
                "class_code": "AMB",
                "patient_id": "pa1",
                "facility_id": "A-T1",
                "period_start": ts("2025-12-31T23:00"),
            },
        ],
        "claim": [
            {
                "id": "c1",
                "patient_id": "pa1",
                "facility_id": "A-CH",
                "setting": "inpatient",
                "total_fen": 1_000_000,
                "fund_paid_fen": 600_000,
                "settled_at": ts("2026-03-15T12:00"),
            },
            {
                "id": "c2",
                "patient_id": "pa2",
                "facility_id": "B-CH",
                "setting": "inpatient",
                "total_fen": 2_000_000,
                "fund_paid_fen": 1_400_000,
                "settled_at": ts("2026-05-08T12:00"),
            },
            {
                "id": "c3",
                "patient_id": "pa1",
                "facility_id": "A-T1",
                "setting": "outpatient",
                "total_fen": 10_000,
                "fund_paid_fen": 5_000,
                "settled_at": ts("2026-03-05T12:00"),
            },
            {
                "id": "c4",
                "patient_id": "pa1",
                "facility_id": None,
                "setting": "pharmacy",
                "total_fen": 4_000,
                "fund_paid_fen": 3_000,
                "settled_at": ts("2026-03-06T12:00"),
            },
            {
                "id": "c5",
                "patient_id": "pa1",
                "facility_id": "A-CH",
                "setting": "inpatient",
                "total_fen": 640_000,
                "fund_paid_fen": 500_000,
                "settled_at": ts("2025-04-01T12:00"),
            },
            {
                "id": "c6",
                "patient_id": "pb1",
                "facility_id": "A-CH",
                "setting": "inpatient",
                "total_fen": 600_000,
                "fund_paid_fen": 300_000,
                "settled_at": ts("2026-06-12T12:00"),
            },
        ],
        "posting": [
            {
                "practitioner_id": "d1",
                "title": "attending",
                "home_facility_id": "A-CH",
                "facility_id": "A-T1",
                "start": date(2026, 1, 1),
            },
            {
                "practitioner_id": "d1",
                "title": "attending",
                "home_facility_id": "A-CH",
                "facility_id": "A-T2",
                "start": date(2026, 7, 1),
            },
            {
                "practitioner_id": "d2",
                "title": "chief",
                "home_facility_id": "A-CH",
                "facility_id": "A-V1",
                "start": date(2025, 1, 1),
                "end": date(2025, 12, 31),
            },
            {
                "practitioner_id": "d3",
                "title": "resident",
                "home_facility_id": "A-CH",
                "facility_id": "A-T1",
                "start": date(2026, 1, 1),
            },
            {
                "practitioner_id": "d4",
                "title": "associate_chief",
                "home_facility_id": "B-CH",
                "facility_id": "A-T1",
                "start": date(2026, 2, 1),
            },
        ],
        "referral": [
            {
                "id": "r1",
                "direction": "up",
                "status": "closed",
                "from_facility_id": "A-T1",
                "to_facility_id": "A-CH",
                "submitted_at": ts("2026-03-01T08:00"),
                "accept_due": ts("2026-03-02T08:00"),
                "accepted_at": ts("2026-03-01T12:00"),
                "closed_at": ts("2026-03-20T08:00"),
                "down_referred_at": ts("2026-03-11T08:00"),
            },
            {
                "id": "r2",
                "direction": "up",
                "status": "accepted",
                "from_facility_id": "A-T2",
                "to_facility_id": "B-CH",
                "submitted_at": ts("2026-04-01T08:00"),
                "accept_due": ts("2026-04-02T08:00"),
                "accepted_at": ts("2026-04-03T08:00"),
                "down_referred_at": ts("2026-04-15T08:00"),
            },
            {
                "id": "r3",
                "direction": "up",
                "status": "cancelled",
                "from_facility_id": "A-V1",
                "to_facility_id": "A-CH",
                "submitted_at": ts("2026-05-01T08:00"),
                "accept_due": ts("2026-05-02T08:00"),
            },
            {
                "id": "r4",
                "direction": "down",
                "status": "closed",
                "from_facility_id": "A-CH",
                "to_facility_id": "A-T1",
                "submitted_at": ts("2026-03-11T08:00"),
                "loop_of": "r1",
            },
            {
                "id": "r5",
                "direction": "down",
                "status": "submitted",
                "from_facility_id": "B-CH",
                "to_facility_id": "A-T2",
                "submitted_at": ts("2026-04-15T08:00"),
                "loop_of": "r2",
            },
        ],
        "procedure": [
            {"id": "op1", "facility_id": "RC", "surgery_level": 4, "performed_start": ts("2026-02-01T08:00")},
            {"id": "op2", "facility_id": "RC", "surgery_level": 3, "performed_start": ts("2026-02-02T08:00")},
            {"id": "op3", "facility_id": "RC", "surgery_level": 4, "performed_start": ts("2026-02-03T08:00")},
        ],
        # expert clinics: A-T1 two days held (75 % of 60 numbers booked) and one called off; B-T1 one day
        "outreach_clinic_day": [
            {
                "id": "cd1",
                "facility_id": "A-T1",
                "day": date(2026, 3, 7),
                "status": "open",
                "quota": 30,
                "booked": 30,
                "arrived": 26,
                "noshow": 4,
                "cancelled": 2,
            },
            {
                "id": "cd2",
                "facility_id": "A-T1",
                "day": date(2026, 3, 8),
                "status": "open",
                "quota": 30,
                "booked": 15,
                "arrived": 10,
                "noshow": 2,
                "cancelled": 0,
            },
            {
                "id": "cd3",
                "facility_id": "A-T1",
                "day": date(2026, 3, 14),
                "status": "cancelled",
                "quota": 30,
                "booked": 0,
                "arrived": 0,
                "noshow": 0,
                "cancelled": 10,
            },
            {
                "id": "cd4",
                "facility_id": "B-T1",
                "day": date(2026, 4, 4),
                "status": "open",
                "quota": 20,
                "booked": 10,
                "arrived": 10,
                "noshow": 0,
                "cancelled": 0,
            },
        ],
        "outreach_checkin": [
            *({"practitioner_id": "d1", "facility_id": "A-T1", "day": date(2026, 3, d)} for d in (2, 3, 4)),
            {"practitioner_id": "d1", "facility_id": "A-T2", "day": date(2025, 12, 1)},  # the year before
        ],
        "outreach_activity": [
            {"id": "a1", "facility_id": "A-T1", "day": date(2026, 3, 7), "kind": "surgery", "attendees": 2},
            {"id": "a2", "facility_id": "A-T1", "day": date(2026, 3, 8), "kind": "lecture", "attendees": 25},
            {"id": "a3", "facility_id": "A-T1", "day": date(2026, 3, 14), "kind": "mentored_surgery", "attendees": 3},
            {"id": "a4", "facility_id": "B-T1", "day": date(2026, 4, 4), "kind": "ward_round", "attendees": 0},
        ],
        # orders to reading centres: A's township/village sent o1..o3 (o4 cancelled); A's county hospital sent o5
        "diagnostic_order": [
            {
                "id": "o1",
                "facility_id": "A-T1",
                "centre_facility_id": "A-CH",
                "modality": "imaging",
                "state": "reported",
                "ordered_at": ts("2026-03-01T08:00"),
                "reported_at": ts("2026-03-01T20:00"),
                "recognised": True,
            },  # 12 h
            {
                "id": "o2",
                "facility_id": "A-V1",
                "centre_facility_id": "A-CH",
                "modality": "ecg",
                "state": "reported",
                "ordered_at": ts("2026-03-02T08:00"),
                "reported_at": ts("2026-03-03T14:00"),
            },  # 30 h
            {
                "id": "o3",
                "facility_id": "A-T2",
                "centre_facility_id": "A-CH",
                "modality": "lab",
                "state": "received",
                "ordered_at": ts("2026-03-05T08:00"),
            },
            {
                "id": "o4",
                "facility_id": "A-T1",
                "centre_facility_id": "A-CH",
                "modality": "imaging",
                "state": "cancelled",
                "ordered_at": ts("2026-03-06T08:00"),
            },
            {
                "id": "o5",
                "facility_id": "A-CH",
                "centre_facility_id": "RC",
                "modality": "pathology",
                "state": "reported",
                "ordered_at": ts("2026-04-01T08:00"),
                "reported_at": ts("2026-04-02T08:00"),
            },  # 24 h
        ],
        "recognition_decision": [
            {
                "id": "rd1",
                "facility_id": "A-T1",
                "outcome": "reused",
                "price_fen": 12_000,
                "decided_at": ts("2026-03-10T09:00"),
            },
            {
                "id": "rd2",
                "facility_id": "A-CH",
                "outcome": "reused",
                "price_fen": 8_000,
                "decided_at": ts("2026-03-12T09:00"),
            },
            {
                "id": "rd3",
                "facility_id": "A-CH",
                "outcome": "repeated",
                "reason": "disease_changed",
                "price_fen": 8_000,
                "decided_at": ts("2026-03-20T09:00"),
            },
            {
                "id": "rd4",
                "facility_id": "B-T1",
                "outcome": "repeated",
                "reason": "emergency",
                "price_fen": 5_000,
                "decided_at": ts("2026-04-01T09:00"),
            },
        ],
        "teleconsultation": [
            {
                "id": "t1",
                "facility_id": "A-T1",
                "centre_facility_id": "A-CH",
                "state": "answered",
                "requested_at": ts("2026-03-03T08:00"),
                "answered_at": ts("2026-03-03T12:00"),
            },  # 4 h
            {
                "id": "t2",
                "facility_id": "A-T2",
                "centre_facility_id": "RC",
                "state": "answered",
                "requested_at": ts("2026-03-04T08:00"),
                "answered_at": ts("2026-03-05T08:00"),
            },  # 24 h
            {
                "id": "t3",
                "facility_id": "A-T1",
                "centre_facility_id": "A-CH",
                "state": "requested",
                "requested_at": ts("2026-05-01T08:00"),
            },
        ],
        "assessment": [
            {"indicator_id": "cc.unified_resource_management", "scope": "141021", "year": 2026, "value": True},
            {"indicator_id": "cc.unified_resource_management", "scope": "141022", "year": 2025, "value": False},
        ],
    }


@pytest.fixture
def snap(tmp_path: Path) -> snapshot.Snapshot:
    return snapshot.write(region(), tmp_path / "indicators", now=AS_OF)  # type: ignore[arg-type]


@pytest.fixture
def ind(snap: snapshot.Snapshot) -> Engine:
    return Engine(snap)
