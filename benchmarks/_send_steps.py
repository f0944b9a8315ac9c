"""Steps measured by bench_send.py, each in its own process."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import scratch_path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_plan(n: int, ports: list[int], spread_s: float = 0.0, start: datetime | None = None):
    from postback_lab import read_plan
    from postback_lab.plan import PLAN_SCHEMA, with_dispatch_ids

    start = start or datetime.now(UTC) - timedelta(seconds=1)
    port = pl.Series("port", [ports[i % len(ports)] for i in range(n)])
    due = pl.Series("due", [start + timedelta(seconds=spread_s * i / max(1, n)) for i in range(n)])
    i = pl.col("i")
    frame = pl.DataFrame({"i": pl.int_range(n, eager=True), "port": port, "due": due}).select(
        pl.lit("bench").alias("rule"),
        i.cast(pl.String).alias("transaction_id"),
        pl.lit("conversion").alias("event_type"),
        pl.lit("approved").alias("status"),
        pl.lit("1").alias("offer_id"),
        pl.lit("7").alias("publisher_id"),
        pl.lit("GET").alias("method"),
        pl.format("http://127.0.0.1:{}/pb?n={}", pl.col("port"), i).alias("url"),
        pl.lit(None, dtype=pl.String).alias("body"),
        pl.format("127.0.0.1:{}", pl.col("port")).alias("host"),
        pl.col("due").alias("due_at"),
        pl.lit(None, dtype=pl.String).alias("headers"),
        pl.lit(None, dtype=pl.Float64).alias("timeout_s"),
        pl.col("due").alias("occurred_at"),
    )
    frame = frame.cast({k: v for k, v in PLAN_SCHEMA.items() if k in frame.columns})  # type: ignore[arg-type]
    return read_plan(with_dispatch_ids(frame))


def main() -> dict:
    step, n, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3].split(",")]
    urls = [f"http://127.0.0.1:{ports[i % len(ports)]}/pb?n={i}" for i in range(n)]
    if step in ("ours", "ours-aiohttp", "lateness", "dry-1m"):
        from postback_lab import Retry, send_sync

        db = scratch_path("bench.duckdb")
        if step == "lateness":
            plan = make_plan(
                n, ports, spread_s=10.0, start=datetime.now(UTC) + timedelta(seconds=2)
            )
        else:
            plan = make_plan(n, ports)
        c0, t0 = cpu(), time.perf_counter()
        result = send_sync(
            plan,
            db,
            progress=False,
            retry=Retry.none(),
            concurrency=64,
            per_host=8,
            dry_run=step == "dry-1m",
            engine="httpx" if step == "ours" else "aiohttp",
            workers=1,  # one event loop, like the loops it is compared with
        )
        dt, dc = time.perf_counter() - t0, cpu() - c0
        out = {
            "seconds": dt,
            "requests": result.attempts,
            "cpu_ms_per_request": dc * 1000 / n,
            "delivered": result.delivered + result.rehearsed,
        }
        if step == "lateness":
            import duckdb

            with duckdb.connect(str(db), read_only=True) as con:
                late = con.execute(
                    "SELECT quantile_cont(epoch(fired_at) - epoch(due_at), [0.5, 0.99]) "
                    "FROM postback_log"
                ).fetchone()[0]
            out["lateness_p50_ms"], out["lateness_p99_ms"] = late[0] * 1000, late[1] * 1000
        return out
    if step == "aiohttp":
        import aiohttp

        async def run() -> int:
            sem = asyncio.Semaphore(64)
            conn = aiohttp.TCPConnector(limit=64, limit_per_host=8)
            async with aiohttp.ClientSession(connector=conn) as s:

                async def one(u: str) -> int:
                    async with sem, s.get(u) as r:
                        await r.read()
                        return r.status

                codes = await asyncio.gather(*(one(u) for u in urls))
            return sum(c == 200 for c in codes)

        c0, t0 = cpu(), time.perf_counter()
        ok = asyncio.run(run())
        dt, dc = time.perf_counter() - t0, cpu() - c0
        return {"seconds": dt, "requests": n, "cpu_ms_per_request": dc * 1000 / n, "delivered": ok}
    if step == "requests":
        import requests

        sub = urls[: min(n, 5000)]
        s = requests.Session()
        c0, t0 = cpu(), time.perf_counter()
        ok = sum(s.get(u).status_code == 200 for u in sub)
        dt, dc = time.perf_counter() - t0, cpu() - c0
        return {
            "seconds": dt * n / len(sub),
            "requests": n,
            "cpu_ms_per_request": dc * 1000 / len(sub),
            "delivered": ok,
            "measured": len(sub),
        }
    if step == "httpx-floor":  # the httpx API over aiohttp, nothing else: our ceiling
        from benchmarks._send_process import floor_loop

        c0, t0 = cpu(), time.perf_counter()
        ok = asyncio.run(floor_loop(urls, 64))
        dt, dc = time.perf_counter() - t0, cpu() - c0
        return {"seconds": dt, "requests": n, "cpu_ms_per_request": dc * 1000 / n, "delivered": ok}
    raise SystemExit(f"unknown step {step}")
