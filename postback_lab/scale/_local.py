"""``engine="local"``: the events are bucketed by a hash of ``transaction_id`` on disk, a
pool of processes plans the buckets, each writes its part of the plan.

Parquet events are bucketed by the pool itself, slice by slice (``plan_local_files``):
the driver never reads an event, each worker holds one slice, then one bucket. Events
already in memory (an ``Events`` value, a CSV read) are bucketed by DuckDB
(``plan_local``)."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from .._errors import InputError
from .._util import connect
from ..events import Events
from ..plan import (
    PLAN_SCHEMA,
    Slice,
    bucket_files,
    columns_used,
    gathered,
    read_bucket,
    slices,
    spill_slice,
)
from ..rules import RuleSet
from ._bucket import BUCKET, ROW_NR, plan_bucket, sum_counts
from ._output import PartitionedPlan, part_name, plan_stats, prepare_output

T = TypeVar("T")
R = TypeVar("R")


def plan_local(
    events: Events,
    rules: RuleSet,
    output: str | Path,
    *,
    partitions: int,
    workers: int | None = None,
    where: Sequence[pl.Expr] = (),
) -> PartitionedPlan:
    """Plan ``events`` in ``partitions`` buckets on a pool of ``workers`` processes (one
    per core by default), writing the plan (its rows ``where`` keeps) as one Parquet part
    per bucket in ``output``."""
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
        jobs = [(str(p), rules, str(out / part_name(b)), where) for b, p in buckets]
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
    # the rows the read quarantined and its notes, as for Parquet files read by the pool
    return _partitioned(
        out, results, rules, started, peaks, quarantine=events.quarantine, notes=events.notes
    )


def plan_local_files(
    files: list[Path],
    rules: RuleSet,
    output: str | Path,
    *,
    partitions: int,
    workers: int | None = None,
    slice_rows: int | None = None,
    where: Sequence[pl.Expr] = (),
    **read_options: Any,
) -> PartitionedPlan:
    """Plan the events of Parquet ``files`` as ``plan_local`` does, the driver never
    holding them: the pool reads the files a slice at a time (``read_events`` with
    ``read_options``: the same checks, quarantine and notes as one read) and writes each
    slice's rows to their buckets' files, then plans the buckets. Memory: the driver, the
    quarantine; a worker, one slice (``SLICE_ROWS``), then one bucket."""
    started = time.perf_counter()
    out = prepare_output(output)
    workers = max(1, default_workers(workers))
    scratch = Path(tempfile.mkdtemp(prefix=".buckets-", dir=out))
    keep = tuple(columns_used(rules))
    try:
        parts = slices(files, slice_rows)
        spill = [(p, partitions, scratch, keep, read_options) for p in parts]
        with _pool(min(workers, max(len(spill), partitions))) as pool:
            read = list(pool.map(_spill_one, spill))
            quarantine, notes = gathered([(q, n) for q, n, _ in read])
            jobs = [
                ([str(f) for f in mine], rules, str(out / part_name(k)), where)
                for k in range(partitions)
                if (mine := bucket_files(scratch, k))
            ]
            results = list(pool.map(_plan_one, jobs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not results:  # no events: one empty part keeps the plan readable
        pl.DataFrame(schema=PLAN_SCHEMA).write_parquet(out / part_name(0))
    peaks = [p for p in [*(r[2] for r in results), *(r[2] for r in read)] if p is not None]
    return _partitioned(out, results, rules, started, peaks, quarantine=quarantine, notes=notes)


class _Serial:
    """``ProcessPoolExecutor``'s ``map`` in this process (one worker)."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(fn, items)

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _pool(workers: int) -> ProcessPoolExecutor | _Serial:
    if workers <= 1:
        return _Serial()
    # spawn, not fork: the parent's Polars and DuckDB thread pools do not survive fork
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _spill_one(
    job: tuple[Slice, int, Path, tuple[str, ...], dict[str, Any]],
) -> tuple[pl.DataFrame, tuple[str, ...], float | None]:
    """In a worker: one slice read and written to its buckets' files; returns its
    quarantine, its notes and this process's peak memory (MiB)."""
    part, count, folder, keep, options = job
    quarantine, notes = spill_slice(part, count, folder, keep, options)
    return quarantine, notes, _peak_mib()


def _plan_one(
    job: tuple[list[str], RuleSet, str, Sequence[pl.Expr]],
) -> tuple[int, pl.DataFrame, float | None]:
    return plan_file(*job)


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


def plan_file(
    bucket: str | list[str], rules: RuleSet, output: str, where: Sequence[pl.Expr] = ()
) -> tuple[int, pl.DataFrame, float | None]:
    """In a worker: plan one bucket (a folder of Parquet, or the files ``spill_slice``
    wrote, in input order), write its part (the rows ``where`` keeps); returns (rows,
    explain counts, this process's peak memory in MiB)."""
    if isinstance(bucket, list):
        events = read_bucket([Path(p) for p in bucket])
    else:
        events = pl.read_parquet(bucket)
    plan, counts = plan_bucket(events, rules, where)
    del events
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


def _partitioned(
    out: Path, results: list[Any], rules: RuleSet, started: float, peaks: list[Any], **more: Any
) -> PartitionedPlan:
    """The PartitionedPlan of parts written to ``out`` by the workers' ``results``
    (rows, explain counts, peak memory each)."""
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
        **more,
    )
