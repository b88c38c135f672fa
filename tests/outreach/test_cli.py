"""`yilian outreach ...` on a real database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from yilian.outreach import cli
from yilian.outreach.clinics import local_now


def test_the_command_line_lists_programmes_solves_a_month_and_shows_days_on_site(site) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()

    listed = runner.invoke(cli.app, ["programmes"])
    solved = runner.invoke(cli.app, ["roster", site.programme_id, f"{local_now().date():%Y-%m}", "--time-limit", "10"])
    compliance = runner.invoke(cli.app, ["compliance", site.programme_id, "--alert"])

    assert listed.exit_code == 0 and site.programme_id in listed.stdout
    assert solved.exit_code == 0, solved.output
    verdict = json.loads(solved.stdout.strip().splitlines()[-1])
    assert verdict["feasible"] and verdict["violations"] == 0 and verdict["entries"] > 0
    assert compliance.exit_code == 0 and "张三" in compliance.stdout
    assert "1 new alert(s) queued" in compliance.output  # no check-in at all last week
    again = runner.invoke(cli.app, ["compliance", site.programme_id, "--alert"])
    assert "0 new alert(s) queued" in again.output, "an expert-week is alerted once"
