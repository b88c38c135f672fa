"""Notifying the ordering site through the outbox: a facility's channels (webhook, SMS) and their delivery.

A signed or amended report is an outbox event; `fan_out` turns it into one `diagnostics.deliver` event per channel of
the ordering site, so that a failing webhook is retried alone (exponential back-off, `events.service`) and a restart
loses nothing. The in-app inbox (DiagnosticNotification) is written with the report itself.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.diagnostics import channels
from yilian.diagnostics.models import NotificationChannel
from yilian.diagnostics.schemas import ChannelIn, ChannelOut
from yilian.errors import Forbidden, Invalid, NotFound
from yilian.events import service as events
from yilian.events.models import OutboxEvent
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, Role

PHONE = re.compile(r"^\+?[0-9]{6,20}$")


def _facility_of(actor: Actor) -> uuid.UUID:
    if actor.facility_id is None or (actor.role not in CLINICAL_ROLES and actor.role != Role.SYSTEM_ADMIN):
        raise Forbidden("the channels of a facility are set by its clinicians")
    return actor.facility_id


def add_channel(session: Session, actor: Actor, body: ChannelIn) -> NotificationChannel:
    facility_id = _facility_of(actor)
    target = body.target.strip()
    if body.kind == "webhook" and not re.match(r"^https?://[^\s/]+", target):
        raise Invalid("a webhook is an http:// or https:// URL", field="target")
    if body.kind == "sms" and not PHONE.match(target.replace(" ", "").replace("-", "")):
        raise Invalid("an SMS target is a phone number (digits, optionally starting with +)", field="target")
    row = NotificationChannel(
        facility_id=facility_id,
        kind=body.kind,
        target=target if body.kind == "webhook" else target.replace(" ", "").replace("-", ""),
        critical_only=body.critical_only,
        active=True,
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    return row


def list_channels(session: Session, actor: Actor) -> list[ChannelOut]:
    facility_id = _facility_of(actor)
    rows = session.scalars(
        select(NotificationChannel)
        .where(NotificationChannel.facility_id == facility_id, NotificationChannel.active.is_(True))
        .order_by(NotificationChannel.created_at)
    )
    return [ChannelOut.model_validate(r, from_attributes=True) for r in rows]


def remove_channel(session: Session, actor: Actor, channel_id: uuid.UUID) -> None:
    row = session.get(NotificationChannel, channel_id)
    if row is None or row.facility_id != _facility_of(actor):
        raise NotFound(f"no channel {channel_id} of your facility", field="channel_id")
    row.active = False  # kept: deliveries already queued name it, and say why they stopped


def fan_out(session: Session, event: OutboxEvent) -> None:
    """Outbox handler for diagnostics.report.*: one delivery event per active channel of the ordering site."""
    payload = event.payload or {}
    try:
        facility_id = uuid.UUID(str(payload.get("facility")))
    except ValueError:
        return
    critical = bool(payload.get("critical"))
    what = "amended" if event.topic.endswith("amended") else "ready"
    notice = {
        "event": event.topic,
        "report": event.subject,
        "order": payload.get("order"),
        "item": payload.get("item"),
        "critical": critical,
        "status": what,
        "print": f"/diagnostics/orders/{payload.get('order')}/print",
    }
    for ch in session.scalars(
        select(NotificationChannel).where(
            NotificationChannel.facility_id == facility_id, NotificationChannel.active.is_(True)
        )
    ):
        if ch.critical_only and not critical:
            continue
        events.emit(session, "diagnostics.deliver", subject=event.subject, payload={"channel": str(ch.id), **notice})


def sms_text(notice: dict[str, Any]) -> str:
    """No names or values in a text message: it may be read on a lock screen. The doctor opens Yilian to see it."""
    item = notice.get("item") or "检查"
    if notice.get("critical"):
        return f"【医联】危急值：{item}报告含危急值，请立即登录医联查看并确认。"
    if notice.get("status") == "amended":
        return f"【医联】{item}报告已更正，请登录医联查看并重新打印。"
    return f"【医联】{item}报告已出，请登录医联查看打印。"


def deliver(session: Session, event: OutboxEvent) -> None:
    """Outbox handler for diagnostics.deliver: send one notice on one channel; raising makes the outbox retry it."""
    payload = dict(event.payload or {})
    try:
        ch = session.get(NotificationChannel, uuid.UUID(str(payload.pop("channel", ""))))
    except ValueError:
        return
    if ch is None or not ch.active:
        return  # removed since: nobody to tell
    if ch.kind == "webhook":
        channels.send_webhook(ch.target, payload)
    elif ch.kind == "sms":
        channels.sms_gateway().send(ch.target, sms_text(payload))
