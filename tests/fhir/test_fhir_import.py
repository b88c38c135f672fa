"""`yilian fhir import`: NDJSON and Synthea-style Bundles, rejects reported, resumable."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from yilian.cli import app
from yilian.db import read_session
from yilian.fhir import bulk, store
from yilian.fhir.models import FhirResourceVersion


def _patients(n: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Patient",
            "id": str(uuid.uuid4()),
            "name": [{"family": "刘", "given": [f"{i}号"]}],
            "gender": "female",
        }
        for i in range(n)
    ]


def _write_ndjson(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows))
    return path


def _synthea_bundle(path: Path) -> tuple[Path, str]:
    patient, encounter = str(uuid.uuid4()), str(uuid.uuid4())
    entries = [
        {
            "fullUrl": f"urn:uuid:{patient}",
            "resource": {"resourceType": "Patient", "name": [{"family": "Smith"}]},
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": f"urn:uuid:{encounter}",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": f"urn:uuid:{patient}"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Condition",
                "code": {"text": "高血压"},
                "subject": {"reference": f"urn:uuid:{patient}"},
                "encounter": {"reference": f"urn:uuid:{encounter}"},
            },
            "request": {"method": "POST", "url": "Condition"},
        },
    ]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    return path, patient


def test_it_imports_ndjson_and_bundles_and_reports_what_it_rejected(clean_db: Any, tmp_path: Path) -> None:
    good = _patients(30)
    ndjson = _write_ndjson(
        tmp_path / "Patient.ndjson",
        [*good[:10], "{not json", *good[10:], {"resourceType": "Patient", "birthDate": "1990-13-01"}],
    )
    bundle, patient_id = _synthea_bundle(tmp_path / "synthea.json")
    report = tmp_path / "rejected.ndjson"

    result = CliRunner().invoke(
        app, ["fhir", "import", str(ndjson), str(bundle), "--report", str(report), "--batch", "7", "--workers", "1"]
    )

    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["imported"] == 33
    assert summary["rejected"] == 2
    assert summary["by_type"] == {"Condition": 1, "Encounter": 1, "Patient": 31}
    rejected = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["line"] for r in rejected] == [11, 32]
    assert rejected[1]["outcome"]["issue"][0]["expression"] == ["Patient.birthDate"]
    with read_session() as session:
        assert store.read(session, "Patient", good[0]["id"])["name"][0]["family"] == "刘"
        compartment = store.everything(session, patient_id)
        assert sorted(r["resourceType"] for r in compartment.resources) == ["Condition", "Encounter", "Patient"]


def test_it_exits_zero_when_everything_was_imported_and_skips_finished_files(clean_db: Any, tmp_path: Path) -> None:
    ndjson = _write_ndjson(tmp_path / "Patient.ndjson", _patients(12))
    first = CliRunner().invoke(app, ["fhir", "import", str(tmp_path), "--workers", "2", "--batch", "5"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1])["imported"] == 12
    again = CliRunner().invoke(app, ["fhir", "import", str(ndjson)])
    assert again.exit_code == 0
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["imported"], summary["rejected"], summary["skipped_files"]) == (0, 0, 1)


def test_it_resumes_an_interrupted_import_without_duplicating_anything(clean_db: Any, tmp_path: Path) -> None:
    rows = _patients(40)
    ndjson = _write_ndjson(tmp_path / "Patient.ndjson", rows)
    report = tmp_path / "r.ndjson"

    def stop_after_first_batch(path: Path, done: int, n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bulk.import_files([ndjson], batch_size=15, report_path=report, on_progress=stop_after_first_batch)
    rest = bulk.import_files([ndjson], batch_size=15, report_path=report)

    assert rest.imported == 25
    with read_session() as session:
        versions = session.scalar(select(func.count()).select_from(FhirResourceVersion))
        assert versions == 40
        assert store.search(session, "Patient", [("_summary", "count")]).total == 40
