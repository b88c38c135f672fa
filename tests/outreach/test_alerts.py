"""Attendance alerts run by themselves: the server raises them on an interval (off in tests unless asked), cron can
run `yilian outreach alerts`, and however often either runs an expert's short week is alerted once — in the
programme's alert list and as one outbox event."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from yilian.db import read_session
from yilian.events.models import OutboxEvent
from yilian.outreach import cli
from yilian.outreach.clinics import local_now
from yilian.outreach.models import ComplianceAlert


def alert_events() -> int:
    with read_session() as s:
        return s.scalar(select(func.count(OutboxEvent.id)).where(OutboxEvent.topic == "outreach.compliance.alert")) or 0


def test_the_cron_command_alerts_each_short_expert_week_once(http, site) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    monday = local_now().date() - timedelta(days=local_now().date().weekday())
    # 张三 (resident, ≥ 4 days a week) has no check-in at all: both of the last two finished weeks are short.
    first = runner.invoke(cli.app, ["alerts"])
    second = runner.invoke(cli.app, ["alerts"])

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {"new_alerts": 2}
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {"new_alerts": 0}
    assert alert_events() == 2
    listed = http.get(f"/api/v1/outreach/programmes/{site.programme_id}/alerts", headers=site.auth("coord")).json()
    assert [(a["practitioner_name"], a["week_start"], a["on_site"], a["required"]) for a in listed] == [
        ("张三", str(monday - timedelta(days=7)), 0, 4),
        ("张三", str(monday - timedelta(days=14)), 0, 4),
    ]
    bad = runner.invoke(cli.app, ["alerts", "--today", "yesterday"])
    assert bad.exit_code != 0 and "--today" in bad.output


def test_the_server_raises_alerts_by_itself_when_its_job_is_on(site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from yilian.app import create_app

    with TestClient(create_app()):  # the job is off in tests: starting the app raises nothing
        time.sleep(0.5)
    assert alert_events() == 0

    monkeypatch.setenv("YILIAN_OUTREACH_ALERT_INTERVAL_MINUTES", "0.01")  # every 0.6 s
    with TestClient(create_app()) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and alert_events() < 2:
            time.sleep(0.2)
        time.sleep(1.5)  # a few more runs: none may raise the same week again
        assert client.get("/healthz").status_code == 200

    assert alert_events() == 2
    with read_session() as s:
        assert s.scalar(select(func.count(ComplianceAlert.id))) == 2
