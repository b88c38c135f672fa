"""The shipped views, the Python API and the `yilian views` command on realistic resources."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from yilian.analytics import catalogue, cli
from yilian.analytics.compiler import compile_view
from yilian.analytics.runner import materialize, run_view
from yilian.errors import Invalid

DIVISION = "https://yilian.example.org/fhir/StructureDefinition/division-code"

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "gender": "female",
    "birthDate": "1956-03-02",
    "identifier": [{"system": "urn:yilian:sid:cn-resident-id", "value": "141002195603021239"}],
    "name": [{"use": "official", "family": "王", "given": ["秀英"], "text": "王秀英"}],
    "address": [
        {"use": "home", "text": "山西省临汾市尧都区解州镇", "extension": [{"url": DIVISION, "valueCode": "141002"}]}
    ],
    "managingOrganization": {
        "reference": "Organization/fac-9",
        "identifier": {"system": "urn:yilian:facility-code", "value": "141002100207"},
    },
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"code": "IMP"},
    "subject": {"reference": "Patient/p1"},
    "serviceProvider": {"reference": "Organization/fac-9"},
    "basedOn": [{"reference": "ServiceRequest/r1"}],
    "period": {"start": "2026-03-01T08:00:00+08:00", "end": "2026-03-06T10:00:00+08:00"},
    "hospitalization": {"dischargeDisposition": {"coding": [{"code": "other-hcf"}]}},
}
BP = {
    "resourceType": "Observation",
    "id": "bp1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-03-01T09:00:00+08:00",
    "component": [
        {"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 182, "unit": "mmHg"}},
        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 112, "unit": "mmHg"}},
    ],
}
HBA1C = {
    "resourceType": "Observation",
    "id": "lab1",
    "status": "final",
    "code": {"coding": [{"code": "4548-4"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-03-02",
    "valueQuantity": {"value": 8.1, "unit": "%"},
}
REFERRAL = {
    "resourceType": "ServiceRequest",
    "id": "r1",
    "status": "active",
    "intent": "order",
    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
    "subject": {"reference": "Patient/p1"},
    "requester": {"reference": "Organization/fac-2"},
    "performer": [{"reference": "Organization/fac-9"}],
    "authoredOn": "2026-02-28T16:00:00+08:00",
}
TASK = {
    "resourceType": "Task",
    "id": "t1",
    "status": "in-progress",
    "intent": "order",
    "businessStatus": {"coding": [{"code": "accepted"}]},
    "focus": {"reference": "ServiceRequest/r1"},
    "for": {"reference": "Patient/p1"},
    "owner": {"reference": "Organization/fac-9"},
    "lastModified": "2026-03-01T07:00:00+08:00",
}
ALL = [PATIENT, ENCOUNTER, BP, HBA1C, REFERRAL, TASK]


def test_it_ships_every_view_the_indicators_need_and_all_compile_to_sql():
    assert set(catalogue.names()) >= {
        "patient",
        "encounter",
        "condition",
        "observation",
        "procedure",
        "appointment",
        "diagnostic_report",
        "referral_request",
        "referral_task",
    }
    for name in catalogue.names():
        compiled = compile_view(catalogue.get(name))
        assert compiled.fallbacks == [], f"{name} needs the Python fallback"
        assert compiled.columns[0].name in ("id", "referral_id", "task_id")


def test_it_gives_a_patient_row_with_the_division_code_of_the_home_address():
    [row] = run_view(catalogue.get("patient"), ALL)
    assert row["id"] == "p1"
    assert row["division_code"] == "141002"
    assert row["resident_id_division"] == "141002"
    assert row["family_name"] == "王"
    assert row["managing_organization_id"] == "fac-9"
    assert row["managing_facility_code"] == "141002100207"  # joins the registry when the address has no division
    assert row["deceased"] is None


def test_it_splits_blood_pressure_into_systolic_and_diastolic_rows():
    rows = run_view(catalogue.get("observation"), ALL)
    by_code = {r["code"]: r for r in rows}
    assert set(by_code) == {"8480-6", "8462-4", "4548-4"}
    assert by_code["8480-6"]["value"] == 182 and by_code["8480-6"]["panel_code"] == "85354-9"
    assert by_code["8462-4"]["component_index"] == 1
    assert by_code["4548-4"]["component_index"] == -1 and by_code["4548-4"]["value"] == pytest.approx(8.1)


def test_it_joins_referral_requests_with_their_tasks_and_encounters():
    con = duckdb.connect()
    for name in ("referral_request", "referral_task", "encounter"):
        rows = run_view(catalogue.get(name), ALL)
        cols = list(rows[0])
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} VARCHAR' for c in cols)})")
        con.executemany(
            f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cols)})",
            [[str(r[c]) if r[c] is not None else None for c in cols] for r in rows],
        )
    joined = con.execute(
        "SELECT r.referral_id, r.requester_facility_id, t.business_status, e.id FROM referral_request r "
        "JOIN referral_task t USING (referral_id) JOIN encounter e ON e.referral_id = r.referral_id"
    ).fetchall()
    assert joined == [("r1", "fac-2", "accepted", "e1")]


def test_it_refuses_a_column_with_several_values_unless_it_is_a_collection():
    view = {"resource": "Patient", "select": [{"column": [{"name": "given", "path": "name.given | name.family"}]}]}
    with pytest.raises(Invalid) as refused:
        run_view(view, [PATIENT])
    assert "collection: true" in refused.value.message
    view["select"][0]["column"][0]["collection"] = True
    assert run_view(view, [PATIENT]) == [{"given": ["秀英", "王"]}]


def test_it_names_the_element_that_makes_a_view_invalid():
    with pytest.raises(Invalid) as bad_path:
        compile_view({"resource": "Patient", "select": [{"column": [{"name": "x", "path": "name.("}]}]})
    assert bad_path.value.field == "select[0].column[0].path"
    with pytest.raises(Invalid) as bad_constant:
        compile_view({"resource": "Patient", "select": [{"column": [{"name": "x", "path": "%nope"}]}]})
    assert "%nope" in bad_constant.value.message
    with pytest.raises(Invalid) as bad_name:
        compile_view({"resource": "Patient", "select": [{"column": [{"name": "1x", "path": "id"}]}]})
    assert bad_name.value.field == "select[0].column[0].name"


def test_it_explains_the_sql_and_which_columns_fall_back_to_python():
    view = {
        "resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "id"}, {"name": "n", "path": "name.given.distinct().count()"}]}],
    }
    compiled = compile_view(view)
    assert [f.field for f in compiled.fallbacks] == ["select[0].column[1].path"]
    text = compiled.explain()
    assert "fp_eval" in text and "SELECT" in text and "name.given.distinct().count()" in text
    assert run_view(compiled, [PATIENT]) == [{"id": "p1", "n": 1}]


def test_it_writes_json_csv_and_parquet_from_the_command(tmp_path: Path):
    data = tmp_path / "all.ndjson"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ALL) + "\n", encoding="utf-8")
    runner = CliRunner()
    as_json = runner.invoke(cli.app, ["run", "encounter", str(data)])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)[0]["class_code"] == "IMP"

    as_csv = runner.invoke(cli.app, ["run", "patient", str(data), "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["division_code"] == "141002" and row["name_text"] == "王秀英"

    out = tmp_path / "obs.parquet"
    as_parquet = runner.invoke(cli.app, ["run", "observation", str(data), "--format", "parquet", "--output", str(out)])
    assert as_parquet.exit_code == 0, as_parquet.output
    assert duckdb.connect().execute(f"SELECT count(*) FROM '{out}'").fetchone() == (3,)

    explain = runner.invoke(cli.app, ["run", "observation", "--explain"])
    assert explain.exit_code == 0 and "Python fallback: none" in explain.stdout

    no_output = runner.invoke(cli.app, ["run", "observation", str(data), "--format", "parquet"])
    assert no_output.exit_code == 2 and "--output" in no_output.output


def test_it_materialises_a_view_from_a_parquet_snapshot(tmp_path: Path):
    snapshot = tmp_path / "snapshot.parquet"
    con = duckdb.connect()
    con.execute("CREATE TABLE s (resource_type VARCHAR, resource VARCHAR)")
    con.executemany(
        "INSERT INTO s VALUES (?, ?)", [[r["resourceType"], json.dumps(r, ensure_ascii=False)] for r in ALL]
    )
    con.execute(f"COPY s TO '{snapshot}' (FORMAT parquet)")
    target = tmp_path / "views" / "encounter.parquet"
    assert materialize(catalogue.get("encounter"), [str(snapshot)], target) == 1
    assert con.execute(f"SELECT id, patient_id, referral_id FROM '{target}'").fetchall() == [("e1", "p1", "r1")]

    result = CliRunner().invoke(
        cli.app, ["materialize", str(snapshot), "--out", str(tmp_path / "all"), "--view", "patient"]
    )
    assert result.exit_code == 0, result.output
    assert con.execute(f"SELECT division_code FROM '{tmp_path / 'all' / 'patient.parquet'}'").fetchall() == [
        ("141002",)
    ]
