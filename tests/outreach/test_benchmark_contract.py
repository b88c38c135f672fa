"""The contract checked from outside: `benchmarks/roster.py --quick` ends with one line of JSON saying whether the
roster is feasible, how long it took, its size and how many rules the independent validator found broken."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_quick_roster_benchmark_prints_its_verdict_as_json_on_the_last_line() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "roster.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )

    assert run.returncode == 0, run.stderr
    verdict = json.loads(run.stdout.strip().splitlines()[-1])
    assert verdict["feasible"] is True and verdict["violations"] == 0
    assert (verdict["experts"], verdict["hospitals"]) == (100, 20)
    assert 0 < verdict["seconds"] < 120
