"""ViewDefinitions stored at /fhir/ViewDefinition, the views page, and `yilian views materialize` from the store into
Parquet files the indicator engine reads by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from typer.testing import CliRunner

from yilian.analytics import catalogue, cli, snapshot
from yilian.analytics.materialize import materialize_views, open_views, view_path
from yilian.db import read_session, unit_of_work
from yilian.fhir import store
from yilian.security.models import AuditEvent

from .test_views import ALL, BP, ENCOUNTER, PATIENT

SHORT_ENCOUNTER = {
    "resourceType": "ViewDefinition",
    "name": "short_encounter",
    "title": "Encounters, short",
    "status": "active",
    "resource": "Encounter",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "patient_id", "path": "subject.getReferenceKey(Patient)", "type": "id"},
                {"name": "class_code", "path": "class.code", "type": "code"},
            ]
        }
    ],
}


def test_it_stores_a_view_definition_and_keeps_its_versions(admin: Any):
    created = admin.post("/fhir/ViewDefinition", json=SHORT_ENCOUNTER)
    assert created.status_code == 201, created.text
    vid = created.json()["id"]
    changed = copy.deepcopy(SHORT_ENCOUNTER) | {"id": vid}
    changed["select"][0]["column"].append({"name": "status", "path": "status"})
    updated = admin.put(f"/fhir/ViewDefinition/{vid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    history = admin.get(f"/fhir/ViewDefinition/{vid}/_history").json()
    assert history["total"] == 2
    found = admin.get("/fhir/ViewDefinition", params={"name": "short_encounter"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [vid]


def test_it_refuses_an_invalid_view_definition_naming_the_element(admin: Any):
    bad_path = copy.deepcopy(SHORT_ENCOUNTER)
    bad_path["select"][0]["column"][1]["path"] = "subject.("
    refused = admin.post("/fhir/ViewDefinition", json=bad_path)
    assert refused.status_code == 422  # like any resource that fails validation
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["ViewDefinition.select[0].column[1].path"]
    assert "FHIRPath" in issue["diagnostics"]

    no_status = {k: v for k, v in SHORT_ENCOUNTER.items() if k != "status"}
    assert admin.post("/fhir/ViewDefinition", json=no_status).json()["issue"][0]["expression"] == [
        "ViewDefinition.status"
    ]
    unknown = SHORT_ENCOUNTER | {"selects": []}
    assert admin.post("/fhir/ViewDefinition", json=unknown).json()["issue"][0]["expression"] == [
        "ViewDefinition.selects"
    ]


def test_only_an_administrator_writes_view_definitions_but_everyone_reads_them(admin: Any, doctor: Any):
    assert doctor.post("/fhir/ViewDefinition", json=SHORT_ENCOUNTER).status_code == 403
    vid = admin.post("/fhir/ViewDefinition", json=SHORT_ENCOUNTER).json()["id"]
    assert doctor.get(f"/fhir/ViewDefinition/{vid}").json()["name"] == "short_encounter"


def _seed(resources: list[dict]) -> None:
    with unit_of_work() as session:
        for r in resources:
            store.upsert(session, copy.deepcopy(r))


def test_it_lists_shipped_and_stored_views_with_their_columns(admin: Any):
    admin.post("/fhir/ViewDefinition", json=SHORT_ENCOUNTER)
    page = admin.get("/analytics/views", headers={"Cookie": "yilian_lang=zh"})
    assert page.status_code == 200
    assert "分析视图" in page.text and "医联内置" in page.text
    for name in [*catalogue.names(), "short_encounter"]:
        assert f'href="/analytics/views/{name}"' in page.text
    one = admin.get("/analytics/views/short_encounter", headers={"Cookie": "yilian_lang=en"})
    assert one.status_code == 200
    assert "class_code" in one.text and "subject.getReferenceKey(Patient)" in one.text
    assert admin.get("/analytics/views/no_such_view").status_code == 404


def test_the_preview_shows_rows_in_the_users_scope_and_audits_each_patient(admin: Any, doctor: Any, official: Any):
    _seed(ALL)
    seen = doctor.get("/analytics/views/encounter")
    assert seen.status_code == 200
    assert 'data-testid="view-preview"' in seen.text and "e1" in seen.text
    # officials work on aggregates: no person-level rows without a stated reason
    hidden = official.get("/analytics/views/encounter")
    assert hidden.status_code == 200
    assert 'data-testid="view-preview-empty"' in hidden.text and "e1" not in hidden.text
    with read_session() as session:
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "analytics.view_preview")).all()
    assert [(a.username, a.patient_ref, a.resource_ref) for a in audited] == [
        ("dr.views", "Patient/p1", "view/encounter")
    ]


def test_a_view_change_shows_up_in_the_materialised_table_after_materialize(
    admin: Any, tmp_path: Path, monkeypatch: Any
):
    _seed(ALL)
    with unit_of_work() as session:
        first = {o.name: o for o in materialize_views(session, root=tmp_path)}
    assert first["encounter"].rows == 1 and first["encounter"].mode == "full"
    assert first["observation"].rows == 3
    with read_session() as session:
        con = open_views(session)
    assert con.execute("SELECT id, class_code FROM encounter").fetchall() == [("e1", "IMP")]

    # the region redefines `encounter` in the store: the indicators' table follows after materialize
    redefined = copy.deepcopy(SHORT_ENCOUNTER) | {"name": "encounter"}
    redefined["select"][0]["column"][2] = {"name": "class_code", "path": "'class:' + class.code", "type": "string"}
    assert admin.post("/fhir/ViewDefinition", json=redefined).status_code == 201
    with unit_of_work() as session:
        second = {o.name: o for o in materialize_views(session, ["encounter", "observation"], root=tmp_path)}
    assert second["encounter"].mode == "full" and second["encounter"].source.startswith("ViewDefinition/")
    assert second["observation"].mode == "up to date"
    with read_session() as session:
        con = open_views(session)
    assert con.execute("SELECT * FROM encounter").fetchall() == [("e1", "p1", "class:IMP")]


def test_materialize_folds_in_only_what_changed(clean_db: Any, tmp_path: Path):
    _seed([PATIENT, ENCOUNTER, BP])
    with unit_of_work() as session:
        materialize_views(session, ["encounter", "observation"], root=tmp_path)
    second = copy.deepcopy(ENCOUNTER) | {"id": "e2", "class": {"code": "AMB"}}
    moved = copy.deepcopy(ENCOUNTER) | {"class": {"code": "EMER"}}
    _seed([second, moved])
    with unit_of_work() as session:
        store.delete(session, "Observation", "bp1")
    with unit_of_work() as session:
        again = {o.name: o for o in materialize_views(session, ["encounter", "observation"], root=tmp_path)}
        path = view_path(session, "encounter")
    assert again["encounter"].mode == "incremental" and again["observation"].mode == "incremental"
    con = duckdb.connect()
    assert sorted(con.execute(f"SELECT id, class_code FROM '{path}'").fetchall()) == [("e1", "EMER"), ("e2", "AMB")]
    assert again["observation"].rows == 0
    with unit_of_work() as session:
        nothing = materialize_views(session, ["encounter"], root=tmp_path)
    assert nothing[0].mode == "up to date" and nothing[0].rows == 2


def test_yilian_views_materialize_runs_from_the_store_and_names_an_unknown_view(clean_db: Any, tmp_path: Path):
    _seed(ALL)
    runner = CliRunner()
    done = runner.invoke(cli.app, ["materialize", "--view", "patient"])
    assert done.exit_code == 0, done.output
    assert "patient: 1 rows (full)" in done.output
    listed = runner.invoke(cli.app, ["registered"])
    assert listed.stdout.startswith("patient\t1\tshipped")
    unknown = runner.invoke(cli.app, ["materialize", "--view", "nope"])
    assert unknown.exit_code == 2 and "no view named 'nope'" in unknown.output


def test_yilian_views_list_shows_stored_views_beside_the_shipped_ones(admin: Any):
    vid = admin.post("/fhir/ViewDefinition", json=SHORT_ENCOUNTER).json()["id"]
    listed = CliRunner().invoke(cli.app, ["list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert lines["short_encounter"][1:3] == ["Encounter", f"ViewDefinition/{vid}/_history/1"]
    assert lines["patient"][2] == "shipped"


def test_a_compacted_snapshot_still_drops_the_rows_of_deleted_resources(clean_db: Any, tmp_path: Path):
    _seed([PATIENT, ENCOUNTER, BP])
    with unit_of_work() as session:
        materialize_views(session, ["encounter"], root=tmp_path)
    _seed([copy.deepcopy(ENCOUNTER) | {"id": "e2"}])
    with unit_of_work() as session:
        snapshot.take(session, tmp_path)
        store.delete(session, "Encounter", "e1")
    with unit_of_work() as session:
        snapshot.take(session, tmp_path)
    assert len(snapshot.parts(tmp_path)) == 3
    snapshot.compact(tmp_path)
    assert len(snapshot.parts(tmp_path)) == 1
    with unit_of_work() as session:
        [done] = materialize_views(session, ["encounter"], root=tmp_path)
        path = view_path(session, "encounter")
    assert done.mode == "incremental"
    assert duckdb.connect().execute(f"SELECT id FROM '{path}'").fetchall() == [("e2",)]
