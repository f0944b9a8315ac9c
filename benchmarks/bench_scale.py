"""Benchmark: planning N events x 50 rules in one process vs engine="local" (buckets on a
process per core; peak memory per worker) vs engine="spark" (local[2]); and sending one
plan to 4 hosts as 1 shard vs 2 shards (whole `postback-lab send` processes, at once).

    python benchmarks/bench_scale.py --rows 20000000 [--partitions 4] [--skip-spark]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, scratch_path, table
from benchmarks._plan_steps import prepare
from benchmarks.bench_send import free_ports, start_server

CLI = [sys.executable, "-m", "postback_lab.cli"]


def planning(rows: int, partitions: int, skip_spark: bool) -> None:
    prepare(rows)
    out = scratch_path("plan")
    res = {"one process": measure("benchmarks/_scale_steps.py", "one", str(rows), f"{out}.parquet")}
    res[f"local, {partitions} buckets"] = measure(
        "benchmarks/_scale_steps.py", "local", str(rows), f"{out}-local", str(partitions)
    )
    if not skip_spark:
        res["spark local[2]"] = measure(
            "benchmarks/_scale_steps.py", "spark", str(rows), f"{out}-spark", str(partitions)
        )
    base = res["one process"]
    rows_out = [
        ("engine", "seconds", "vs one", "plan rows", "peak RSS MiB", "worker peak MiB", "same plan")
    ]
    for name, r in res.items():
        extra = f" (+{r['jvm_start_seconds']:.0f} s JVM start)" if "jvm_start_seconds" in r else ""
        rows_out.append(
            (
                name,
                f"{r['seconds']:.1f}{extra}",
                f"{r['seconds'] / base['seconds']:.2f}x",
                f"{r['plan_rows']:,}",
                f"{r['peak_rss_mib']:,.0f}",
                f"{r['worker_peak_mib']:,.0f}" if r.get("worker_peak_mib") else "-",
                "yes" if r["fingerprint"] == base["fingerprint"] else "NO",
            )
        )
    print(f"planning {rows:,} events x 50 rules ({os.cpu_count()} cores)")
    print(table(rows_out))
    print("peak RSS is the driver process's (for spark: the Python driver, not the JVM)\n")


def sending(n: int) -> None:
    """1 shard vs 2 shards of a plan to 4 hosts on a fast local server."""
    from benchmarks._send_steps import make_plan

    ports = free_ports(4)
    folder = scratch_path("send")
    folder.mkdir()
    make_plan(n, ports).write_parquet(folder / "plan.parquet")
    server = start_server(ports)
    try:
        out = [("shards", "seconds", "postbacks/s", "vs 1 shard")]
        base = None
        for shards in (1, 2):
            for db in folder.glob("*.duckdb*"):
                db.unlink()
            argv = [
                [
                    *CLI,
                    "send",
                    str(folder / "plan.parquet"),
                    "--no-progress",
                    "--workers",  # one process per shard: what sharding itself buys
                    "1",
                    "--db",
                    str(folder / f"s{k}.duckdb"),
                ]
                + (["--shard", f"{k}/{shards}"] if shards > 1 else [])
                for k in range(1, shards + 1)
            ]
            t = time.perf_counter()
            procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL) for a in argv]
            codes = [p.wait() for p in procs]
            seconds = time.perf_counter() - t
            assert codes == [0] * shards, codes
            base = base or seconds
            out.append(
                (str(shards), f"{seconds:.2f}", f"{n / seconds:,.0f}", f"{base / seconds:.2f}x")
            )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"sending {n:,} postbacks to 4 hosts, whole processes started at once")
    print(table(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--sends", type=int, default=40_000)
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-plan", action="store_true")
    a = ap.parse_args()
    if not a.skip_plan:
        planning(a.rows, a.partitions, a.skip_spark)
    sending(a.sends)


if __name__ == "__main__":
    main()
