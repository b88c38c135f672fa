"""The store's per-process caches never answer with another request's data: search statements are reused only for
the same shape with the request's own values, and the active Subscriptions follow writes and deletes at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from yilian.db import unit_of_work
from yilian.events.models import OutboxEvent
from yilian.fhir import hooks, store, subscriptions
from yilian.security.actor import SYSTEM


def _patient(pid: str, gender: str, born: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": born, "name": [{"family": family}]}


def _ids(params: list[tuple[str, str]]) -> list[str]:
    with unit_of_work() as session:
        return sorted(r["id"] for r in store.search(session, "Patient", params).resources)


def test_searches_of_one_shape_return_each_ones_own_matches(clean_db: Any) -> None:
    with unit_of_work() as session:
        store.bulk_put(
            session,
            [
                _patient("p-a", "male", "1950-03-01", "Wang"),
                _patient("p-b", "female", "1990-07-15", "Li"),
                _patient("p-c", "female", "2001-01-02", "Zhang"),
            ],
            actor=SYSTEM,
        )
    assert _ids([("gender", "male")]) == ["p-a"]
    assert _ids([("gender", "female")]) == ["p-b", "p-c"]
    assert _ids([("birthdate", "lt1980")]) == ["p-a"]
    assert _ids([("birthdate", "ge1980")]) == ["p-b", "p-c"]
    assert _ids([("birthdate", "ge1980"), ("gender", "female"), ("family", "zh")]) == ["p-c"]
    assert _ids([("birthdate", "ge1980"), ("gender", "female"), ("family", "li")]) == ["p-b"]
    # _id lists of different lengths share one statement (an expanding parameter).
    assert _ids([("_id", "p-a,p-c")]) == ["p-a", "p-c"]
    assert _ids([("_id", "p-b")]) == ["p-b"]
    assert _ids([("gender", "male,female"), ("_count", "1")]) == ["p-a"]
    assert _ids([("gender", "male,female"), ("_count", "5")]) == ["p-a", "p-b", "p-c"]


def _events() -> int:
    with unit_of_work() as session:
        return (
            session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.topic == subscriptions.TOPIC)
            )
            or 0
        )


def test_a_subscription_fires_from_its_creation_and_stops_at_its_deletion(clean_db: Any) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    }
    with unit_of_work() as session:
        hooks.create(session, SYSTEM, observation)  # loads (and caches) "no subscriptions"
    assert _events() == 0
    with unit_of_work() as session:
        sub = store.create(
            session,
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "heart rate",
                "criteria": "Observation?code=http://loinc.org|8867-4",
                "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
            },
        )
    with unit_of_work() as session:
        hooks.create(session, SYSTEM, observation)
    assert _events() == 1
    with unit_of_work() as session:
        hooks.delete(session, SYSTEM, "Subscription", sub["id"])
    with unit_of_work() as session:
        hooks.create(session, SYSTEM, observation)
    assert _events() == 1


def test_update_and_delete_say_whether_the_resource_was_there(clean_db: Any) -> None:
    with unit_of_work() as session:
        _, existed = store.replace(session, "Patient", "p-x", _patient("p-x", "male", "1970", "Zhao"))
    assert existed is False
    with unit_of_work() as session:
        _, existed = store.replace(session, "Patient", "p-x", _patient("p-x", "male", "1971", "Zhao"))
        assert existed is True
        assert store.delete(session, "Patient", "p-x") is True
        assert store.delete(session, "Patient", "p-x") is False
