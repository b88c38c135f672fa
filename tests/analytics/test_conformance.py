"""The SQL on FHIR v2 conformance suite (tests/data/sql-on-fhir-v2, 134 tests), run through the entry points users call:
`run_view` for every test, and the `yilian views run` command (Typer's runner, and one real subprocess) for a sample."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yilian.analytics import cli
from yilian.analytics.conformance import _canon, check, run_suite, table
from yilian.analytics.runner import run_view
from yilian.errors import Invalid

SUITE = Path(__file__).parents[1] / "data" / "sql-on-fhir-v2" / "tests"
FILES = sorted(SUITE.glob("*.json"))


def _cases() -> list:
    params = []
    for f in FILES:
        data = json.loads(f.read_text(encoding="utf-8"))
        for case in data["tests"]:
            params.append(pytest.param(f.name, case, id=f"{f.stem}::{case['title']}"))
    return params


def _resources(file: str) -> list[dict]:
    return json.loads((SUITE / file).read_text(encoding="utf-8"))["resources"]


def test_it_holds_the_whole_suite_with_its_licence():
    cases = _cases()
    assert len(FILES) == 22
    assert len(cases) == 134
    assert sum("shareable" in c.values[1].get("tags", []) for c in cases) == 123
    assert sum(bool(c.values[1].get("expectError")) for c in cases) == 11
    assert (SUITE.parent / "LICENSE.md").read_text().startswith("MIT") or "MIT" in (
        SUITE.parent / "LICENSE.md"
    ).read_text()


@pytest.mark.parametrize(("file", "case"), _cases())
def test_it_passes_the_conformance_test(file: str, case: dict):
    resources = _resources(file)
    if case.get("expectError"):
        with pytest.raises(Invalid) as refused:
            run_view(case["view"], resources)
        assert refused.value.message  # a message a person can act on, not a bare failure
        return
    ok, why = check(resources, case)
    assert ok, why


@pytest.mark.parametrize(("file", "case"), _cases())
def test_it_gives_the_same_answer_through_yilian_views_run(file: str, case: dict, tmp_path: Path):
    # every test of the suite through the command users call (Typer's runner, in process: ~20 ms each)
    view = tmp_path / "view.json"
    view.write_text(json.dumps(case["view"]), encoding="utf-8")
    data = tmp_path / "resources.ndjson"
    data.write_text("\n".join(json.dumps(r) for r in _resources(file)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["run", str(view), str(data)])
    if case.get("expectError"):
        assert result.exit_code == 2
        assert result.output.startswith("error") and len(result.output) > 20  # says what is wrong
        return
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert Counter(map(_canon, rows)) == Counter(map(_canon, case["expect"]))
    if "expectColumns" in case and rows:
        assert list(rows[0]) == case["expectColumns"]


def test_it_runs_as_a_real_command_and_exits_2_on_an_invalid_view(tmp_path: Path):
    # the `yilian views` Typer app in its own process (`yilian` mounts this same app; importing every domain costs ~10 s)
    data = json.loads((SUITE / "basic.json").read_text(encoding="utf-8"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in data["resources"]]}), encoding="utf-8"
    )
    view = tmp_path / "view.json"
    view.write_text(json.dumps(data["tests"][1]["view"]), encoding="utf-8")
    ok = subprocess.run(
        [sys.executable, "-m", "yilian.analytics.cli", "run", str(view), str(bundle)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert Counter(map(_canon, json.loads(ok.stdout))) == Counter(map(_canon, data["tests"][1]["expect"]))

    view.write_text(json.dumps({"select": [{"column": [{"name": "id", "path": "id"}]}]}), encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "yilian.analytics.cli", "run", str(view), str(bundle)], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "resource is required" in bad.stderr


def test_it_reports_pass_counts_per_file(tmp_path: Path):
    for name in ("fn_first.json", "validate.json"):
        (tmp_path / name).write_text((SUITE / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = table(run_suite(tmp_path))
    assert "| `fn_first.json` | 2 | 2 | 2/2 | 0/0 |" in text
    assert "| `validate.json` | 5 | 5 | 5/5 | 5/5 |" in text
    assert "| **total** | 7 | 7 | 7/7 | 5/5 |" in text
