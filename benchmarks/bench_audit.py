"""Benchmark: audit and reconcile over a 10M-row log (default), against a plain DuckDB
GROUP BY of the same log in the same run.

    python benchmarks/bench_audit.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import scratch_path, table


def build_log(db: Path, n: int) -> pl.DataFrame:
    """A plan of ``n`` dispatches over 60 days, 6 publishers, and a log of ``n`` attempts:
    ~91% of the dispatches attempted, every tenth of those twice; returns the plan."""
    from postback_lab import LogStore
    from postback_lab.plan import PLAN_SCHEMA, with_dispatch_ids

    d = n
    start = datetime(2026, 9, 1, tzinfo=UTC)
    i = pl.col("i")
    step = max(1, int(60 * 86400 * 1e6 / d))
    plan = pl.DataFrame({"i": pl.int_range(d, eager=True)}).select(
        pl.format("rule{}", i % 50).alias("rule"),
        pl.format("T{}", i).alias("transaction_id"),
        pl.lit("conversion").alias("event_type"),
        pl.lit("approved").alias("status"),
        (i % 5).cast(pl.String).alias("offer_id"),
        (i % 6).cast(pl.String).alias("publisher_id"),
        pl.lit("GET").alias("method"),
        pl.format("https://p{}.example/pb?t={}", i % 10, i).alias("url"),
        pl.lit(None, dtype=pl.String).alias("body"),
        pl.format("p{}.example", i % 10).alias("host"),
        (pl.lit(start) + pl.duration(microseconds=i * step)).alias("due_at"),
        pl.lit(None, dtype=pl.String).alias("headers"),
        pl.lit(None, dtype=pl.Float64).alias("timeout_s"),
    )
    plan = plan.with_columns(pl.col("due_at").alias("occurred_at"))
    # plan columns this log has no use for (added to the plan since) stay null: the
    # benchmark keeps up with the schema instead of naming every column
    plan = plan.with_columns(
        pl.lit(None, dtype=v).alias(k)
        for k, v in PLAN_SCHEMA.items()
        if k not in plan.columns and k != "dispatch_id"
    ).cast({k: v for k, v in PLAN_SCHEMA.items() if k != "dispatch_id"})
    plan = with_dispatch_ids(plan)
    attempted = plan.head(round(n / 1.1))  # + every tenth again = n log rows
    first = attempted.select(
        "dispatch_id",
        "rule",
        "transaction_id",
        "offer_id",
        "publisher_id",
        "method",
        "url",
        "host",
        "due_at",
        "status",
        pl.col("due_at").alias("fired_at"),
        pl.lit(1, dtype=pl.Int32).alias("attempt"),
        (pl.int_range(pl.len()) % 10 == 0).alias("fail"),
    )
    retry = first.filter("fail").with_columns(
        pl.lit(2, dtype=pl.Int32).alias("attempt"), pl.lit(False).alias("fail")
    )
    log = (
        pl.concat([first, retry])
        .with_columns(
            pl.lit("r").alias("run_id"),
            pl.when("fail").then(500).otherwise(200).cast(pl.Int32).alias("status_code"),
            pl.when("fail").then(pl.lit("failed")).otherwise(pl.lit("delivered")).alias("outcome"),
            pl.when("fail").then(pl.lit("HTTP 500")).alias("error"),
            (pl.int_range(pl.len()) % 97).cast(pl.Float64).alias("latency_ms"),
            pl.lit("sent").alias("source"),
        )
        .drop("fail")
    )
    with LogStore(db) as s:
        s.append(log, check_attempts=False)  # numbered above
    return plan


# One audit in a new Python process, right after the file is opened: what `postback-lab
# audit` and a fresh notebook kernel see (no DuckDB buffers warm yet).
_FRESH = """
import sys, time
from postback_lab.auditing import audit
t = time.perf_counter()
audit(sys.argv[1], by=["publisher_id", "day"])
print(time.perf_counter() - t)
"""


def fresh_process_audits(db: Path, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", _FRESH, str(db)], capture_output=True, text=True, check=True
        )
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--fresh", type=int, default=5, help="audits in new processes")
    a = ap.parse_args()
    from postback_lab import LogStore
    from postback_lab.auditing import DERIVED, audit
    from postback_lab.auditing._reconcile import reconcile_store

    db = scratch_path("bench.duckdb")
    t = time.perf_counter()
    plan = build_log(db, a.rows)
    setup = time.perf_counter() - t
    rows = [("step", "first s", "best of 3 s", "best ratio")]

    def timed(fn) -> tuple[float, float, object]:
        times, out = [], None
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return times[0], min(times), out

    with LogStore(db, read_only=True) as s:
        n = s.count()
        bare = timed(
            lambda: s.sql(
                f"SELECT publisher_id, {DERIVED['day']} AS day, count(*), "
                "count(*) FILTER (WHERE outcome <> 'delivered') FROM postback_log GROUP BY 1, 2"
            )
        )
        ours = timed(lambda: audit(s, by=["publisher_id", "day"]))
        report = ours[2]
        t = time.perf_counter()
        _ = report.status_codes, report.top_errors, report.timeline
        later = time.perf_counter() - t
        rec = timed(lambda: reconcile_store(plan, s))
    rows += [
        ("DuckDB GROUP BY publisher, day (baseline)", f"{bare[0]:.2f}", f"{bare[1]:.2f}", "1.00x"),
        (
            "audit(by=publisher_id, day)",
            f"{ours[0]:.2f}",
            f"{ours[1]:.2f}",
            f"{ours[1] / bare[1]:.2f}x",
        ),
        ("  + status codes, top errors, timeline (first use)", f"{later:.2f}", "", ""),
        (f"reconcile {plan.height:,}-row plan", f"{rec[0]:.2f}", f"{rec[1]:.2f}", ""),
    ]
    fresh = fresh_process_audits(db, a.fresh)
    if fresh:
        rows.append(
            (
                f"audit in {len(fresh)} new processes (open + audit), "
                f"median {statistics.median(fresh):.2f}",
                f"max {max(fresh):.2f}",
                f"min {min(fresh):.2f}",
                "",
            )
        )
    rec = rec[2]
    print(f"{n:,} log rows, {report.frame.height:,} groups (built in {setup:.1f}s)")
    print(table(rows))
    print(rec.summary())


if __name__ == "__main__":
    main()
