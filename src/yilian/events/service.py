"""Emit events inside a unit of work; a worker delivers them to registered handlers with retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from typing import cast as typed

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from yilian.db import new_id, utcnow
from yilian.events.models import OutboxEvent

Handler = Callable[[Session, OutboxEvent], None]
_handlers: dict[str, list[Handler]] = {}


def subscribe(topic_prefix: str, handler: Handler) -> None:
    """Register a handler for every topic starting with `topic_prefix` ('' for all)."""
    handlers = _handlers.setdefault(topic_prefix, [])
    if handler not in handlers:
        handlers.append(handler)


def emit(
    session: Session, topic: str, *, subject: str | None = None, payload: dict[str, Any] | None = None
) -> OutboxEvent:
    event = OutboxEvent(topic=topic, subject=subject, payload=payload or {})
    session.add(event)
    return event


_INSERT = insert(typed(Table, OutboxEvent.__table__))


def row(topic: str, *, subject: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event as a row for `write`: a caller that writes several rows of its own at one point (a new referral with
    its history) sends them together instead of one ORM flush each."""
    now = utcnow()
    return {
        "id": new_id(),
        "created_at": now,
        "topic": topic,
        "subject": subject,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }


def write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert events made by `row`, now, in the session's transaction (one statement)."""
    if rows:
        session.connection().execute(_INSERT, rows)


def _handlers_for(topic: str) -> list[Handler]:
    return [h for prefix, hs in _handlers.items() if topic.startswith(prefix) for h in hs]


MAX_ATTEMPTS = 8


def deliver_pending(session: Session, limit: int = 100) -> int:
    """Deliver due events; each handler runs in a savepoint so one failure does not undo the others.

    Returns how many events were delivered. Failed events are retried with exponential back-off.
    """
    now = utcnow()
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now)
        .order_by(OutboxEvent.created_at)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    delivered = 0
    for event in session.scalars(stmt):
        event.attempts += 1
        try:
            with session.begin_nested():
                for handler in _handlers_for(event.topic):
                    handler(session, event)
        except Exception as exc:  # a handler's failure is recorded and retried, never lost
            event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if event.attempts >= MAX_ATTEMPTS:
                event.status = "failed"
            else:
                event.next_attempt_at = now + timedelta(seconds=2**event.attempts)
            continue
        event.status = "delivered"
        event.delivered_at = now
        delivered += 1
    return delivered


def run_worker(stop: Callable[[], bool], interval: float = 1.0) -> None:
    """Deliver pending events until `stop()` says so. Safe to run in several processes (rows are locked on PostgreSQL)."""
    import time

    from yilian.db import unit_of_work

    while not stop():
        try:
            with unit_of_work() as session:
                delivered = deliver_pending(session)
        except Exception:  # the database may be briefly unavailable; the next round retries
            delivered = 0
        if not delivered:
            time.sleep(interval)
