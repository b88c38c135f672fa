"""Done-when of issue 10: a view change shows up in the indicators after `yilian views materialize` — through the
commands a region's analyst runs, with the view changed where a region changes it (/fhir/ViewDefinition)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from yilian import cli as yilian_cli
from yilian.analytics import catalogue
from yilian.config import get_settings
from yilian.db import unit_of_work
from yilian.fhir import store
from yilian.network import service as network
from yilian.network.schemas import FacilityIn


@pytest.fixture
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory of its own: the snapshot parts other tests left in the session's would otherwise mix in
    their versions of e1, e2 … (the database is emptied between tests, the files are not)."""
    old = get_settings().data_dir
    if (old / "secret_key").exists():  # tokens already issued stay valid
        shutil.copy(old / "secret_key", tmp_path / "secret_key")
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


def _encounter(eid: str, cls: str, facility: str, start: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": cls},
        "subject": {"reference": "Patient/p1"},
        "serviceProvider": {"reference": f"Organization/{facility}"},
        "period": {"start": start},
    }


def _primary_visit_share(runner: CliRunner) -> tuple[float, int, int]:
    done = runner.invoke(
        yilian_cli.app,
        ["indicators", "compute", "--set", "county-community", "--period", "2026", "--scope", "141024"],
    )
    assert done.exit_code == 0, done.output
    [share] = [r for r in json.loads(done.stdout) if r["id"] == "cc.primary_visit_share" and r["scope"] == "141024"]
    return share["value"], share["numerator"], share["denominator"]


def test_a_changed_view_definition_changes_the_indicator_after_yilian_views_materialize(own_data_dir: Path, admin: Any):
    with unit_of_work() as session:
        network.load_divisions(session, "14")
        village = network.create_facility(
            session, FacilityIn(code="V-HT1", name="贾村卫生室", level="village_clinic", division_code="141024")
        )
        county = network.create_facility(
            session, FacilityIn(code="CH-HT1", name="洪洞县人民医院", level="county_hospital", division_code="141024")
        )
        for r in (
            _encounter("e1", "AMB", str(village.id), "2026-03-01T09:00:00+08:00"),
            _encounter("e2", "AMB", str(county.id), "2026-03-02T09:00:00+08:00"),
            _encounter("e3", "EMER", str(village.id), "2026-03-03T22:00:00+08:00"),
        ):
            store.upsert(session, r)
    runner = CliRunner()

    first = runner.invoke(yilian_cli.app, ["views", "materialize", "--view", "encounter"])
    assert first.exit_code == 0, first.output
    # outpatient and emergency visits at the village clinic: 2 of 3
    value, numerator, denominator = _primary_visit_share(runner)
    assert (numerator, denominator) == (2, 3) and round(value, 1) == 66.7

    # the region narrows its encounter view to outpatient visits, in the FHIR store
    narrowed = catalogue.get("encounter") | {"where": [{"path": "class.code = 'AMB'"}]}
    assert admin.post("/fhir/ViewDefinition", json=narrowed).status_code == 201
    again = runner.invoke(yilian_cli.app, ["views", "materialize", "--view", "encounter"])
    assert again.exit_code == 0, again.output
    assert "encounter: 2 rows (full)" in again.output
    assert _primary_visit_share(runner) == (50.0, 1, 2)
