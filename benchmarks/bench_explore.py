"""Benchmark: one explorer re-query (KPIs, page, daily chart data) over a 1M-row log,
against a bare DuckDB count over the same rows in the same run.

    python benchmarks/bench_explore.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import scratch_path, table
from benchmarks.bench_audit import build_log


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    from postback_lab import LogStore
    from postback_lab.notebook._explore import Explorer

    db = scratch_path("bench.duckdb")
    build_log(db, a.rows)
    with LogStore(db) as store:
        ex = Explorer(store)
        changes = [
            ("publisher_id", ("1",)),
            ("outcome", ("failed",)),
            ("rule", ("rule7",)),
            ("outcome", ()),
            ("publisher_id", ()),
            ("rule", ()),
        ]
        times, bare = [], []
        for col, value in changes * 3:
            t = time.perf_counter()
            ex.filters[col].value = value  # observe -> refresh: KPIs and the table page
            ex._chart()  # and the chart (drawn only inside a kernel): its query and spec
            times.append(time.perf_counter() - t)
            cond, params = ex.where()
            t = time.perf_counter()
            store.sql(f"SELECT count(*) FROM postback_log WHERE {cond}", params)
            bare.append(time.perf_counter() - t)
        n = store.count()
    med, worst, b = statistics.median(times), max(times), statistics.median(bare)
    print(f"{n:,} log rows, {len(times)} filter changes")
    print(
        table(
            [
                ("step", "median ms", "max ms", "ratio"),
                (
                    "explorer refresh (3 queries + chart)",
                    f"{med * 1000:.0f}",
                    f"{worst * 1000:.0f}",
                    f"{med / b:.1f}x",
                ),
                (
                    "bare DuckDB count(*) with the same filter",
                    f"{b * 1000:.0f}",
                    f"{max(bare) * 1000:.0f}",
                    "1.0x",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
