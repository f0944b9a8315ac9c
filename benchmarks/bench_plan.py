"""Benchmark: ``postback-lab plan EVENTS.parquet --rules R -o PLAN.parquet`` against the
plan scripts an analyst would write by hand, all whole processes, same run.

    python benchmarks/bench_plan.py --rows 2000000 --rows 10000000 [--runs 3]

Contenders, each a fresh process that reads the events Parquet and writes the plan
Parquet: ``postback-lab plan`` (the CLI: read_events, build_plan, summary, write),
``write_plan`` (the plan written as it is built; buckets of transactions beyond its
bucket size), a hand-written Polars + DuckDB script (``_polars_plan.py``) and one
hand-written DuckDB SQL (``_duckdb_plan.py``). They run in turn (A B C D A B C D ...)
so a drift of the shared machine hits them alike; the table gives the medians, peak
RSS, and ratios against the hand-written scripts. The first run checks that every
contender wrote the same plan (same rows, URLs and dispatch ids).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._common import scratch_path, table  # noqa: E402


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process. Under GNU time when there is
    one: a child forked from this (large) process would report at least our RSS."""
    timer = Path("/usr/bin/time")
    if timer.exists():
        proc = subprocess.run(
            [str(timer), "-f", "TIME %e %M", *cmd],
            cwd=HERE.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        wall, kib = proc.stderr.strip().splitlines()[-1].split()[1:]
        return float(wall), int(kib) / 1024
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=HERE.parent, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def same_plan(ours: Path, other: Path, *, ordered: bool) -> bool:
    a, b = pl.read_parquet(ours), pl.read_parquet(other)
    if a.columns != b.columns or a.height != b.height:
        return False
    b = b.cast(a.schema)  # type: ignore[arg-type]
    if not ordered:
        a, b = a.sort("rule", "dispatch_id"), b.sort("rule", "dispatch_id")
    return a.equals(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, action="append", help="events (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    py = sys.executable
    cli = str(Path(py).parent / "postback-lab")
    out = [("events", "contender", "wall s", "peak RSS MiB", "vs Polars script", "vs DuckDB SQL")]
    for rows in a.rows or [1_000_000]:
        rules = scratch_path("postbacks.yaml")
        subprocess.run([py, "benchmarks/_plan_steps.py", "prepare", str(rows), rules], check=True)
        events = f"benchmarks/.data/events_{rows}.parquet"
        plans = {name: rules.with_name(f"{name}.parquet") for name in ("cli", "stream", "pl", "db")}
        contenders = {
            "postback-lab plan": [cli, "plan", events, "--rules", str(rules), "-o", plans["cli"]],
            "write_plan": [
                py,
                "benchmarks/_plan_steps.py",
                "stream",
                events,
                rules,
                plans["stream"],
            ],
            "Polars script": [py, "benchmarks/_polars_plan.py", events, rules, plans["pl"]],
            "DuckDB SQL": [py, "benchmarks/_duckdb_plan.py", events, rules, plans["db"]],
        }
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
        for i in range(a.runs):
            for name, cmd in contenders.items():
                got[name].append(run([str(c) for c in cmd]))
            if i == 0:
                checks = {
                    "write_plan": same_plan(plans["cli"], plans["stream"], ordered=True),
                    "Polars script": same_plan(plans["cli"], plans["pl"], ordered=True),
                    "DuckDB SQL": same_plan(plans["cli"], plans["db"], ordered=False),
                }
                plan_rows = pl.scan_parquet(plans["cli"]).select(pl.len()).collect().item()
                print(f"{rows:,} events -> {plan_rows:,} postbacks; same plan: {checks}")
        wall = {k: statistics.median(w for w, _ in v) for k, v in got.items()}
        peak = {k: statistics.median(m for _, m in v) for k, v in got.items()}
        for name in contenders:
            out.append(
                (
                    f"{rows:,}",
                    name,
                    f"{wall[name]:.2f}",
                    f"{peak[name]:,.0f}",
                    f"{wall[name] / wall['Polars script']:.2f}x time, "
                    f"{peak[name] / peak['Polars script']:.2f}x memory",
                    f"{wall[name] / wall['DuckDB SQL']:.2f}x time, "
                    f"{peak[name] / peak['DuckDB SQL']:.2f}x memory",
                )
            )
    print(table(out))
    print(f"medians of {a.runs} runs, each contender a whole process, run in turn")


if __name__ == "__main__":
    main()
