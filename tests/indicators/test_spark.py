"""The same indicator definitions on local Spark (Ibis's PySpark backend) give exactly DuckDB's results, to the row.

One local SparkSession for the whole test session (start-up costs 10–20 s on a quiet machine, far more on a loaded
one); the sets are computed on the hand-built region of conftest.py, whose DuckDB values test_engine.py checks by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indicators.conftest import AS_OF, region
from yilian.indicators import definitions, rules, service, snapshot
from yilian.indicators.engine import Engine

pytest.importorskip("pyspark")

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="session")
def spark_ibis() -> Iterator[Any]:
    import ibis

    from yilian.analytics import spark

    # local[1] and the kernel's small-session settings; UTC so that Spark does not shift the snapshot's local times
    conf = {**spark.SMALL, "spark.driver.memory": "512m", "spark.sql.session.timeZone": "UTC"}
    session = spark.session("yilian-test-indicators", master="local[1]", conf=conf)
    yield ibis.pyspark.connect(session)
    session.stop()


@pytest.mark.parametrize("set_id", ["referrals", "diagnostics"])
def test_spark_computes_a_set_with_exactly_duckdbs_results(spark_ibis: Any, tmp_path: Path, set_id: str) -> None:
    snap = snapshot.write(region(), tmp_path / "indicators", now=AS_OF)  # type: ignore[arg-type]
    duck = Engine(snap)
    iset = definitions.get_set(set_id)
    period = rules.parse_period("2026")
    scopes = service.resolve_scopes(duck, iset, "1410")
    expected = [r.as_dict() for r in duck.compute(iset, period, scopes)]
    got = [r.as_dict() for r in Engine(snap, spark_ibis).compute(iset, period, scopes)]
    assert got == expected  # every field of every indicator and county: values, parts, status, notes
    assert any(r["value"] not in (None, 0) for r in got)  # and the comparison is not between two empty sets
