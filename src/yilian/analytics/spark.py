"""Run ViewDefinitions on PySpark (Spark SQL), for data that outgrows one machine.

The typed compiler (`typed.py`) emits Spark SQL with the same structure as its DuckDB SQL: `from_json` parses each
resource once into a STRUCT of the members the view reads, `transform`/`filter`/`flatten` walk lists, `explode`
turns a view's rows into rows. Views that need what the typed compiler does not cover (`repeat`, `join()`,
lowBoundary()/highBoundary(), forEach over primitive values, unions of complex values …) are refused with the reason;
they run on DuckDB only. PySpark is the optional extra `yilian[spark]`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yilian.analytics.compiler import KEY_COLUMN, CompiledView, Unsupported, compile_view
from yilian.analytics.dialect import SPARK
from yilian.analytics.typed import compile_typed
from yilian.errors import Invalid, Unavailable


def compile_spark(view: dict) -> CompiledView:
    """The view as Spark SQL over a relation `(resource_type STRING, resource STRING)`; Invalid when it cannot be."""
    compile_view(view)  # the same checks and messages as on DuckDB
    try:
        return compile_typed(view, SPARK)
    except Unsupported as exc:
        raise Invalid(
            f"view {view.get('name') or view.get('resource')!r} cannot run on Spark: {exc} "
            "(run it on DuckDB: yilian views run / materialize)",
            field="ViewDefinition",
        ) from exc


# For a small local session (tests, a laptop): tiny data, so compiling Java for each query and the JVM's optimising
# compiler cost more than they save; measured here, they made up most of a short run's time.
SMALL = {
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def session(app_name: str = "yilian-views", master: str = "local[*]", conf: dict[str, str] | None = None) -> Any:
    """A SparkSession with quiet logging and no web UI; Unavailable when PySpark is not installed."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable("PySpark is not installed: pip install 'yilian[spark]'") from exc
    builder = SparkSession.builder.master(master).appName(app_name).config("spark.ui.enabled", "false")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def register_ndjson(spark: Any, paths: Sequence[str | os.PathLike[str]], name: str = "resources") -> str:
    """NDJSON files as the temp view `name(resource_type, resource)`: each line kept as text, parsed per view."""
    files = [str(Path(p)) for p in paths]
    for f in files:
        if not Path(f).exists():
            raise Invalid(f"{f}: no such file", field=f)
    frame = spark.read.text(files).selectExpr(
        "get_json_object(value, '$.resourceType') AS resource_type", "value AS resource"
    )
    frame.createOrReplaceTempView(name)
    return name


def run_view(spark: Any, view: dict | CompiledView, relation: str = "resources", *, keyed: bool = False) -> Any:
    """The view's rows as a Spark DataFrame (lazy); keyed adds _resource_key, the id of each row's resource."""
    compiled = view if isinstance(view, CompiledView) else compile_spark(view)
    return spark.sql(compiled.sql(relation, keyed=keyed))


def materialize(spark: Any, view: dict, relation: str, target: str | os.PathLike[str]) -> int:
    """Write a view to a Parquet directory (Spark writes one file per partition); the number of rows written.

    The columns are those of `yilian views materialize` on DuckDB (with _resource_key), so the indicator engine
    reads either (`read_parquet('<target>/*.parquet')`)."""
    import pyarrow.parquet as pq

    run_view(spark, view, relation, keyed=True).write.mode("overwrite").parquet(str(target))
    # counted from the files' footers: a second Spark job would compute the view again
    return sum(pq.read_metadata(f).num_rows for f in Path(target).glob("*.parquet"))


__all__ = ["KEY_COLUMN", "compile_spark", "materialize", "register_ndjson", "run_view", "session"]
