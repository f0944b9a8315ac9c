"""Steps measured by bench_scale.py, each run in its own process (see _common.measure)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._plan_steps import data_path, rules


def peak_mib() -> float:
    """This process's peak RSS so far (VmHWM), taken before the plan is read back for its
    fingerprint, which would otherwise be the peak."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def fingerprint(frame: pl.DataFrame) -> int:
    """Order-free checksum of a plan's rows (the same plan gives the same number)."""
    cols = ["dispatch_id", "url", "body", "due_at", "headers"]
    return int(frame.select(pl.struct(cols).hash(seed=7).sum()).item())


def one(rows: str, out: str) -> dict:
    """Today's build_plan in one process, Parquet in and out."""
    from postback_lab import build_plan, read_events

    t = time.perf_counter()
    plan = build_plan(read_events(str(data_path(int(rows)))), rules())
    plan.write_parquet(out)
    return {
        "seconds": time.perf_counter() - t,
        "peak_rss_mib": peak_mib(),
        "plan_rows": len(plan),
        "fingerprint": fingerprint(plan.frame),
    }


def local(rows: str, out: str, partitions: str) -> dict:
    """engine="local" as ``plan --engine local`` runs it on Parquet: the workers read the
    files into buckets of whole transactions and plan them; this process holds no events."""
    from postback_lab import read_plan
    from postback_lab.scale import plan_partitioned

    t = time.perf_counter()
    result = plan_partitioned([str(data_path(int(rows)))], rules(), out, partitions=int(partitions))
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "peak_rss_mib": peak_mib(),
        "plan_rows": result.rows,
        "worker_peak_mib": result.worker_peak_mib,
        "fingerprint": fingerprint(read_plan(out).frame),
    }


def spark(rows: str, out: str, partitions: str) -> dict:
    """engine="spark" on local[2]: JVM start timed apart from the planning."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import warnings

    warnings.simplefilter("ignore", FutureWarning)
    from pyspark.sql import SparkSession

    from postback_lab import read_plan
    from postback_lab.scale import plan_partitioned

    t = time.perf_counter()
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "6g")
        .config("spark.sql.shuffle.partitions", partitions)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - t
    t = time.perf_counter()
    result = plan_partitioned(
        str(data_path(int(rows))),
        rules(),
        out,
        engine="spark",
        partitions=int(partitions),
        spark=session,
    )
    seconds = time.perf_counter() - t
    session.stop()
    return {
        "seconds": seconds,
        "jvm_start_seconds": started,
        "peak_rss_mib": peak_mib(),
        "plan_rows": result.rows,
        "fingerprint": fingerprint(read_plan(out).frame),
    }


STEPS = {"one": one, "local": local, "spark": spark}


def main() -> dict:
    return STEPS[sys.argv[1]](*sys.argv[2:])
