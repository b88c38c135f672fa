"""R4 Subscriptions with the rest-hook channel, delivered through the outbox.

A write that makes a resource match an active Subscription's criteria emits one outbox event in the same transaction
(so a rolled-back write notifies nobody); the outbox worker then calls the endpoint, retrying with back-off, and a
restart loses nothing because the event is a row. Matching reuses search itself: the criteria string plus
`_id=<the ids just written>` is run as an ordinary search inside the writing transaction, so a criteria means
exactly what the same search means at GET /fhir/<Type>?<criteria>.

Delivery follows R4 rest-hook: with `channel.payload` set, the resource is sent with PUT to
`<endpoint>/<Type>/<id>`; without a payload, an empty POST to the endpoint says "something changed".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import Connection, and_, event, false, func, select
from sqlalchemy.orm import Session

from yilian.errors import Invalid, YilianError
from yilian.events import service as events
from yilian.events.models import OutboxEvent
from yilian.fhir import searchparams as sp
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor
from yilian.security.roles import Role

TOPIC = "fhir.subscription"
DELIVERY_TIMEOUT_S = 10.0
# Criteria keep only filters: paging and shaping parameters mean nothing for "does this resource match?".
_IGNORED_IN_CRITERIA = {"_count", "_offset", "_cursor", "_sort", "_include", "_revinclude", "_summary", "_total"}


def check(resource: dict[str, Any]) -> None:
    """What R4's structure cannot say about a Subscription this server can honour (raised as 422 with the element)."""
    criteria = resource.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise Invalid(
            "a Subscription needs criteria such as Observation?code=http://loinc.org|8480-6",
            field="Subscription.criteria",
        )
    res_type, _, query = criteria.strip().partition("?")
    from yilian.fhir.validation import is_known_type  # validation imports this module

    if not is_known_type(res_type) or res_type in ("Bundle", "Parameters"):
        raise Invalid(
            f"criteria: {res_type[:64]!r} is not a resource type this server stores", field="Subscription.criteria"
        )
    known = sp.params_for(res_type)
    for key, _value in parse_qsl(query, keep_blank_values=True):
        name = key.partition(":")[0]
        if name not in known and name not in _IGNORED_IN_CRITERIA:
            raise Invalid(f"criteria: {key!r} is not a search parameter of {res_type}", field="Subscription.criteria")
    channel = resource.get("channel") or {}
    kind = channel.get("type")
    if kind != "rest-hook":
        raise Invalid(
            f"channel.type {kind!r} is not supported: this server delivers rest-hook only",
            field="Subscription.channel.type",
        )
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("a rest-hook needs an http(s) endpoint", field="Subscription.channel.endpoint")
    for header in channel.get("header") or []:
        if not isinstance(header, str) or ":" not in header or "\n" in header or "\r" in header:
            raise Invalid(
                'channel.header entries look like "Authorization: Bearer ..."', field="Subscription.channel.header"
            )


def prepare(resource: dict[str, Any]) -> None:
    """The server accepts a requested subscription by making it active (R4: the server sets the status)."""
    if resource.get("resourceType") == "Subscription" and resource.get("status") == "requested":
        resource["status"] = "active"


# Active subscriptions are read on every write, and there are few of them and they change rarely: each process keeps
# them per database, drops its copy when it writes a Subscription itself, and at most every CACHE_CHECK_S seconds asks
# the database whether any Subscription changed elsewhere (another worker process) — one probe of the
# (res_type, last_updated) index instead of loading every Subscription's JSON on each write.
CACHE_CHECK_S = 2.0


@dataclass
class _Cached:
    stamp: tuple[int, Any]  # (how many Subscription rows, their latest lastUpdated): changes with any write
    subscriptions: list[dict[str, Any]]
    checked: float  # time.monotonic() of the last stamp check


_cache: dict[str, _Cached] = {}
_DIRTY = "yilian.fhir.subscriptions.dirty"  # session.info key: this transaction wrote a Subscription


def clear_cache() -> None:
    """Forget every process-local copy (tests that empty tables behind the store's back call this)."""
    _cache.clear()


def written(session: Session) -> None:
    """The store wrote (or deleted) a Subscription in this session: drop the copy, and don't cache what this
    uncommitted transaction sees (it may roll back)."""
    key = _db_key(session)
    _cache.pop(key, None)
    if not session.info.get(_DIRTY):
        session.info[_DIRTY] = True
        # Again at commit: another request of this process may have reloaded the copy meanwhile, without this
        # transaction's (then uncommitted) change.
        event.listen(session, "after_commit", lambda _session: _cache.pop(key, None), once=True)


def _db_key(session: Session) -> str:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    return engine.url.render_as_string(hide_password=True)


def _stamp(session: Session) -> tuple[int, Any]:
    from yilian.fhir.store import R

    row = session.execute(select(func.count(), func.max(R.c.last_updated)).where(R.c.res_type == "Subscription")).one()
    return int(row[0]), row[1]


