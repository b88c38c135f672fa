"""Snapshots are incremental: only changed tables are written, an unchanged snapshot is reused, results name theirs."""

from __future__ import annotations

import json
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


def test_the_registry_is_joined_in_once_per_version_of_what_it_reads(tmp_path: Path) -> None:
    root = tmp_path / "ind"
    first = snapshot.write(region(), root, now=AS_OF)  # type: ignore[arg-type]
    assert {"encounter", "claim", "referral"} <= set(first.prepared)
    tables = region()
    tables["referral"] = tables["referral"][:-1]
    second = snapshot.write({"referral": tables["referral"]}, root, now=datetime(2026, 11, 24))  # type: ignore[dict-item]
    assert second.prepared == ("referral",)  # encounters and claims did not change: not joined again
    assert second.tables["encounter"].prepared == first.tables["encounter"].prepared
    tables["patient"].append({"id": "pa-new", "division_code": "141021100"})
    third = snapshot.write({"patient": tables["patient"]}, root, now=datetime(2026, 11, 25))  # type: ignore[dict-item]
    # a patient registered: what carries the patients' county is joined again, what only reads facilities is not
    assert set(third.prepared) == {"encounter", "claim"}
    assert third.tables["referral"].prepared == second.tables["referral"].prepared
    assert snapshot.load(third.id, root).tables["claim"].prepared == third.tables["claim"].prepared


def test_a_snapshot_taken_before_prepared_tables_computes_the_same(tmp_path: Path) -> None:
    root = tmp_path / "ind"
    snap = snapshot.write(region(), root, now=AS_OF)  # type: ignore[arg-type]
    manifest = root / "snapshots" / f"{snap.id}.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    for t in data["tables"].values():
        t.pop("prepared", None)
        t.pop("prepared_fingerprint", None)
    manifest.write_text(json.dumps(data), encoding="utf-8")
    old = snapshot.load(snap.id, root)
    assert all(t.prepared is None for t in old.tables.values())
    for set_id in ("county-community", "referrals"):
        now = service.compute(Engine(snap), set_id, "2026", "141021").results
        before = service.compute(Engine(old), set_id, "2026", "141021").results
        assert [r.as_dict() for r in before] == [r.as_dict() for r in now]
