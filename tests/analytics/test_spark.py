"""The shipped views on a local Spark (Spark SQL from the typed compiler) give exactly DuckDB's rows; and DuckDB's
typed engine gives exactly the JSON compiler's rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from yilian.analytics import catalogue, cli, spark, typed
from yilian.analytics.compiler import compile_view
from yilian.analytics.runner import connect, drop_source, execute, register_source
from yilian.errors import Invalid

from .test_views import ALL, DIVISION

MORE: list[dict[str, Any]] = [
    {
        "resourceType": "Patient",
        "id": "p2",
        "active": True,
        "gender": "male",
        "birthDate": "1948",
        "deceasedDateTime": "2026-01-05T03:00:00+08:00",
        "name": [{"use": "usual", "text": "老李"}, {"use": "official", "family": "李", "given": ["建国"]}],
        "address": [
            {"use": "work", "city": "太原市"},
            {"city": "临汾市", "district": "尧都区", "extension": [{"url": DIVISION, "valueCode": "141002"}]},
        ],
        "generalPractitioner": [{"reference": "Practitioner/d7"}, {"reference": "Practitioner/d8"}],
    },
    {"resourceType": "Patient", "id": "p3", "deceasedBoolean": False, "meta": {"lastUpdated": "2026-03-01T00:00:00Z"}},
    {
        "resourceType": "Encounter",
        "id": "e2",
        "status": "in-progress",
        "class": {"code": "AMB"},
        "type": [{"text": "no coding"}, {"coding": [{"code": "general"}, {"code": "second"}]}],
        "subject": {"reference": "http://other.example/fhir/Patient/p9/_history/2"},
        "participant": [{"type": [{"text": "x"}]}, {"individual": {"reference": "Practitioner/d1"}}],
        "diagnosis": [
            {"condition": {"reference": "Condition/c2"}, "rank": 2},
            {"condition": {"reference": "Condition/c1"}, "rank": 1},
        ],
        "reasonCode": [{"coding": [{"code": "I10"}]}],
        "period": {"start": "2026-03-03"},
    },
    {"resourceType": "Encounter", "id": "e3", "status": "planned", "subject": {"reference": "Group/g1"}},
    {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "category": [{"coding": [{"code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "subject": {"reference": "Patient/p2"},
        "encounter": {"reference": "Encounter/e2"},
        "performer": [{"reference": "Practitioner/d1"}, {"reference": "Organization/fac-3"}],
        "effectivePeriod": {"start": "2026-03-03T08:00:00Z", "end": "2026-03-03T09:00:00Z"},
        "valueCodeableConcept": {"coding": [{"code": "LA18978-9"}]},
        "interpretation": [{"coding": [{"code": "N"}]}],
    },
    {
        "resourceType": "Observation",
        "id": "o3",
        "status": "final",
        "valueString": "阴性",
        "issued": "2026-03-04T00:00:00Z",
    },
    {"resourceType": "Observation", "id": "o4", "status": "registered", "valueBoolean": True},
    {"resourceType": "Observation", "id": "o5", "status": "cancelled", "effectiveInstant": "2026-03-05T00:00:00Z"},
    {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "serviceType": [{"coding": [{"code": "cardiology"}]}],
        "start": "2026-03-09T08:00:00+08:00",
        "end": "2026-03-09T08:15:00+08:00",
        "minutesDuration": 15,
        "slot": [{"reference": "Slot/s1"}],
        "participant": [
            {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
            {"actor": {"reference": "Patient/p1"}, "status": "tentative"},
        ],
    },
    {"resourceType": "Appointment", "id": "a2", "status": "proposed", "participant": [{"status": "needs-action"}]},
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p2"},
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"},
                {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"},
            ]
        },
        "onsetDateTime": "2020-05-01",
        "recordedDate": "2020-05-02",
    },
    {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p2"}, "onsetString": "childhood"},
    {
        "resourceType": "DiagnosticReport",
        "id": "dr1",
        "status": "final",
        "code": {"coding": [{"code": "ECG"}]},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2026-03-02T10:00:00+08:00"},
        "performer": [{"reference": "Organization/fac-1"}],
        "resultsInterpreter": [{"reference": "Practitioner/d9"}],
        "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}],
        "extension": [
            {"url": "https://yilian.example.org/fhir/StructureDefinition/mutual-recognition", "valueBoolean": True}
        ],
    },
    {"resourceType": "DiagnosticReport", "id": "dr2", "status": "registered", "code": {"text": "CT"}},
    {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "urn:cn:icd-9-cm3", "code": "36.06", "display": "支架"}]},
        "performedPeriod": {"start": "2026-03-02T10:00:00+08:00", "end": "2026-03-02T11:30:00+08:00"},
        "performer": [{"actor": {"reference": "Practitioner/d2"}, "onBehalfOf": {"reference": "Organization/fac-9"}}],
        "extension": [{"url": "https://yilian.example.org/fhir/StructureDefinition/surgery-level", "valueInteger": 3}],
    },
    {"resourceType": "Procedure", "id": "pr2", "status": "not-done", "performedDateTime": "2026-03-03"},
    {
        "resourceType": "ServiceRequest",
        "id": "r2",
        "status": "completed",
        "intent": "proposal",
        "extension": [
            {"url": "https://yilian.example.org/fhir/StructureDefinition/referral-direction", "valueCode": "down"}
        ],
        "subject": {"reference": "Patient/p2"},
        "requester": {"reference": "Practitioner/d1"},
        "occurrencePeriod": {"start": "2026-04-01"},
    },
    {
        "resourceType": "Task",
        "id": "t2",
        "status": "requested",
        "intent": "order",
        "basedOn": [{"reference": "ServiceRequest/r2"}],
        "executionPeriod": {"start": "2026-04-01T09:00:00+08:00"},
        "extension": [
            {
                "url": "https://yilian.example.org/fhir/StructureDefinition/referral-acceptance-due",
                "valueDateTime": "2026-04-03T08:00:00+08:00",
            }
        ],
        "output": [{"type": {"text": "down-referral care plan"}, "valueReference": {"reference": "CarePlan/cp1"}}],
    },
    {
        "resourceType": "CarePlan",
        "id": "cp1",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p2"},
        "author": {"reference": "Organization/fac-9"},
        "period": {"start": "2026-04-10T10:00:00+08:00", "end": "2026-04-24T10:00:00+08:00"},
    },
    {"resourceType": "CarePlan", "id": "cp2", "status": "draft", "intent": "proposal"},
]
RESOURCES = ALL + MORE
VIEWS = tuple(catalogue.names())  # patient, encounter, observation and the rest


def _canon(rows: list[dict[str, Any]]) -> list[str]:
    def norm(v: Any) -> Any:
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return int(v)
        return v

    return sorted(json.dumps({k: norm(v) for k, v in r.items()}, sort_keys=True, ensure_ascii=False) for r in rows)


def _duckdb(view: dict, *, engine: str) -> list[dict[str, Any]]:
    compiled = compile_view(view)
    if engine == "typed":
        compiled = typed.compile_typed(view)
    con = connect()
    relation = register_source(con, RESOURCES)
    try:
        if engine == "json":
            # the JSON compiler on its own (execute() would pick the typed form)
            cur = con.execute(compiled.sql(relation, keyed=True))
            names = [d[0] for d in cur.description]
            return [
                {
                    n: json.loads(v) if t == "JSON" and v is not None else v
                    for n, v, t in zip(names, row, [*compiled.types, "VARCHAR"], strict=True)
                }
                for row in cur.fetchall()
            ]
        return execute(con, compiled, relation, keyed=True)
    finally:
        drop_source(con, relation)
        con.close()


@pytest.mark.parametrize("name", catalogue.names())
def test_the_typed_engine_gives_the_json_compilers_rows(name: str):
    view = catalogue.get(name)
    json_rows = _duckdb(view, engine="json")
    assert json_rows, f"{name}: the fixture should give rows"
    try:
        typed_rows = _duckdb(view, engine="typed")
    except typed.Unsupported:
        pytest.skip(f"{name} runs on the JSON compiler only")
    assert _canon(typed_rows) == _canon(json_rows)


@pytest.fixture(scope="session")
def local_spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    pytest.importorskip("pyspark", reason="PySpark is the optional extra yilian[spark]")
    session = spark.session("yilian-test-views", master="local[1]", conf=spark.SMALL)
    data = tmp_path_factory.mktemp("spark") / "resources.ndjson"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RESOURCES) + "\n", encoding="utf-8")
    relation = spark.register_ndjson(session, [data], "resources_fixture")
    yield session, relation
    session.stop()


@pytest.mark.spark
def test_spark_materialises_the_shipped_views_with_exactly_duckdbs_rows(local_spark: tuple[Any, str], tmp_path: Path):
    session, relation = local_spark
    for name in VIEWS:
        view = catalogue.get(name)
        target = tmp_path / name
        written = spark.materialize(session, view, relation, target)
        # read back the way the indicator engine reads a materialised view: DuckDB over the Parquet files
        cur = duckdb.connect().execute(f"SELECT * FROM read_parquet('{target}/*.parquet')")
        on_spark = [dict(zip([d[0] for d in cur.description], row, strict=True)) for row in cur.fetchall()]
        on_duckdb = _duckdb(view, engine="typed")
        assert written == len(on_duckdb), name
        assert _canon(on_spark) == _canon(on_duckdb), name
        assert _canon(on_duckdb) == _canon(_duckdb(view, engine="json")), name
    by_id = {r["id"]: r for r in _duckdb(catalogue.get("patient"), engine="typed")}
    assert by_id["p2"]["division_code"] == "141002" and by_id["p2"]["deceased"] is True


def test_spark_refuses_a_view_it_cannot_run_with_the_reason():
    view = {"resource": "Patient", "select": [{"repeat": ["link"], "column": [{"name": "x", "path": "id"}]}]}
    with pytest.raises(Invalid) as refused:
        spark.compile_spark(view)
    assert "repeat" in refused.value.message and "DuckDB" in refused.value.message


def test_yilian_views_explain_prints_the_spark_sql_or_why_not(tmp_path: Path):
    runner = CliRunner()
    shown = runner.invoke(cli.app, ["explain", "encounter", "--spark"])
    assert shown.exit_code == 0, shown.output
    assert "from_json(resource, 'STRUCT<" in shown.stdout and "transform(" in shown.stdout
    given_names = tmp_path / "given.json"
    given_names.write_text(
        json.dumps(
            {"resource": "Patient", "select": [{"forEach": "name.given", "column": [{"name": "g", "path": "$this"}]}]}
        )
    )
    refused = runner.invoke(cli.app, ["explain", str(given_names), "--spark"])
    assert refused.exit_code == 2 and "cannot run on Spark" in refused.output and "primitive" in refused.output
