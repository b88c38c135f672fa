"""The snapshot format: the tables the indicator engine reads, their columns and types, and the columns it derives.

A snapshot is a directory of Parquet files, one per table, with exactly these columns (extra columns are dropped,
missing ones are NULL). Tests and benchmarks write their own tables in this format; `snapshot.take` writes them from the
registry, the materialised SQL-on-FHIR views and the recorded assessments. Times are local civil time (Asia/Shanghai),
as periods are; ids are text.
"""

from __future__ import annotations

import pyarrow as pa

S, N, F, B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
TS, D = pa.timestamp("us"), pa.date32()

TABLES: dict[str, dict[str, pa.DataType]] = {
    # registry (network domain)
    "division": {"code": S, "name": S, "level": S, "parent_code": S, "population": N, "lon": F, "lat": F},
    "facility": {
        "id": S,
        "code": S,
        "name": S,
        "level": S,
        "kind": S,
        "division_code": S,
        "county_code": S,
        "beds": N,
        "lon": F,
        "lat": F,
    },
    "consortium": {"id": S, "name": S, "form": S, "division_code": S, "lead_facility_id": S},
    "consortium_member": {"consortium_id": S, "facility_id": S, "role": S, "membership": S},
    "posting": {
        "practitioner_id": S,
        "title": S,
        "home_facility_id": S,
        "facility_id": S,
        "start": D,
        "end": D,
    },
    # the shared record (views encounter, patient, procedure, diagnostic_report)
    "patient": {"id": S, "division_code": S, "birth_date": D, "deceased_date": D},
    "encounter": {
        "id": S,
        "status": S,
        "class_code": S,
        "service_type": S,
        "patient_id": S,
        "facility_id": S,
        "referral_id": S,
        "period_start": TS,
        "period_end": TS,
    },
    "procedure": {
        "id": S,
        "patient_id": S,
        "encounter_id": S,
        "facility_id": S,
        "status": S,
        "surgery_level": N,
        "minimally_invasive": B,
        "performed_start": TS,
    },
    "diagnostic_report": {
        "id": S,
        "category": S,
        "status": S,
        "patient_id": S,
        "encounter_id": S,
        "facility_id": S,
        "performer_facility_id": S,
        "effective": TS,
        "issued": TS,
        "recognized": B,
    },
    # referrals (views referral_request + referral_task + care_plan)
    "referral": {
        "id": S,
        "direction": S,
        "status": S,
        "patient_id": S,
        "from_facility_id": S,
        "to_facility_id": S,
        "priority": S,
        "submitted_at": TS,
        "accept_due": TS,
        "accepted_at": TS,
        "closed_at": TS,
        # when an up-referral's patient was sent back down (its down-referral care plan); the return itself is also a
        # row of its own, direction down, pointing at the up-referral it closes (loop_of)
        "down_referred_at": TS,
        "loop_of": S,
    },
    # expert outreach (outreach domain's tables): clinic days with their bookings counted, visiting-day activities
    # (ward rounds, surgery, teaching), on-site check-ins
    "outreach_clinic_day": {
        "id": S,
        "clinic_id": S,
        "practitioner_id": S,
        "facility_id": S,
        "specialty": S,
        "day": D,
        "status": S,
        "quota": N,
        "booked": N,
        "arrived": N,
        "noshow": N,
        "cancelled": N,
    },
    "outreach_activity": {
        "id": S,
        "practitioner_id": S,
        "facility_id": S,
        "day": D,
        "kind": S,
        "operation_level": N,
        "attendees": N,
    },
    "outreach_checkin": {"practitioner_id": S, "facility_id": S, "day": D},
    # shared diagnostics (diagnostics domain's tables): orders sent to a reading centre, recognition decisions
    # (a prior result reused or a test repeated), teleconsultations, quality-control passes
    "diagnostic_order": {
        "id": S,
        "facility_id": S,
        "centre_facility_id": S,
        "modality": S,
        "item_code": S,
        "priority": S,
        "state": S,
        "ordered_at": TS,
        "received_at": TS,
        "reported_at": TS,
        "recognised": B,
    },
    "recognition_decision": {
        "id": S,
        "facility_id": S,
        "item_code": S,
        "outcome": S,
        "reason": S,
        "price_fen": N,
        "decided_at": TS,
    },
    "teleconsultation": {
        "id": S,
        "kind": S,
        "facility_id": S,
        "centre_facility_id": S,
        "specialty": S,
        "state": S,
        "requested_at": TS,
        "answered_at": TS,
    },
    "recognition_qualification": {"facility_id": S, "item_code": S, "passed_on": D, "valid_until": D},
    # not recorded by any domain yet: indicators reading them say "no data" until one does
    "claim": {
        "id": S,
        "patient_id": S,
        "facility_id": S,
        "setting": S,
        "total_fen": N,
        "fund_paid_fen": N,
        "settled_at": TS,
    },
    "staff_income": {"facility_id": S, "year": N, "staff": N, "income_fen": N},
    "chronic_managed": {"patient_id": S, "condition": S, "facility_id": S, "managed_from": D, "managed_to": D},
    "death": {"patient_id": S, "division_code": S, "died_on": D, "age": N, "cause_group": S},
    # recorded assessments of the yes/no items (this domain's table indicator_assessment)
    "assessment": {"indicator_id": S, "scope": S, "year": N, "value": B},
}

