"""The outreach demo activity, seeded into a region through the services: what the issue promises the demo holds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from yilian.db import read_session, unit_of_work
from yilian.fhir import store
from yilian.outreach import demo, service, visits
from yilian.outreach.clinics import local_now
from yilian.outreach.models import Appointment


def test_the_demo_has_both_programmes_clinics_bookings_a_waitlist_an_alert_and_rosters(site) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        for i in range(6):  # the demo's patients domain runs first; some bookings are for them
            store.create(s, {"resourceType": "Patient", "name": [{"family": "周", "given": [f"患者{i}"]}]})
        seeded = demo.seed_demo(s)

    assert seeded.slots >= 100 and seeded.appointments >= 20 and seeded.waiting == 3
    with read_session() as s:
        assert store.search(s, "Slot", [("_summary", "count")]).total >= 100
        assert store.search(s, "Appointment", [("status", "booked"), ("_summary", "count")]).total >= 20
        kinds = {p.kind for p in service.list_postings(s, seeded.resident_programme)}
        assert kinds == {"resident"}
        weekend = {p.kind: p.recurrence for p in service.list_postings(s, seeded.weekend_programme)}
        assert weekend == {"recurring": "FREQ=MONTHLY;BYDAY=1SA,1SU", "honorary_chief": None}
        today = local_now().date()
        rows = visits.compliance(s, seeded.resident_programme, today - timedelta(days=35), today)
        assert sum(len(r.alerts) for r in rows) >= 1
        for programme in (seeded.resident_programme, seeded.weekend_programme):
            roster = service.find_roster(s, programme, f"{today:%Y-%m}")
            assert roster.feasible and roster.violations == [] and roster.entries
        linked = s.scalars(select(Appointment.patient_name).where(Appointment.patient_ref.is_not(None))).all()
        assert len(linked) == 6 and all(n.startswith("周患者") for n in linked)
        impact = visits.impact(s, seeded.weekend_programme)
        assert impact.surgeries_by_experts == 3
        operations = next(f for f in impact.figures if f["name"] == "operations")
        assert operations["after"] == 3, "surgeries are counted from their Procedure records"
