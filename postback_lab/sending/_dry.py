"""A dry run at plan speed: no socket is opened, so nothing needs a task per postback.
Every dispatch left to send becomes one ``dry_run`` log row, built as columns and
appended in Arrow batches; its ``fired_at`` is when the run's per-host rate would have let
it go (a simulation of the limits; without ``rate``, now)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import polars as pl

from ..store import LogStore

BATCH = 250_000  # rows per append


def dry_run(
    store: LogStore,
    run_id: str,
    todo: pl.DataFrame,
    last: Mapping[str, int],
    now: datetime,
    rate: float | None,
) -> Counter[str]:
    """Log one ``dry_run`` attempt per row of ``todo`` (numbered after ``last``, the
    highest attempt each dispatch has); the count per host."""
    if todo.height == 0:
        return Counter()
    frame = todo.select(
        "dispatch_id",
        "rule",
        "transaction_id",
        "offer_id",
        "publisher_id",
        "method",
        "log_url",
        "host",
        "status",
        "due_at",
    )
    if last:
        done = pl.DataFrame(
            {"dispatch_id": list(last), "__last": list(last.values())},
            schema={"dispatch_id": pl.String, "__last": pl.Int32},
        )
        frame = frame.join(done, on="dispatch_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int32).alias("__last"))
    fired = pl.lit(now, dtype=pl.Datetime("us", "UTC"))
    if rate:  # the k-th postback of a host goes k / rate seconds after the first
        k = pl.col("due_at").rank("ordinal").over("host") - 1  # in due order, as sent
        fired = fired + pl.duration(microseconds=(k * (1_000_000 / rate)).cast(pl.Int64))
    rows = frame.select(
        "dispatch_id",
        pl.lit(run_id).alias("run_id"),
        (pl.col("__last").fill_null(0) + 1).cast(pl.Int32).alias("attempt"),
        "rule",
        "transaction_id",
        "offer_id",
        "publisher_id",
        "method",
        pl.col("log_url").alias("url"),
        "host",
        "status",
        "due_at",
        fired.alias("fired_at"),
        pl.lit(0.0).alias("latency_ms"),
        pl.lit(None, dtype=pl.Int32).alias("status_code"),
        pl.lit("dry_run").alias("outcome"),
        pl.lit(None, dtype=pl.String).alias("error"),
        pl.lit(None, dtype=pl.String).alias("response_body"),
        pl.lit("sent").alias("source"),
    )
    for batch in rows.iter_slices(BATCH):
        store.append(batch, check_attempts=False, mark=False)
    counts = rows.group_by("host", maintain_order=True).len()
    return Counter(dict(counts.iter_rows()))
