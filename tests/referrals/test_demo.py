"""The demo activity: at least 50 referrals as ServiceRequest + Task, in at least four Task statuses, both ways."""

from __future__ import annotations

from collections import Counter

from yilian.db import read_session, unit_of_work
from yilian.fhir import store
from yilian.referrals.demo import seed_demo_referrals

from .conftest import Net


def test_it_seeds_fifty_referrals_in_both_directions_visible_as_fhir_tasks(net: Net) -> None:
    with unit_of_work() as session:
        states = seed_demo_referrals(session, count=60)
    assert sum(states.values()) == 60
    assert {"submitted", "offered", "booked", "down_referred", "closed", "cancelled"} <= set(states)
    with read_session() as session:
        tasks = store.search(session, "Task", [("_count", "1000")]).resources
        requests = store.search(session, "ServiceRequest", [("_count", "1000")]).resources
    statuses = Counter(t["status"] for t in tasks)
    assert len([s for s in statuses if statuses[s]]) >= 4
    directions = {c["coding"][0]["code"] for r in requests for c in r.get("category", [])[1:]}
    assert {"up", "down"} <= directions
    assert len(tasks) >= 60 and len(requests) >= 60
