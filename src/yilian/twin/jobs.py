"""Simulation jobs for the pages: a scenario compared with its baseline in a child process, progress in a file.

A run takes seconds to minutes of CPU. It must not hold the server's GIL or die with a request, so each job is a
separate Python process (`python -m yilian.twin.jobs DIR`) that writes `status.json` as replications finish and
`result.json` at the end. The page polls the status file; a restarted server still finds every job and its result,
and the scenario YAML next to them is the file the CLI reads (`yilian twin compare baseline-linfen scenario.yaml`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yilian.config import get_settings
from yilian.errors import Conflict, Invalid, NotFound
from yilian.twin import scenarios

BASELINE = "baseline-linfen.yaml"
MAX_RUNNING = 2  # the machine has two cores; a third run would only slow the first two down
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_watchers: list[threading.Thread] = []


@dataclass(frozen=True)
class RunRequest:
    """What the official asked for: a scenario (region + changes) and how much simulation to spend on it."""

    name: str
    region: list[str]  # county codes simulated
    area: str  # the division the official chose (city, county or province code)
    changes: list[dict[str, Any]]
    replications: int
    years: float
    scale: float
    seed: int = 1

    def scenario_document(self) -> dict[str, Any]:
        """The YAML document of the scenario, in the form `scenarios.load` reads."""
        return {
            "name": self.name,
            "baseline": BASELINE,
            "region": self.region if len(self.region) > 1 else self.region[0],
            "changes": self.changes,
        }


def jobs_dir() -> Path:
    root = get_settings().data_dir / "twin" / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def scenario_yaml(req: RunRequest) -> str:
    header = (
        "# Built on the twin page of Yilian. Run it with:\n#   yilian twin compare baseline-linfen THIS_FILE.yaml\n"
    )
    return header + yaml.safe_dump(req.scenario_document(), allow_unicode=True, sort_keys=False)


def validate(req: RunRequest) -> scenarios.Scenario:
    """Parse the scenario as the CLI would and apply its changes to a small world: an error names the field."""
    sc = scenarios.from_dict(req.scenario_document(), source="page")
    scenarios.build_world(sc, seed=req.seed, scale=min(req.scale, 0.002), region=req.region)
    return sc


def _alive(d: Path) -> bool:
    try:
        os.kill(int((d / "pid").read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _status(d: Path) -> dict[str, Any]:
    """The job's status; a job whose process is gone without finishing (server or machine restart) says so."""
    status = _read(d / "status.json")
    if status["state"] in ("queued", "running") and (d / "pid").exists() and not _alive(d):
        status = _read(d / "status.json")  # it may have finished between the two reads
        if status["state"] in ("queued", "running"):
            status = {**status, "state": "failed", "message": "interrupted before it finished: run it again"}
            _write(d / "status.json", status)
    return status


def running() -> int:
    n = 0
    for d in jobs_dir().iterdir():
        try:
            if _status(d)["state"] in ("queued", "running"):
                n += 1
        except (OSError, ValueError, KeyError):
            continue
    return n


def start(req: RunRequest, *, owner: str) -> str:
    """Write the job's files and start its process; returns the job id."""
    validate(req)
    if running() >= MAX_RUNNING:
        raise Conflict(f"{MAX_RUNNING} simulations are already running: wait for one to finish", field="run")
    job_id = uuid.uuid4().hex
    d = jobs_dir() / job_id
    d.mkdir()
    (d / "scenario.yaml").write_text(scenario_yaml(req), encoding="utf-8")
    _write(
        d / "request.json",
        {
            "owner": owner,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "name": req.name,
            "area": req.area,
            "region": req.region,
            "replications": req.replications,
            "years": req.years,
            "scale": req.scale,
            "seed": req.seed,
        },
    )
    _write(d / "status.json", {"state": "queued", "done": 0, "total": 2 * req.replications, "message": ""})
    log = (d / "job.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "yilian.twin.jobs", str(d)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    log.close()
    (d / "pid").write_text(str(proc.pid))
    # Reap the child when it ends (no zombie processes in a long-running server).
    watcher = threading.Thread(target=proc.wait, daemon=True)
    watcher.start()
    _watchers.append(watcher)
    return job_id


def _job(job_id: str) -> Path:
    if not _JOB_ID.match(job_id):
        raise NotFound("no such simulation run", field="run")
    d = jobs_dir() / job_id
    if not (d / "request.json").exists():
        raise NotFound("no such simulation run", field="run")
    return d


def get(job_id: str) -> dict[str, Any]:
    """Request, status and (when done) result of a job."""
    d = _job(job_id)
    out: dict[str, Any] = {"id": job_id, "request": _read(d / "request.json"), "status": _status(d)}
    if out["status"]["state"] == "done" and (d / "result.json").exists():
        out["result"] = _read(d / "result.json")
    return out


def scenario_file(job_id: str) -> str:
    return (_job(job_id) / "scenario.yaml").read_text(encoding="utf-8")


def recent(limit: int = 10) -> list[dict[str, Any]]:
    """The latest jobs, newest first (request and status only)."""
    rows: list[dict[str, Any]] = []
    for d in jobs_dir().iterdir():
        try:
            rows.append({"id": d.name, "request": _read(d / "request.json"), "status": _status(d)})
        except (OSError, ValueError):
            continue
    rows.sort(key=lambda r: r["request"].get("created", ""), reverse=True)
    return rows[:limit]


def execute(d: Path) -> None:
    """The child process: run the comparison, report progress after every replication, write the result."""
    req = _read(d / "request.json")
    total = 2 * int(req["replications"])
    status: dict[str, Any] = {"state": "running", "done": 0, "total": total, "message": ""}
    _write(d / "status.json", status)
    try:
        new = scenarios.load(d / "scenario.yaml")
        base = scenarios.load(BASELINE)
        offset = {"n": 0}

        def done(k: int) -> None:
            status["done"] = min(total, offset["n"] + k)
            if k == int(req["replications"]):
                offset["n"] += k
            _write(d / "status.json", status)

        doc = scenarios.compare(
            base,
            new,
            years=float(req["years"]),
            replications=int(req["replications"]),
            seed=int(req["seed"]),
            scale=float(req["scale"]),
            region=list(req["region"]),
            workers=1,
            on_done=done,
        )
        _write(d / "result.json", _clean(doc))
        _write(d / "status.json", {**status, "state": "done", "done": total})
    except Exception as exc:  # the page must say why a run failed, whatever it was
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        _write(d / "status.json", {**status, "state": "failed", "message": str(message), "field": field})
        raise


def check_numbers(replications: Any, years: Any, scale: Any) -> tuple[int, float, float]:
    """Form values as numbers, each error naming its field (small bounds: the page is for quick what-ifs)."""

    def num(value: Any, field: str, kind: type, low: float, high: float) -> Any:
        try:
            x = kind(value)
        except (TypeError, ValueError):
            raise Invalid(f"{field} must be a number", field=field) from None
        if not low <= x <= high:
            raise Invalid(f"{field} must be between {low:g} and {high:g}", field=field)
        return x

    return (
        num(replications, "replications", int, 2, 30),
        num(years, "years", float, 0.1, 3),
        num(scale, "scale", float, 0.001, 0.2),
    )


if __name__ == "__main__":
    execute(Path(sys.argv[1]))
