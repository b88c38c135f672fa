"""A finished report or a critical value reaches the ordering site's hospital system (webhook, retried until it
answers) and its duty phone (SMS gateway; the console gateway here), through the outbox."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from sqlalchemy import select

from yilian.db import unit_of_work
from yilian.diagnostics import channels
from yilian.events import service as outbox
from yilian.events.models import OutboxEvent

from .test_reading_centre import order_ecg, upload


class HospitalSystem:
    """A hospital system's endpoint on loopback that is down for its first `failures` calls."""

    def __init__(self, failures: int):
        self.received: list[dict[str, Any]] = []
        self.calls = 0
        hospital = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hospital.calls += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if hospital.calls <= failures else 200
                if status == 200:
                    hospital.received.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/yilian-notices"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def deliver_due() -> None:
    with unit_of_work() as session:
        outbox.deliver_pending(session)


def test_it_posts_the_report_to_the_sites_webhook_and_retries_until_it_answers(region, as_user) -> None:  # type: ignore[no-untyped-def]
    hospital = HospitalSystem(failures=1)
    village, reader = as_user("village"), as_user("reader")
    r = village.post("/api/v1/diagnostics/channels", json={"kind": "webhook", "target": "ftp://x"})
    assert r.status_code == 422 and r.json()["field"] == "target"
    r = village.post("/api/v1/diagnostics/channels", json={"kind": "webhook", "target": hospital.url})
    assert r.status_code == 201
    assert [c["target"] for c in village.get("/api/v1/diagnostics/channels").json()] == [hospital.url]

    order = order_ecg(village, region.patients["wang"])
    upload(village, order["id"])
    reader.post(f"/api/v1/diagnostics/orders/{order['id']}/report", json={"conclusion": "正常心电图"})
    deliver_due()  # the signed report fans out into one delivery per channel
    deliver_due()  # the hospital system is down: the delivery waits for a retry
    assert hospital.received == [] and hospital.calls == 1
    with unit_of_work() as session:
        pending = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "diagnostics.deliver")).one()
        assert pending.status == "pending" and "503" in (pending.last_error or "")
    time.sleep(2.2)  # the first back-off is two seconds
    deliver_due()
    assert len(hospital.received) == 1
    notice = hospital.received[0]
    assert notice["order"] == order["id"] and notice["status"] == "ready" and notice["critical"] is False
    assert "王建国" not in json.dumps(notice, ensure_ascii=False)  # no patient data: the system reads FHIR for it


def test_a_critical_value_texts_the_duty_phone_and_routine_reports_do_not(region, as_user) -> None:  # type: ignore[no-untyped-def]
    village, reader = as_user("village"), as_user("reader")
    r = village.post(
        "/api/v1/diagnostics/channels", json={"kind": "sms", "target": "138 0000 1234", "critical_only": True}
    )
    assert r.status_code == 201 and r.json()["target"] == "13800001234"
    assert village.post("/api/v1/diagnostics/channels", json={"kind": "sms", "target": "call me"}).status_code == 422
    gateway = channels.sms_gateway()
    assert isinstance(gateway, channels.ConsoleSms)
    before = len(gateway.to("13800001234"))

    routine = order_ecg(village, region.patients["wang"])
    upload(village, routine["id"], heart_rate=72)
    reader.post(f"/api/v1/diagnostics/orders/{routine['id']}/report", json={"conclusion": "正常心电图"})
    critical = order_ecg(village, region.patients["li"], priority="stat")
    upload(village, critical["id"], heart_rate=35)
    reader.post(f"/api/v1/diagnostics/orders/{critical['id']}/report", json={"conclusion": "严重心动过缓"})
    deliver_due()
    deliver_due()
    texts = [m.text for m in gateway.to("13800001234")[before:]]
    assert len(texts) == 1 and "危急值" in texts[0] and "李秀英" not in texts[0]


def test_a_clinician_adds_and_removes_a_channel_on_the_diagnostics_page(region, as_user, http) -> None:  # type: ignore[no-untyped-def]
    village = as_user("village")
    http.cookies.set("yilian_session", village.headers["Authorization"].split()[1])
    r = http.post("/diagnostics/channels", data={"kind": "webhook", "target": "not a url"})
    assert r.status_code == 422 and 'data-testid="form-error"' in r.text and "target" in r.text
    r = http.post("/diagnostics/channels", data={"kind": "sms", "target": "+8613800001234", "critical_only": "1"})
    assert r.status_code == 303
    page = http.get("/diagnostics").text
    assert "+8613800001234" in page and "仅危急值" in page
    channel = village.get("/api/v1/diagnostics/channels").json()[0]
    assert http.post(f"/diagnostics/channels/{channel['id']}/remove").status_code == 303
    assert village.get("/api/v1/diagnostics/channels").json() == []
