"""The typed snapshot: `yilian views materialize` keeps each resource type as nested typed Parquet columns and
computes the views from them, with the same rows as from JSON text, incrementally, widening when a view needs more."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

from yilian.analytics import catalogue, cli, snapshot, typed, typed_snapshot
from yilian.analytics.compiler import compile_view
from yilian.analytics.materialize import materialize_views, view_path, view_sql
from yilian.analytics.runner import connect, run_view
from yilian.db import unit_of_work
from yilian.fhir import store

from .test_views import ALL, ENCOUNTER

WITH_DISPLAY = {
    "resourceType": "ViewDefinition",
    "name": "encounter_subject",
    "status": "active",
    "resource": "Encounter",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "subject_display", "path": "subject.display", "type": "string"},
            ]
        }
    ],
}


def _seed(resources: list[dict]) -> None:
    with unit_of_work() as session:
        for r in resources:
            store.upsert(session, copy.deepcopy(r))


def _rows(path: Path) -> list[str]:
    con = duckdb.connect()
    rows = con.execute(f"SELECT * EXCLUDE (_resource_key) FROM read_parquet('{path}')").fetchall()
    names = [d[0] for d in con.description or []]
    return sorted(json.dumps(dict(zip(names, r, strict=True)), sort_keys=True, default=str) for r in rows)


def _canon(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def test_every_shipped_view_is_materialised_from_the_typed_snapshot_with_the_json_texts_rows(
    clean_db: Any, tmp_path: Path
):
    _seed(ALL)
    with unit_of_work() as session:
        done = {o.name: o for o in materialize_views(session, root=tmp_path)}
        paths = {name: view_path(session, name) for name in done}
    for name in catalogue.names():
        assert done[name].reads == "typed snapshot", (name, done[name].reads)
        from_text = run_view(catalogue.get(name), [str(p) for _, p in snapshot.parts(tmp_path)])
        assert _rows(paths[name]) == _canon(from_text), name
    assert typed_snapshot.path_for("Encounter", tmp_path).is_file()
    assert typed_snapshot.path_for("Observation", tmp_path).is_file()


def test_changed_and_deleted_resources_reach_the_typed_snapshot_and_the_views(clean_db: Any, tmp_path: Path):
    _seed(ALL)
    with unit_of_work() as session:
        materialize_views(session, ["encounter"], root=tmp_path)
    _seed([copy.deepcopy(ENCOUNTER) | {"id": "e2", "class": {"code": "AMB"}}])
    _seed([copy.deepcopy(ENCOUNTER) | {"class": {"code": "EMER"}}])
    with unit_of_work() as session:
        [again] = materialize_views(session, ["encounter"], root=tmp_path)
        path = view_path(session, "encounter")
    assert again.mode == "incremental" and again.reads == "typed snapshot"
    assert sorted(duckdb.connect().execute(f"SELECT id, class_code FROM '{path}'").fetchall()) == [
        ("e1", "EMER"),
        ("e2", "AMB"),
    ]
    with unit_of_work() as session:
        store.delete(session, "Encounter", "e1")
    with unit_of_work() as session:
        [gone] = materialize_views(session, ["encounter"], root=tmp_path)
    assert gone.rows == 1
    typed_file = typed_snapshot.path_for("Encounter", tmp_path)
    assert duckdb.connect().execute(f"SELECT res_id, _fhir.class.code FROM '{typed_file}'").fetchall() == [
        ("e2", "AMB")
    ]


def test_a_view_reading_a_new_member_widens_the_typed_snapshot_at_the_next_materialize(admin: Any, tmp_path: Path):
    _seed([copy.deepcopy(ENCOUNTER) | {"subject": {"reference": "Patient/p1", "display": "王芳"}}])
    runner = CliRunner()
    assert runner.invoke(cli.app, ["materialize", "--view", "encounter"]).exit_code == 0
    view_file = tmp_path / "encounter_subject.json"
    view_file.write_text(json.dumps(WITH_DISPLAY), encoding="utf-8")
    before = runner.invoke(cli.app, ["explain", str(view_file)])
    assert before.exit_code == 0, before.output
    assert "materialize reads: JSON text (the typed snapshot of Encounter lacks subject.display" in before.output

    assert admin.post("/fhir/ViewDefinition", json=WITH_DISPLAY).status_code == 201
    widened = runner.invoke(cli.app, ["materialize", "--view", "encounter_subject"])
    assert widened.exit_code == 0, widened.output
    assert "typed snapshot Encounter: full, 1 resources parsed" in widened.output
    assert "encounter_subject: 1 rows (full)" in widened.output and "; from typed snapshot" in widened.output
    after = runner.invoke(cli.app, ["explain", str(view_file)])
    assert "materialize reads: typed snapshot" in after.output
    held = typed_snapshot.held("Encounter")
    assert held is not None
    # widened, not replaced: the shipped encounter view is still served from the same file
    assert typed_snapshot.covers(held, typed.fast(compile_view(catalogue.get("encounter"))))
    con = duckdb.connect()
    path = Path(held.path).parent.parent / "views" / "encounter_subject.parquet"
    assert con.execute(f"SELECT id, subject_display FROM '{path}'").fetchall() == [("e1", "王芳")]


def test_a_view_only_the_json_compiler_runs_reads_json_text(clean_db: Any, tmp_path: Path):
    view = copy.deepcopy(WITH_DISPLAY)
    view["select"][0]["column"][1] = {"name": "given", "path": "name.given.join(' ')", "type": "string"}
    view["resource"] = "Patient"
    compiled = typed.fast(compile_view(view))
    assert typed_snapshot.reads(compiled, None) == "JSON text (the JSON compiler runs this view)"


CONTACTS = {
    "resourceType": "ViewDefinition",
    "name": "patient_contacts",
    "status": "active",
    "resource": "Patient",
    "select": [
        {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}]},
        {
            "unionAll": [
                {
                    "forEach": "name",
                    "column": [
                        {"name": "kind", "path": "'name'", "type": "string"},
                        {"name": "n", "path": "%rowIndex", "type": "integer"},
                        {"name": "text", "path": "family", "type": "string"},
                        {"name": "use", "path": "use", "type": "code"},
                    ],
                },
                {
                    "forEachOrNull": "telecom.where(system = 'phone')",
                    "column": [
                        {"name": "kind", "path": "'phone'", "type": "string"},
                        {"name": "n", "path": "%rowIndex", "type": "integer"},
                        {"name": "text", "path": "value", "type": "string"},
                        {"name": "use", "path": "use", "type": "code"},
                    ],
                },
            ]
        },
    ],
}


def test_union_branches_over_lists_give_the_same_rows_from_the_typed_snapshot_as_from_json_text(
    clean_db: Any, tmp_path: Path
):
    # materialisation runs each unionAll branch as its own query and unnests a forEach list in SQL: the rows of
    # several names, of no name, of no phone (forEachOrNull: one row of nulls) and of two phones are the same as
    # `yilian views run` gives
    patients = [
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "王", "use": "official"}, {"family": "Wang", "use": "usual"}],
            "telecom": [
                {"system": "email", "value": "w@example.cn"},
                {"system": "phone", "value": "138", "use": "mobile"},
                {"system": "phone", "value": "010"},
            ],
        },
        {"resourceType": "Patient", "id": "p2", "telecom": [{"system": "email", "value": "x@example.cn"}]},
        {"resourceType": "Patient", "id": "p3", "name": [{"family": "李"}]},
    ]
    _seed(patients)
    with unit_of_work() as session:
        snapshot.take(session, tmp_path)
    parts = snapshot.parts(tmp_path)
    compiled = typed.fast(compile_view(CONTACTS))
    assert compiled.engine == "typed (duckdb)" and compiled.shape is not None
    built = typed_snapshot.refresh("Patient", compiled.shape, parts, tmp_path)
    query, reads = view_sql(compiled, [p for _, p in parts], built.held)
    assert reads == "typed snapshot" and "generate_subscripts" in query
    con = connect()
    result = con.execute(f"SELECT * EXCLUDE (_resource_key) FROM ({query})")
    names = [d[0] for d in result.description or []]
    from_typed = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    from_text = run_view(CONTACTS, [str(p) for _, p in parts])
    assert _canon(from_typed) == _canon(from_text)
    assert len(from_text) == 2 + 2 + 1 + 1 + 1  # p1: 2 names, 2 phones; p2: no name, no phone; p3: 1 name, no phone
    assert {"id": "p2", "kind": "phone", "n": 0, "text": None, "use": None} in from_typed
