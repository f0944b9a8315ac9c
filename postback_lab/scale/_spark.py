"""``engine="spark"``: the same per-bucket planning under ``groupBy(bucket).applyInArrow``.

Spark reads the events (Parquet, any filesystem it reads), buckets them by a hash of
``transaction_id``, and each bucket is planned in a Python worker by ``plan_bucket``, the
same code as one process runs; the plan goes back out as Parquet. No SQL re-expression
of the rules: Spark's own ``url_encode`` is Java form encoding (space as ``+``), not the
plan's percent-encoding.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from .._errors import InputError
from ..events import SCHEMA
from ..rules import RuleSet
from ._bucket import BUCKET, PLAN_ARROW, ROW_NR, as_plain_arrow, plan_bucket, sum_counts
from ._output import PartitionedPlan

_FILE, _ROW = "__file", "__row"
#: the rows a bucket sends back: plan rows, then (rule, reason, events) count rows
OUT = pa.schema([*PLAN_ARROW, pa.field("__reason", pa.string()), pa.field("__events", pa.int64())])


def spark_session(app: str = "postback-lab plan") -> Any:
    """The active SparkSession, or a new one (``local[*]`` unless ``spark-submit`` or
    the environment says otherwise) with what planning needs: UTC session time,
    microsecond Parquet timestamps, Arrow, and this Python for the workers."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "--engine spark needs pyspark (and Java 17+): pip install 'postback-lab[spark]'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


#: settings the planning relies on (a session built elsewhere should have them too)
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def plan_spark(
    events: Any,
    rules: RuleSet,
    output: str,
    *,
    partitions: int | None = None,
    spark: Any = None,
) -> PartitionedPlan:
    """Plan Parquet ``events`` (paths or URIs) on Spark in ``partitions`` buckets (default:
    the session's shuffle partitions) and write the plan as Parquet under ``output``."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.perf_counter()
    spark = spark or spark_session()
    for key, value in SPARK_CONF.items():
        spark.conf.set(key, value)
    paths = [str(events)] if isinstance(events, (str, os.PathLike)) else [str(e) for e in events]
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    df = spark.read.parquet(*paths)
    if "transaction_id" not in df.columns:
        raise InputError(
            f"{', '.join(paths)}: --engine spark reads events with the canonical columns "
            "(transaction_id, occurred_at, …); write them once with read_events(...).frame"
        )
    df = df.select(
        "*",
        F.col("_metadata.file_path").alias(_FILE),
        F.col("_metadata.row_index").alias(_ROW),
        F.pmod(F.xxhash64("transaction_id"), F.lit(n)).alias(BUCKET),
    )
    out = df.groupBy(BUCKET).applyInArrow(_bucket_function(rules), from_arrow_schema(OUT))
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        plan = out.filter(F.col("__reason").isNull()).drop("__reason", "__events")
        plan.write.mode("overwrite").parquet(output)
        counts = [
            pl.DataFrame(
                [
                    (r["rule"], r["__reason"], r["__events"])
                    for r in out.filter(F.col("__reason").isNotNull())
                    .groupBy("rule", "__reason")
                    .agg(F.sum("__events").alias("__events"))
                    .collect()
                ],
                schema={"rule": pl.String, "reason": pl.String, "events": pl.Int64},
                orient="row",
            )
        ]
        stats = plan.groupBy("rule").agg(
            F.count("*").alias("dispatches"),
            F.min("host").alias("host"),
            F.min("due_at").alias("first_due"),
            F.max("due_at").alias("last_due"),
        )
        per_rule = pl.from_arrow(stats.toArrow())
        hosts = int(plan.select(F.countDistinct("host")).collect()[0][0])
        parts = len(spark.read.parquet(output).inputFiles())
    finally:
        out.unpersist()
    assert isinstance(per_rule, pl.DataFrame)
    per_rule = per_rule.with_columns(
        pl.col("dispatches").cast(pl.UInt32),
        pl.col("first_due", "last_due").dt.replace_time_zone(None).dt.replace_time_zone("UTC"),
    )
    return PartitionedPlan(
        path=output,
        rows=int(per_rule["dispatches"].sum()),
        parts=parts,
        explanation=sum_counts(counts, rules),
        per_rule=per_rule,
        hosts=hosts,
        engine="spark",
        seconds=time.perf_counter() - started,
    )


def _bucket_function(rules: RuleSet) -> Callable[[pa.Table], pa.Table]:
    """The function each bucket goes through in a Spark Python worker."""

    def plan_one(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.sort(_FILE, _ROW).drop(_FILE, _ROW, BUCKET)
        frame = frame.with_columns(
            pl.lit(None, dtype=dt).alias(c) for c, dt in SCHEMA.items() if c not in frame.columns
        )
        frame = frame.with_columns(_canonical(c, frame.schema[c], dt) for c, dt in SCHEMA.items())
        plan, counts = plan_bucket(frame.with_row_index(ROW_NR), rules)
        rows = as_plain_arrow(plan).cast(PLAN_ARROW)
        n = counts.height
        tail = pa.table(
            {
                **{f.name: pa.nulls(n, f.type) for f in PLAN_ARROW if f.name != "rule"},
                "rule": pa.array(counts["rule"].to_list(), pa.string()),
                "__reason": pa.array(counts["reason"].to_list(), pa.string()),
                "__events": pa.array(counts["events"].to_list(), pa.int64()),
            }
        ).select(OUT.names)
        head = rows.append_column("__reason", pa.nulls(rows.num_rows, pa.string())).append_column(
            "__events", pa.nulls(rows.num_rows, pa.int64())
        )
        return pa.concat_tables([head.cast(OUT), tail.cast(OUT)])

    return plan_one


def _canonical(column: str, have: pl.DataType, want: pl.DataType) -> pl.Expr:
    """A column as the events frame types it; times in microseconds, in UTC whatever zone
    Spark handed them in (a time without a zone is UTC)."""
    c = pl.col(column)
    if isinstance(want, pl.Datetime) and isinstance(have, pl.Datetime):
        c = c.dt.cast_time_unit("us")
        return c.dt.convert_time_zone("UTC") if have.time_zone else c.dt.replace_time_zone("UTC")
    return c.cast(want)
