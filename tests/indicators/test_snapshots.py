"""Snapshots are incremental: only changed tables are written, an unchanged snapshot is reused, results name theirs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from indicators.conftest import AS_OF, region, ts
from yilian.indicators import service, snapshot
from yilian.indicators.engine import Engine


def test_it_writes_only_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "ind"
    first = snapshot.write(region(), root, now=AS_OF)  # type: ignore[arg-type]
    assert set(first.written) == set(region())
    again = snapshot.write(region(), root, now=datetime(2026, 11, 24))  # type: ignore[arg-type]
    assert again.id == first.id and again.written == ()
    tables = region()
    tables["encounter"].append(
        {
            "id": "e10",
            "class_code": "AMB",
            "patient_id": "pa1",
            "facility_id": "A-T1",
            "period_start": ts("2026-07-01T09:00"),
        }
    )
    second = snapshot.write({"encounter": tables["encounter"]}, root, now=datetime(2026, 11, 25))  # type: ignore[dict-item]
    assert second.id != first.id and second.written == ("encounter",)
    assert second.tables["facility"].path == first.tables["facility"].path  # carried over, not rewritten
    assert snapshot.latest(root).id == second.id  # type: ignore[union-attr]
    old = service.compute(Engine(snapshot.load(first.id, root)), "county-community", "2026", "141021").results
    new = service.compute(Engine(second), "county-community", "2026", "141021").results
    share = {(r.snapshot, r.id): r.numerator for r in old + new}
    assert share[first.id, "cc.primary_visit_share"] == 3
    assert share[second.id, "cc.primary_visit_share"] == 4
