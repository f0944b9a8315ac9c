"""``engine="local"``: DuckDB buckets the events by a hash of ``transaction_id`` into
Parquet, a pool of processes plans the buckets, each writes its part of the plan."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

from .._errors import InputError
from .._util import connect
from ..events import Events
from ..rules import RuleSet
from ._bucket import BUCKET, ROW_NR, plan_bucket, sum_counts
from ._output import PartitionedPlan, part_name, plan_stats, prepare_output


def plan_local(
    events: Events,
    rules: RuleSet,
    output: str | Path,
    *,
    partitions: int,
    workers: int | None = None,
) -> PartitionedPlan:
    """Plan ``events`` in ``partitions`` buckets on a pool of ``workers`` processes (one
    per core by default), writing the plan as one Parquet part per bucket in ``output``."""
    started = time.perf_counter()
    out = prepare_output(output)
    workers = max(1, min(partitions, default_workers(workers)))
    scratch = Path(tempfile.mkdtemp(prefix=".buckets-", dir=out))
    try:
        bucket_events(events.frame, scratch, partitions)
        buckets = sorted(
            (int(m.group(1)), p)
            for p in scratch.iterdir()
            if (m := re.fullmatch(rf"{BUCKET}=(\d+)", p.name))
        )
        jobs = [(str(p), rules, str(out / part_name(b))) for b, p in buckets]
        if workers == 1 or len(jobs) <= 1:
            results = [plan_file(*job) for job in jobs]
        else:
            # spawn, not fork: the parent's Polars and DuckDB thread pools do not survive fork
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                results = list(pool.map(plan_file, *zip(*jobs, strict=True)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not results:  # no events: one empty part keeps the plan readable
        plan_bucket(events.frame.head(0), rules)[0].write_parquet(out / part_name(0))
    peaks = [r[2] for r in results if r[2] is not None]
    per_rule, hosts = plan_stats(pl.scan_parquet(out / "part-*.parquet"))
    return PartitionedPlan(
        path=str(out),
        rows=sum(r[0] for r in results),
        parts=max(1, len(results)),
        explanation=sum_counts([r[1] for r in results], rules),
        per_rule=per_rule,
        hosts=hosts,
        engine="local",
        seconds=time.perf_counter() - started,
        worker_peak_mib=max(peaks) if peaks else None,
    )


def default_workers(workers: int | None) -> int:
    """``workers``, or one per core this process may use."""
    if workers is not None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InputError(f"workers={workers!r} must be a whole number >= 1")
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def bucket_events(frame: pl.DataFrame, folder: Path, partitions: int) -> None:
    """Write ``frame`` with its row numbers into ``folder/__bucket=K/`` Parquet files, K
    the bucket of each row's ``transaction_id`` (DuckDB streams it, nothing is copied)."""
    con = connect()
    try:
        con.register("events", frame.with_row_index(ROW_NR).to_arrow())
        target = str(folder).replace("'", "''")
        con.execute(
            f"COPY (SELECT *, (hash(transaction_id) % {int(partitions)})::INTEGER AS {BUCKET} "
            f"FROM events) TO '{target}' (FORMAT parquet, PARTITION_BY ({BUCKET}), "
            "OVERWRITE_OR_IGNORE)"
        ).fetchall()
    finally:
        con.close()


def plan_file(bucket: str, rules: RuleSet, output: str) -> tuple[int, pl.DataFrame, float | None]:
    """In a worker: plan one bucket folder, write its part; returns (rows, explain counts,
    this process's peak memory in MiB)."""
    plan, counts = plan_bucket(pl.read_parquet(bucket), rules)
    plan.write_parquet(output, compression="zstd")
    return plan.height, counts, _peak_mib()


def _peak_mib() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``; None elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            m = re.search(r"VmHWM:\s+(\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) / 1024 if m else None
