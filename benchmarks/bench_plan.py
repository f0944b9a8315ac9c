"""Benchmark: build_plan at N events x 50 rules against a hand-written DuckDB SQL and a
naive per-row Python evaluator (200k subset, extrapolated), each in its own process.

    python benchmarks/bench_plan.py --rows 1000000 --rows 10000000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, table
from benchmarks._plan_steps import prepare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, action="append", help="events (repeatable)")
    ap.add_argument("--skip-naive", action="store_true")
    a = ap.parse_args()
    out = [("events", "step", "seconds", "plan rows", "rows/s", "peak RSS MiB", "ratio")]
    for rows in a.rows or [1_000_000]:
        prepare(rows)
        ours = measure("benchmarks/_plan_steps.py", "ours", str(rows))
        sql = measure("benchmarks/_plan_steps.py", "duckdb", str(rows))
        steps = [("postback_lab", ours), ("duckdb SQL", sql)]
        if not a.skip_naive:
            steps.append(
                ("naive Python*", measure("benchmarks/_plan_steps.py", "naive", str(rows)))
            )
        for name, r in steps:
            out.append(
                (
                    f"{rows:,}",
                    name,
                    f"{r['seconds']:.2f}",
                    f"{r['plan_rows']:,}",
                    f"{ours['events'] / r['seconds']:,.0f}",
                    f"{r['peak_rss_mib']:,.0f}",
                    f"{r['seconds'] / ours['seconds']:.2f}x ours",
                )
            )
    print(table(out))
    print("* per-row Python measured on a 200k-event subset, extrapolated linearly")


if __name__ == "__main__":
    main()
