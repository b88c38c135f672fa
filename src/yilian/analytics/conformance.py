"""Run the SQL on FHIR v2 conformance suite through `run_view` and report pass counts per file.

`python -m yilian.analytics.conformance [SUITE_DIR] [--markdown]` prints a table; `--write docs/sql-on-fhir.md`
replaces the table between the markers in that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yilian.analytics.compiler import compile_view
from yilian.analytics.runner import run_view
from yilian.errors import YilianError

DEFAULT_SUITE = Path("tests/data/sql-on-fhir-v2/tests")
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"


@dataclass
class Outcome:
    file: str
    title: str
    tags: list[str]
    expects_error: bool
    passed: bool
    message: str


def _canon(value: Any) -> str:
    # 5 and 5.0 are the same number in a view's output
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True)


def check(resources: list[dict], case: dict) -> tuple[bool, str]:
    """Whether one conformance test passes, and why not."""
    if case.get("expectError"):
        try:
            run_view(case["view"], resources)
        except YilianError as exc:
            return True, exc.message
        return False, "the view was accepted but the suite expects an error"
    try:
        rows = run_view(case["view"], resources)
    except YilianError as exc:
        return False, f"error: {exc.message}"
    if "expectColumns" in case:
        names = [c.name for c in compile_view(case["view"]).columns]
        if names != case["expectColumns"]:
            return False, f"columns {names} != expected {case['expectColumns']}"
    expected = case.get("expect", [])
    got, want = Counter(_canon(r) for r in rows), Counter(_canon(r) for r in expected)
    if got != want:
        return (
            False,
            f"rows differ: missing {list((want - got).elements())[:3]}, unexpected {list((got - want).elements())[:3]}",
        )
    return True, ""


def run_suite(suite: Path = DEFAULT_SUITE) -> list[Outcome]:
    out = []
    for f in sorted(suite.glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        for case in data["tests"]:
            ok, msg = check(data["resources"], case)
            out.append(Outcome(f.name, case["title"], case.get("tags", []), bool(case.get("expectError")), ok, msg))
    return out


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| file | tests | passed | shareable passed | error tests refused |",
        "|---|---:|---:|---:|---:|",
    ]
    files = sorted({o.file for o in outcomes})
    for f in [*files, None]:
        rows = [o for o in outcomes if f is None or o.file == f]
        share = [o for o in rows if "shareable" in o.tags]
        errs = [o for o in rows if o.expects_error]
        label = "**total**" if f is None else f"`{f}`"
        lines.append(
            f"| {label} | {len(rows)} | {sum(o.passed for o in rows)} | "
            f"{sum(o.passed for o in share)}/{len(share)} | {sum(o.passed for o in errs)}/{len(errs)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suite", nargs="?", default=str(DEFAULT_SUITE))
    parser.add_argument("--write", help="markdown file whose conformance table to replace")
    parser.add_argument("-v", "--verbose", action="store_true", help="list failing tests")
    args = parser.parse_args(argv)
    outcomes = run_suite(Path(args.suite))
    text = table(outcomes)
    print(text)
    if args.verbose:
        for o in outcomes:
            if not o.passed:
                print(f"FAIL {o.file} :: {o.title}: {o.message}", file=sys.stderr)
    if args.write:
        doc = Path(args.write)
        body = doc.read_text(encoding="utf-8")
        start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
        doc.write_text(body[:start] + "\n" + text + "\n" + body[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
