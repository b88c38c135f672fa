"""rest-hook Subscriptions: a matching write becomes an outbox row; the worker calls the endpoint and retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from yilian.db import read_session, unit_of_work, utcnow
from yilian.events import service as events
from yilian.events.models import OutboxEvent
from yilian.fhir import subscriptions


class Receiver:
    """A real HTTP endpoint on a loopback port that records what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.calls.append((self.command, self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _deliver() -> int:
    """One round of the outbox worker (`yilian worker` runs this in a loop)."""
    with unit_of_work() as session:
        return events.deliver_pending(session)


def _subscription(url: str, criteria: str, payload: bool = True) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": url, "header": ["Authorization: Bearer s3cret"]}
    if payload:
        channel["payload"] = "application/fhir+json"
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "县医院收到高血压随访数据",
        "criteria": criteria,
        "channel": channel,
    }


def _pending() -> list[OutboxEvent]:
    with read_session() as session:
        return list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == subscriptions.TOPIC, OutboxEvent.status == "pending")
            )
        )


def test_it_puts_each_matching_resource_to_the_subscribers_endpoint(
    admin: Any, doctor: Any, receiver: Receiver, new_patient: Any, new_observation: Any
) -> None:
    created = admin.post(
        "/fhir/Subscription", json=_subscription(receiver.url, "Observation?code=http://loinc.org|8480-6")
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]
    systolic = doctor.post("/fhir/Observation", json=new_observation(pid, "8480-6")).json()
    doctor.post("/fhir/Observation", json=new_observation(pid, "8462-4"))  # diastolic: not subscribed

    assert _deliver() == 1
    assert len(receiver.calls) == 1
    method, path, headers, body = receiver.calls[0]
    assert (method, path) == ("PUT", f"/hook/Observation/{systolic['id']}")
    assert headers["Authorization"] == "Bearer s3cret"
    assert json.loads(body)["code"]["coding"][0]["code"] == "8480-6"
    assert _deliver() == 0  # delivered once, not again


def test_it_sends_an_empty_ping_without_a_payload_and_follows_updates(
    admin: Any, doctor: Any, receiver: Receiver, new_patient: Any
) -> None:
    admin.post("/fhir/Subscription", json=_subscription(receiver.url, "Patient?gender=female", payload=False))
    pid = doctor.post("/fhir/Patient", json=new_patient()).json()["id"]  # male: no notification
    assert _deliver() == 0
    current = doctor.get(f"/fhir/Patient/{pid}").json()
    doctor.put(f"/fhir/Patient/{pid}", json={**current, "gender": "female"})
    assert _deliver() == 1
    assert [(m, p, b) for m, p, _, b in receiver.calls] == [("POST", "/hook", b"")]


def test_it_retries_a_failing_endpoint_until_it_answers(
    admin: Any, doctor: Any, receiver: Receiver, new_patient: Any
) -> None:
    admin.post("/fhir/Subscription", json=_subscription(receiver.url, "Patient?"))
    receiver.status = 503
    doctor.post("/fhir/Patient", json=new_patient())
    assert _deliver() == 0
    [event] = _pending()
    assert event.attempts == 1
    assert "503" in (event.last_error or "")
    assert event.next_attempt_at > utcnow()  # backed off: the row waits in the database, across restarts

    receiver.status = 200
    with unit_of_work() as session:  # time passes
        session.execute(update(OutboxEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert _deliver() == 1
    assert [c[0] for c in receiver.calls] == ["PUT", "PUT"]
    assert _pending() == []


def test_it_notifies_nobody_when_the_transaction_fails(
    admin: Any, doctor: Any, receiver: Receiver, new_patient: Any
) -> None:
    admin.post("/fhir/Subscription", json=_subscription(receiver.url, "Patient?"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": new_patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": new_patient(birthDate="1949-13-01"), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    assert doctor.post("/fhir", json=bundle).status_code == 422
    assert _pending() == []


def test_it_refuses_subscriptions_it_cannot_honour(admin: Any, receiver: Receiver) -> None:
    cases = [
        ({"criteria": "Spaceship?x=1"}, "Subscription.criteria"),
        ({"criteria": "Observation?shoe-size=42"}, "Subscription.criteria"),
        ({"channel": {"type": "email", "endpoint": "mailto:a@b.cn"}}, "Subscription.channel.type"),
        ({"channel": {"type": "rest-hook", "endpoint": "ftp://x"}}, "Subscription.channel.endpoint"),
    ]
    for change, path in cases:
        r = admin.post("/fhir/Subscription", json={**_subscription(receiver.url, "Observation?code=1"), **change})
        assert r.status_code == 422, r.text
        assert r.json()["issue"][0]["expression"] == [path]


def test_only_an_administrator_reads_back_the_credentials_in_channel_headers(admin: Any, doctor: Any) -> None:
    sub = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "referral feed",
        "criteria": "Task?status=requested",
        "channel": {
            "type": "rest-hook",
            "endpoint": "http://127.0.0.1:9/hook",
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer s3cret-token"],
        },
    }
    created = admin.post("/fhir/Subscription", json=sub)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert admin.get(f"/fhir/Subscription/{sid}").json()["channel"]["header"] == ["Authorization: Bearer s3cret-token"]
    seen = [
        doctor.get(f"/fhir/Subscription/{sid}").json(),
        doctor.get("/fhir/Subscription").json()["entry"][0]["resource"],
        doctor.get(f"/fhir/Subscription/{sid}/_history/1").json(),
    ]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Subscription/{sid}"}}],
    }
    seen.append(doctor.post("/fhir", json=batch).json()["entry"][0]["resource"])
    for i, resource in enumerate(seen):
        assert resource["channel"]["header"] == ["Authorization: ***"], i
        assert "s3cret" not in json.dumps(resource)
    # what is stored (and sent to the endpoint) is unchanged
    assert admin.get(f"/fhir/Subscription/{sid}").json()["channel"]["header"] == ["Authorization: Bearer s3cret-token"]


def test_a_patient_read_inside_a_batch_is_audited_like_any_read(admin: Any, doctor: Any) -> None:
    from yilian.security.models import AuditEvent

    pid = admin.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"}).json()["id"]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{pid}"}}],
    }
    answer = doctor.post("/fhir", json=batch)
    assert answer.status_code == 200, answer.text
    with read_session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.username == "dr.li", AuditEvent.patient_ref == f"Patient/{pid}")
        ).all()
    assert "fhir.read" in [a.action for a in reads]