# Columns the engine adds to a table before filtering (see engine.enrich); definitions may filter on them.
DERIVED: dict[str, dict[str, pa.DataType]] = {
    "encounter": {
        "facility_level": S,
        "facility_kind": S,
        "facility_county": S,
        "patient_county": S,
        "in_county": B,
        "is_tcm": B,
        "stay_days": F,
    },
    "procedure": {"facility_level": S, "facility_county": S},
    "diagnostic_report": {
        "facility_level": S,
        "facility_county": S,
        "performer_level": S,
        "turnaround_hours": F,
    },
    "referral": {
        "from_level": S,
        "from_county": S,
        "to_level": S,
        "to_county": S,
        "out_of_county": B,
        "out_of_province": B,
        "accepted_within_sla": B,
        "days_to_down": F,
    },
    "outreach_clinic_day": {"facility_level": S, "facility_county": S, "settled": N},
    "outreach_activity": {"facility_level": S, "facility_county": S},
    "outreach_checkin": {"facility_level": S, "facility_county": S},
    "diagnostic_order": {
        "facility_level": S,
        "facility_county": S,
        "centre_level": S,
        "centre_county": S,
        "turnaround_hours": F,
    },
    "recognition_decision": {"facility_level": S, "facility_county": S},
    "teleconsultation": {"facility_level": S, "facility_county": S, "centre_level": S, "response_hours": F},
    "recognition_qualification": {"facility_level": S, "facility_county": S},
    "claim": {"facility_level": S, "facility_county": S, "patient_county": S, "in_county": B},
    "posting": {"home_level": S, "facility_level": S, "facility_county": S},
    "staff_income": {"facility_level": S, "facility_county": S},
    "chronic_managed": {"patient_county": S},
    "death": {"county": S},
    "facility": {"facility_id": S},
}

PRIMARY_LEVELS = ("township_centre", "village_clinic")


def columns(table: str) -> dict[str, pa.DataType]:
    return {**TABLES[table], **DERIVED.get(table, {})}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema(list(TABLES[table].items()))


def conform(table: str, data: pa.Table) -> pa.Table:
    """`data` with exactly the table's columns, in order and cast to their types (missing columns as NULL)."""
    out = []
    for name, typ in TABLES[table].items():
        if name in data.column_names:
            col = data.column(name)
            out.append(col if col.type == typ else col.cast(typ))
        else:
            out.append(pa.nulls(data.num_rows, typ))
    return pa.Table.from_arrays(out, schema=arrow_schema(table))
