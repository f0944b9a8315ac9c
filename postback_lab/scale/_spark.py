"""``engine="spark"``: the same reading and per-bucket planning under Spark.

Spark reads the events (Parquet, any filesystem it reads); ``mapInArrow`` reads each
task's rows with ``read_numbered`` (the reading options of ``read_events``: presets,
column mapping, time zone, status spellings, quarantine with each row's file and line);
the events are bucketed by a hash of ``transaction_id`` and each bucket is planned in a
Python worker by ``plan_bucket``, the same code as one process runs; the plan goes back
out as Parquet. No SQL re-expression
of the rules: Spark's own ``url_encode`` is Java form encoding (space as ``+``), not the
plan's percent-encoding.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import polars as pl
import pyarrow as pa

from .._errors import EventsError, InputError
from ..events import (
    QUARANTINE_SCHEMA,
    SCHEMA,
    Events,
    all_quarantined,
    read_numbered,
    unknown_statuses,
)
from ..rules import RuleSet
from ._bucket import (
    BUCKET,
    PLAN_ARROW,
    ROW_NR,
    as_plain_arrow,
    plain_schema,
    plan_bucket,
    sum_counts,
)
from ._output import PartitionedPlan

#: each row's file (as Spark names it), its place in the input files, its line (1-based)
_FILE, _FILENO, _ROW = "__file", "__fileno", "__row"
#: what a row read by ``mapInArrow`` is (e event, q quarantined, n a note), and its text
_KIND, _REASON, _RAW = "__kind", "__reason", "__raw"
#: files Spark cannot read as Parquet: plan them without --engine or with --engine local
_NOT_PARQUET = (".csv", ".tsv", ".txt", ".json", ".ndjson", ".jsonl", ".gz", ".zip", ".duckdb")
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
    where: Sequence[pl.Expr] = (),
    **read_options: Any,
) -> PartitionedPlan:
    """Plan Parquet ``events`` (paths or URIs) on Spark in ``partitions`` buckets (default:
    the session's shuffle partitions) and write the plan as Parquet under ``output``.
    ``read_options`` are those of ``read_events`` (``preset=``, ``rename=``,
    ``timezone=``, ``status_map=``, ``ignore_status=`` …): the events, their quarantine
    and notes are what ``read_events`` of the files gives."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    spark = spark or spark_session()
    for key, value in SPARK_CONF.items():
        spark.conf.set(key, value)
    paths = _paths(events)
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    order = {f: i for i, f in enumerate(_input_files(spark, paths))}
    raw = spark.read.parquet(*paths)
    head = _head(raw, paths, read_options)
    columns = [c for c in head.frame.columns if c != _ROW]
    read_schema = plain_schema(head.frame.to_arrow().schema.append(pa.field(_FILENO, pa.int64())))
    for name in (_FILE, _KIND, _REASON, _RAW):
        read_schema = read_schema.append(pa.field(name, pa.string()))
    rows = raw.select(
        "*",
        F.col("_metadata.file_path").alias(_FILE),
        (F.col("_metadata.row_index") + 1).alias(_ROW),
    ).mapInArrow(_read_function(read_options, order, read_schema), _spark_schema(read_schema))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    out = None
    try:
        quarantine, notes = _quarantine_and_notes(rows)
        _check_files(rows, quarantine, notes)
        read = rows.filter(F.col(_KIND) == "e").select(*columns, _FILENO, _ROW)
        read = read.withColumn(BUCKET, F.pmod(F.xxhash64("transaction_id"), F.lit(n)))
        out = read.groupBy(BUCKET).applyInArrow(_bucket_function(rules, where), _spark_schema(OUT))
        out = out.persist(StorageLevel.MEMORY_AND_DISK)
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
        if out is not None:
            out.unpersist()
        rows.unpersist()
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
        quarantine=quarantine,
        notes=notes,
    )


def spark_event_columns(events: Any, *, spark: Any = None, **read_options: Any) -> list[str]:
    """The columns ``plan_spark`` reads Parquet ``events`` into (canonical, then extras),
    from the files' schema alone: check the rules against them before planning
    (``read_rules(..., event_columns=...)``). A mapping that cannot work fails here."""
    paths = _paths(events)
    head = _head((spark or spark_session()).read.parquet(*paths), paths, read_options)
    return [c for c in head.frame.columns if c != _ROW]


def _paths(events: Any) -> list[str]:
    """The paths or URIs of ``events``; a file Spark cannot read as Parquet is refused."""
    paths = [str(events)] if isinstance(events, (str, os.PathLike)) else [str(e) for e in events]
    for p in paths:
        if p.startswith("duckdb:") or p.lower().endswith(_NOT_PARQUET):
            raise InputError(
                f"{p}: --engine spark reads Parquet events (paths or URIs); plan it without "
                "--engine or with --engine local, or write it as Parquet first"
            )
    return paths


def _head(raw: Any, paths: list[str], read_options: dict[str, Any]) -> Events:
    """No rows of the Spark frame ``raw``, read as ``read_numbered`` reads a task's rows:
    the columns and types the events will have (a wrong mapping fails here, once)."""
    empty = pl.from_arrow(raw.limit(0).toArrow())
    assert isinstance(empty, pl.DataFrame)
    empty = empty.with_columns(pl.lit(None, pl.Int64).alias(_ROW))
    return read_numbered(empty, ", ".join(paths), _ROW, **read_options)


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _input_files(spark: Any, paths: list[str]) -> list[str]:
    """The files of ``paths`` as Spark names them, in the order ``read_events`` reads
    them: the paths in their order, the files of a folder or glob by name."""
    out: dict[str, None] = {}
    for p in paths:
        out.update(dict.fromkeys(sorted(spark.read.parquet(p).inputFiles())))
    return list(out)


