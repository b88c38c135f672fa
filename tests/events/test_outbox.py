"""The outbox keeps news written with the change and delivers it after commit, retrying failures."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from yilian.db import unit_of_work, utcnow
from yilian.events import service as outbox
from yilian.events.models import OutboxEvent


def test_it_delivers_an_event_only_if_the_change_that_emitted_it_was_committed(clean_db) -> None:
    seen: list[str] = []
    outbox.subscribe("test.committed", lambda session, event: seen.append(event.subject or ""))
    try:
        with unit_of_work() as session:
            raise_after = outbox.emit(session, "test.committed", subject="Referral/1")
            assert raise_after.topic == "test.committed"
            raise RuntimeError("the request failed after emitting")
    except RuntimeError:
        pass
    with unit_of_work() as session:
        outbox.emit(session, "test.committed", subject="Referral/2")
    with unit_of_work() as session:
        assert outbox.deliver_pending(session) == 1
    assert seen == ["Referral/2"]
    with unit_of_work() as session:
        assert outbox.deliver_pending(session) == 0  # delivered once, never twice


def test_it_retries_a_failing_handler_later_and_records_the_error(clean_db) -> None:
    attempts: list[int] = []

    def flaky(session, event):  # type: ignore[no-untyped-def]
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("webhook down")

    outbox.subscribe("test.flaky", flaky)
    with unit_of_work() as session:
        outbox.emit(session, "test.flaky", payload={"n": 1})
    with unit_of_work() as session:
        assert outbox.deliver_pending(session) == 0
    with unit_of_work() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "test.flaky")).one()
        assert event.status == "pending" and event.attempts == 1
        assert "webhook down" in (event.last_error or "")
        event.next_attempt_at = utcnow() - timedelta(seconds=1)  # as if the back-off had passed
    with unit_of_work() as session:
        assert outbox.deliver_pending(session) == 1
    assert len(attempts) == 2