def _load(session: Session) -> list[dict[str, Any]]:
    from yilian.fhir.store import R, V

    rows = session.execute(
        select(V.c.resource)
        .join(R, and_(V.c.resource_pk == R.c.pk, V.c.version == R.c.version))
        .where(R.c.res_type == "Subscription", R.c.deleted == false())
    ).scalars()
    return [r for r in rows if r.get("status") == "active" and (r.get("channel") or {}).get("type") == "rest-hook"]


def _active(session: Session) -> list[dict[str, Any]]:
    if session.info.get(_DIRTY):
        return _load(session)
    key = _db_key(session)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached.checked < CACHE_CHECK_S:
        return cached.subscriptions
    stamp = _stamp(session)
    if cached is not None and cached.stamp == stamp:
        cached.checked = now
        return cached.subscriptions
    subscriptions = _load(session)
    _cache[key] = _Cached(stamp, subscriptions, now)
    return subscriptions


def on_write(session: Session, written: list[dict[str, Any]]) -> int:
    """Emit an outbox event for every (active subscription, written resource) that matches. Returns how many."""
    if not written:
        return 0
    subscriptions = _active(session)
    if not subscriptions:
        return 0
    from yilian.fhir import store

    by_type: dict[str, list[dict[str, Any]]] = {}
    for res in written:
        by_type.setdefault(res["resourceType"], []).append(res)
    emitted = 0
    for sub in subscriptions:
        res_type, _, query = str(sub.get("criteria", "")).strip().partition("?")
        candidates = by_type.get(res_type)
        if not candidates:
            continue
        filters = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in _IGNORED_IN_CRITERIA]
        versions = {r["id"]: r["meta"]["versionId"] for r in candidates}
        ids = list(versions)
        for start in range(0, len(ids), store.MAX_COUNT):
            chunk = ids[start : start + store.MAX_COUNT]
            try:
                found = store.search(
                    session,
                    res_type,
                    [*filters, ("_id", ",".join(chunk)), ("_count", str(store.MAX_COUNT)), ("_total", "none")],
                )
            except YilianError:  # criteria accepted earlier but no longer searchable: never block the write
                continue
            for match in found.resources:
                events.emit(
                    session,
                    TOPIC,
                    subject=f"Subscription/{sub['id']}",
                    payload={
                        "subscription": sub["id"],
                        "resource": f"{res_type}/{match['id']}",
                        "version": versions.get(match["id"], match["meta"]["versionId"]),
                    },
                )
                emitted += 1
    return emitted


def deliver(session: Session, event: OutboxEvent) -> None:
    """Outbox handler: call the subscriber. Raising makes the outbox retry later (exponential back-off)."""
    from yilian.errors import NotFound
    from yilian.fhir import store
    from yilian.fhir.validation import Gone

    payload = event.payload or {}
    try:
        sub = store.read(session, "Subscription", str(payload.get("subscription")))
    except (NotFound, Gone):
        return  # the subscription was removed: nobody to tell
    if sub.get("status") != "active":
        return
    channel = sub.get("channel") or {}
    endpoint = str(channel.get("endpoint", "")).rstrip("/")
    headers = {"User-Agent": "Yilian FHIR subscriptions"}
    for header in channel.get("header") or []:
        name, _, value = str(header).partition(":")
        headers[name.strip()] = value.strip()
    res_type, _, res_id = str(payload.get("resource", "")).partition("/")
    mime = channel.get("payload")
    if mime:
        try:
            resource = store.vread(session, res_type, res_id, str(payload.get("version")))
        except (NotFound, Gone):
            return
        headers["Content-Type"] = "application/fhir+json" if "json" in str(mime) else str(mime)
        response = httpx.put(
            f"{endpoint}/{res_type}/{res_id}", json=resource, headers=headers, timeout=DELIVERY_TIMEOUT_S
        )
        patient = store.patient_of(resource)
        if patient:
            audit.record(
                session,
                SYSTEM,
                "fhir.subscription.deliver",
                patient=patient[:128],
                resource=f"{res_type}/{res_id}"[:256],
                detail={"subscription": sub["id"], "endpoint": endpoint[:200], "status": response.status_code},
            )
    else:
        response = httpx.post(endpoint, content=b"", headers=headers, timeout=DELIVERY_TIMEOUT_S)
    if response.status_code >= 300:
        raise RuntimeError(f"{endpoint} answered {response.status_code}")


events.subscribe(TOPIC, deliver)


def redact_for(actor: Actor, resource: dict[str, Any]) -> None:
    """Channel headers carry the receiving system's credentials ("Authorization: Bearer …"): only a system
    administrator reads them back; everyone else sees the header names with the values masked."""
    if resource.get("resourceType") != "Subscription" or actor.role == Role.SYSTEM_ADMIN:
        return
    channel = resource.get("channel")
    if isinstance(channel, dict) and channel.get("header"):
        masked = [f"{str(h).partition(':')[0].strip()}: ***" for h in channel["header"]]
        resource["channel"] = {**channel, "header": masked}