def _label(uri: str) -> str:
    """A file as the quarantine and notes name it: a local path for ``file:`` URIs."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


def _read_function(
    options: dict[str, Any], order: dict[str, int], schema: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function a Spark task's rows go through: each file's rows read with
    ``read_numbered``; out come the events (kind ``e``), the quarantined rows (``q``: the
    reason and the raw cells) and the notes (``n``)."""
    names = [f.name for f in schema]

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            for (uri,), part in frame.partition_by(
                _FILE, as_dict=True, maintain_order=True
            ).items():
                label = _label(str(uri))
                ev = read_numbered(part.drop(_FILE), label, _ROW, **options)
                pieces = [
                    ev.frame.with_columns(pl.lit("e").alias(_KIND)),
                    ev.quarantine.select(
                        pl.col("line").alias(_ROW),
                        pl.lit("q").alias(_KIND),
                        pl.col("reason").alias(_REASON),
                        pl.col("raw").alias(_RAW),
                    ),
                    pl.DataFrame(
                        {_REASON: list(ev.notes)}, schema={_REASON: pl.String}
                    ).with_columns(pl.lit("n").alias(_KIND)),
                ]
                out = pl.concat(pieces, how="diagonal_relaxed").with_columns(
                    pl.lit(label).alias(_FILE),
                    pl.lit(order.get(str(uri), len(order)), pl.Int64).alias(_FILENO),
                )
                for name in names:
                    if name not in out.columns:
                        out = out.with_columns(pl.lit(None).alias(name))
                table = as_plain_arrow(out.select(names)).cast(schema)
                yield from table.to_batches()

    return read


def _quarantine_and_notes(rows: Any) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The quarantine (files in input order, then lines) and the notes of every task, as
    one ``read_events`` of the files gives them: each note once, counts of ignored rows
    added up, unknown statuses counted over all files."""
    from pyspark.sql import functions as F

    side = pl.from_arrow(
        rows.filter(F.col(_KIND) != "e")
        .select(_FILE, _FILENO, _ROW, _KIND, _REASON, _RAW)
        .toArrow()
    )
    assert isinstance(side, pl.DataFrame)
    q = (
        side.filter(pl.col(_KIND) == "q")
        .sort(_FILENO, _ROW)
        .select(
            pl.col(_FILE).alias("source"),
            pl.col(_ROW).cast(pl.Int64).alias("line"),
            pl.col(_REASON).alias("reason"),
            pl.col(_RAW).alias("raw"),
        )
        .cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
    )
    said = side.filter(pl.col(_KIND) == "n").sort(_FILENO, maintain_order=True)[_REASON]
    return q, (*_added_up(said.to_list()), *unknown_statuses(q))


_IGNORED = re.compile(r"^(.*): ([\d,]+) rows? with an ignored status \((.*)\) left out$")


def _added_up(notes: list[str]) -> list[str]:
    """Notes once each; the rows with an ignored status of a file, added up over its
    tasks (each task says how many of its own rows it left out)."""
    out: dict[str, int | None] = {}
    for note in notes:
        m = _IGNORED.match(note)
        if m is None:
            out.setdefault(note, None)
            continue
        key = f"{m.group(1)}\0{m.group(3)}"
        out[key] = (out.get(key) or 0) + int(m.group(2).replace(",", ""))
    said = []
    for key, count in out.items():
        if count is None:
            said.append(key)
            continue
        label, statuses = key.split("\0")
        said.append(
            f"{label}: {count:,} row{'s' if count != 1 else ''} with an ignored status "
            f"({statuses}) left out"
        )
    return said


def _check_files(rows: Any, quarantine: pl.DataFrame, notes: tuple[str, ...]) -> None:
    """A file whose every row was quarantined is the EventsError ``read_events`` raises
    (the mapping is wrong, not the data)."""
    from pyspark.sql import functions as F

    if quarantine.height == 0:
        return
    labels = quarantine["source"].unique(maintain_order=True).to_list()
    good = {
        r[0]
        for r in rows.filter((F.col(_KIND) == "e") & F.col(_FILE).isin(labels))
        .select(_FILE)
        .distinct()
        .collect()
    }
    for label in labels:
        if label not in good:
            bad = quarantine.filter(pl.col("source") == label)
            mine = [n for n in notes if n.startswith(f"{label}: ")]
            raise EventsError(all_quarantined(label, bad, mine))


def _bucket_function(
    rules: RuleSet, where: Sequence[pl.Expr] = ()
) -> Callable[[pa.Table], pa.Table]:
    """The function each bucket goes through in a Spark Python worker."""

    def plan_one(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.sort(_FILENO, _ROW).drop(_FILENO, _ROW, BUCKET)
        frame = frame.with_columns(
            pl.lit(None, dtype=dt).alias(c) for c, dt in SCHEMA.items() if c not in frame.columns
        )
        frame = frame.with_columns(_canonical(c, frame.schema[c], dt) for c, dt in SCHEMA.items())
        plan, counts = plan_bucket(frame.with_row_index(ROW_NR), rules, where)
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
