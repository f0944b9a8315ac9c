"""``plan_partitioned``: the plan of many events in buckets, on a local process pool or on
Spark, written as Parquet parts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from .._errors import InputError
from ..events import Events, read_events
from ..plan import parquet_files
from ..rules import RuleSet, read_rules
from ._output import PartitionedPlan

Engine = Literal["local", "spark"]
ENGINES = ("local", "spark")


def plan_partitioned(
    events: Any,
    rules: Any,
    output: str | Path,
    *,
    engine: Engine = "local",
    partitions: int | None = None,
    workers: int | None = None,
    spark: Any = None,
    where: Sequence[pl.Expr] = (),
    **read_options: Any,
) -> PartitionedPlan:
    """Plan ``events`` in buckets of whole transactions and write the plan as Parquet
    parts in ``output``; the parts together are exactly ``build_plan(events, rules)``.

    ``engine="local"``: DuckDB buckets the events by a hash of ``transaction_id``, a pool
    of ``workers`` processes (one per core by default) plans the ``partitions`` buckets
    (default: one per worker; more buckets, less memory per worker). ``events`` is
    anything ``read_events`` reads (with ``read_options`` such as ``preset=``). Parquet
    files are read by the pool itself, a slice at a time, straight into the buckets: this
    process never holds the events, and the result carries their ``quarantine`` and
    ``notes``.

    ``where``: only the plan rows these Polars predicates keep, as ``Plan.filter`` keeps
    them (``pl.col("due_at") >= since``, ``pl.col("rule").is_in([...])``); the explain
    counts stay those of every event.

    ``engine="spark"`` (extra ``[spark]``): the same reading (``read_options`` too) and
    the same planning per bucket under ``groupBy(bucket).applyInArrow`` on ``spark`` (a
    SparkSession; the active one by default). ``events`` are Parquet paths or URIs Spark
    reads; ``output`` any folder or URI Spark writes.
    """
    if engine not in ENGINES:
        raise InputError(f"engine={engine!r} is not one of {', '.join(map(repr, ENGINES))}")
    if partitions is not None and (
        not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1
    ):
        raise InputError(f"partitions={partitions!r} must be a whole number >= 1")
    rs = rules if isinstance(rules, RuleSet) else read_rules(rules)
    if engine == "spark":
        from ._spark import plan_spark

        return plan_spark(
            events, rs, str(output), partitions=partitions, spark=spark, where=where, **read_options
        )
    from ._local import default_workers, plan_local, plan_local_files

    n = default_workers(workers)
    files = None if isinstance(events, Events) else parquet_files(events)
    if files:
        return plan_local_files(
            files, rs, output, partitions=partitions or n, workers=n, where=where, **read_options
        )
    ev = events if isinstance(events, Events) else read_events(events, **read_options)
    return plan_local(ev, rs, output, partitions=partitions or n, workers=n, where=where)
