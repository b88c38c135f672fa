"""The county-community, referral and regional-centre sets on the hand-built region of conftest.py: exact values."""

from __future__ import annotations

from typing import Any

import pytest

from yilian.errors import Invalid, NotFound
from yilian.indicators import service
from yilian.indicators.engine import Engine

A, B, C = "141021", "141022", "141023"
CONS_A = "00000000-0000-0000-0000-00000000000a"


def results(ind: Engine, set_id: str, period: str, scope: str | None = "1410") -> dict[tuple[str, str], Any]:
    return {(r.id, r.scope): r for r in service.compute(ind, set_id, period, scope).results}


def test_it_shows_the_share_of_visits_made_at_primary_care(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    # A: e1 (township), e2 (village), e5 (township, emergency) of e1..e5; e9 is New Year's Eve 2025
    assert (r["cc.primary_visit_share", A].numerator, r["cc.primary_visit_share", A].denominator) == (3, 5)
    assert r["cc.primary_visit_share", A].value == 60.0
    assert r["cc.tcm_visit_share", A].value == 20.0


def test_it_says_zero_denominator_rather_than_zero(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")["cc.primary_visit_share", B]
    assert r.value is None and r.status == "zero_denominator" and r.denominator == 0


def test_it_counts_residents_treated_outside_their_county_against_their_county(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    # A's residents: e6 in A, e7 in B → 1 of 2; B's resident pb1 admitted in A (e8) → 0 of 1, a real zero
    assert (r["cc.in_county_inpatient_share", A].numerator, r["cc.in_county_inpatient_share", A].denominator) == (1, 2)
    assert r["cc.in_county_inpatient_share", A].value == 50.0
    assert r["cc.in_county_inpatient_share", B].value == 0.0
    assert r["cc.in_county_inpatient_share", B].status in ("ok", "partial")


def test_it_computes_the_insurance_fund_shares_without_pharmacies(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    # A residents 2026, pharmacy c4 excluded: in county c1 600,000 + c3 5,000 of c1 + c2 1,400,000 + c3
    assert r["cc.fund_in_county_share", A].numerator == 605_000
    assert r["cc.fund_in_county_share", A].denominator == 2_005_000
    assert r["cc.fund_in_county_share", A].value == 30.1746
    assert r["cc.fund_primary_share", A].value == 0.8264  # 5,000 / 605,000
    assert r["cc.fund_in_county_share", B].value == 0.0  # pb1's stay in A


def test_it_computes_cost_per_case_and_its_growth_over_the_year_before(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    # A's facilities: c1 10,000 yuan + c6 6,000 yuan over 2 stays; 2025: c5 6,400 yuan over 1 stay
    assert r["cc.inpatient_cost_per_case", A].value == 8000.0
    assert r["cc.inpatient_cost_growth", A].value == 25.0
    assert r["cc.inpatient_cost_per_case", B].value == 20000.0
    assert r["cc.inpatient_cost_growth", B].value is None  # nothing the year before
    assert r["cc.inpatient_cost_growth", B].status == "no_data"


def test_it_counts_posted_doctors_per_10000_residents(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    # d1 (twice, counted once) and d4 (from B's hospital) are posted in 2026; d2's posting ended 2025, d3 is a resident
    assert (r["cc.lead_doctors_posted_per_10k", A].numerator, r["cc.lead_doctors_posted_per_10k", A].denominator) == (
        2,
        20000,
    )
    assert r["cc.lead_doctors_posted_per_10k", A].value == 1.0
    assert r["cc.lead_doctors_posted_per_10k", B].value == 0.0


def test_it_says_no_data_when_a_table_is_not_recorded(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")["cc.primary_lead_income_ratio", A]
    assert (r.value, r.numerator, r.status) == (None, None, "no_data")
    assert r.note == "no data: staff_income is not recorded yet"


def test_it_says_no_data_without_census_population(ind: Engine) -> None:
    r = results(ind, "county-community", "2026", C)["cc.lead_doctors_posted_per_10k", C]
    assert r.value is None and r.status == "no_data" and "census population" in (r.note or "")


def test_it_reads_recorded_assessments_and_never_guesses_a_missing_one(ind: Engine) -> None:
    r = results(ind, "county-community", "2026")
    assert r["cc.unified_resource_management", A].value == 1.0
    assert r["cc.unified_resource_management", A].meets_target is True
    assert r["cc.unified_resource_management", B].value is None  # only 2025 was assessed
    assert results(ind, "county-community", "2025")["cc.unified_resource_management", B].value == 0.0


def test_it_marks_a_period_after_the_last_record_as_no_data(ind: Engine) -> None:
    r = results(ind, "county-community", "2026-09")["cc.primary_visit_share", A]
    assert r.value is None and r.status == "no_data"
    assert r.note == "no data for encounter in 2026-09 (recorded 2025-12-31 to 2026-06-10)"
    whole = results(ind, "county-community", "2026")["cc.primary_visit_share", A]
    assert whole.status == "partial" and whole.note == "no data for encounter since 2026-06-10"


def test_it_leaves_months_without_data_empty_in_a_trend(ind: Engine) -> None:
    months = {r.period: r.value for r in service.trend(ind, "cc.primary_visit_share", "2026", A)}
    assert months == {
        "2026-01": None,
        "2026-02": None,
        "2026-03": 100.0,
        "2026-04": 0.0,
        "2026-05": None,
        "2026-06": 100.0,
        "2026-07": None,
        "2026-08": None,
        "2026-09": None,
        "2026-10": None,
        "2026-11": None,
        "2026-12": None,
    }


def test_it_takes_a_range_of_months(ind: Engine) -> None:
    r = results(ind, "county-community", "2026-03..2026-04")["cc.primary_visit_share", A]
    assert (r.numerator, r.denominator, r.period) == (2, 4, "2026-03..2026-04")


def test_a_consortium_counts_its_members_only(ind: Engine) -> None:
    r = results(ind, "county-community", "2026", CONS_A)["cc.primary_visit_share", CONS_A]
    assert (r.numerator, r.denominator, r.value, r.scope_name) == (3, 4, 75.0, "A县医共体")  # no TCM hospital


def test_it_computes_the_referral_kpis(ind: Engine) -> None:
    r = {k[0]: v.value for k, v in results(ind, "referrals", "2026", A).items()}
    assert r == {
        "ref.up_referrals": 3.0,
        "ref.down_referrals": 2.0,
        "ref.down_up_ratio": 0.6667,
        "ref.accepted_within_sla": 50.0,  # r1 in time, r3 never accepted; r4, r5 had no due time
        "ref.closed_loop_rate": 50.0,  # r1 of r1, r2 (r3 cancelled)
        "ref.median_days_to_down": 12.0,  # r1 came back down after 10 days, r2 after 14
        "ref.out_of_county_share": 33.3333,
    }
    b = results(ind, "referrals", "2026", B)["ref.down_up_ratio", B]
    assert b.value is None and b.status == "zero_denominator"


def test_it_says_no_data_for_a_column_nobody_records(ind: Engine) -> None:
    r = {k[0]: v for k, v in results(ind, "regional-centre", "2026", None).items()}
    assert r["rc.fourth_level_share"].value == 66.6667
    assert r["rc.operations"].value == 3.0
    assert r["rc.minimally_invasive_share"].value is None
    assert r["rc.minimally_invasive_share"].note == "no data: procedure.minimally_invasive is not recorded"


def test_every_result_names_its_snapshot(ind: Engine) -> None:
    assert {r.snapshot for r in service.compute(ind, "county-community", "2026", "1410").results} == {ind.snap.id}


def test_it_lists_the_rows_behind_a_numerator(ind: Engine) -> None:
    rows, total = service.drill(ind, "cc.primary_visit_share", "2026", A)
    assert total == 3 and [r["id"] for r in rows] == ["e1", "e2", "e5"]
    rows, total = service.drill(ind, "cc.in_county_inpatient_share", "2026", A, "denominator")
    assert [(r["id"], r["in_county"]) for r in rows] == [("e6", True), ("e7", False)]


def test_it_refuses_scopes_and_periods_it_cannot_read(ind: Engine) -> None:
    with pytest.raises(Invalid) as bad:
        service.compute(ind, "county-community", "2026-13")
    assert bad.value.field == "period"
    with pytest.raises(NotFound) as missing:
        service.compute(ind, "county-community", "2026", "999999")
    assert missing.value.field == "scope"
    with pytest.raises(NotFound):
        service.compute(ind, "no-such-set", "2026")


def test_a_reference_nobody_sends_is_no_data_not_zero(tmp_path: Any) -> None:
    from indicators.conftest import AS_OF, region
    from yilian.indicators import snapshot

    tables = region()
    for e in tables["encounter"]:
        e["facility_id"] = None  # the hospital system sends encounters without their serviceProvider
    snap = snapshot.write(tables, tmp_path / "ind", now=AS_OF)  # type: ignore[arg-type]
    r = results(Engine(snap), "county-community", "2026")["cc.primary_visit_share", A]
    assert (r.value, r.status, r.note) == (None, "no_data", "no data: encounter.facility_id is not recorded")


def test_it_counts_the_experts_posted_into_a_county(ind: Engine) -> None:
    r = {k[0]: v.value for k, v in results(ind, "outreach", "2026", A).items()}
    # d1 (attending, two postings) and d4 (associate chief) in 2026; d3 is a resident, d2's posting ended in 2025
    posted = {
        k: v for k, v in r.items() if k in ("out.posted_experts", "out.senior_share", "out.posted_to_primary_per_10k")
    }
    assert posted == {"out.posted_experts": 2.0, "out.senior_share": 50.0, "out.posted_to_primary_per_10k": 1.0}
