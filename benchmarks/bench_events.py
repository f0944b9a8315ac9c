"""Benchmark: read_events on a generated CSV (default 10M rows): wall time and peak RSS,
against a bare ``pl.read_csv`` of the same file in the same run.

    python benchmarks/bench_events.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    a = ap.parse_args()
    path = Path("benchmarks/.data") / f"events_{a.rows}.csv"
    if not path.exists():
        from postback_lab.sample import generate

        path.parent.mkdir(parents=True, exist_ok=True)
        generate(max(1, int(a.rows / 2.4)), seed=1).write_csv(path)
    ours = measure("benchmarks/_events_steps.py", "ours", str(path))
    bare = measure("benchmarks/_events_steps.py", "bare", str(path))
    rows = [("step", "seconds", "rows", "peak RSS MiB", "ratio")]
    for name, r in (("read_events", ours), ("pl.read_csv (strings)", bare)):
        rows.append(
            (
                name,
                f"{r['seconds']:.2f}",
                f"{r['rows']:,}",
                f"{r['peak_rss_mib']:,.0f}",
                f"{r['seconds'] / bare['seconds']:.2f}x bare",
            )
        )
    print(f"{path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    print(table(rows))


if __name__ == "__main__":
    main()
