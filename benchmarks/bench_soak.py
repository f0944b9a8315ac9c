"""Soak: a 200k-dispatch send against the receiver (separate process) with 5% injected
failures and retries. Samples RSS every second, then checks the log: every dispatch ended
delivered or failed with the right attempt count, and no row is missing.

    python benchmarks/bench_soak.py [--n 200000]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import scratch_path
from benchmarks._send_steps import make_plan
from benchmarks.bench_send import free_ports


def rss_mib() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def wait_for_ports(ports: list[int], timeout: float = 60.0) -> None:
    """Wait until every receiver accepts connections (a fixed sleep lost the race on a
    busy machine: the first attempts met closed ports and the hosts were paused)."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the receiver on port {port} did not start") from None
                time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    a = ap.parse_args()
    from postback_lab import LogStore, Retry, send_sync

    ports = free_ports(2)
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "postback_lab.cli",
                "receiver",
                "--port",
                str(p),
                "--fail-rate",
                "0.05",
                "--seed",
                str(i),
            ],
            stdout=subprocess.DEVNULL,
        )
        for i, p in enumerate(ports)
    ]
    wait_for_ports(ports)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.time()
        while not stop.is_set():
            samples.append((time.time() - t0, rss_mib()))
            stop.wait(1.0)

    db = scratch_path("soak.duckdb")
    retry = Retry(delays=(0.05, 0.1, 0.2), jitter=0.1)
    plan = make_plan(a.n, ports)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t = time.perf_counter()
        result = send_sync(plan, db, retry=retry, progress=False)
        seconds = time.perf_counter() - t
    finally:
        stop.set()
        for s in servers:
            s.kill()
            s.wait()
    with LogStore(db, read_only=True) as store:
        per = store.sql("""
            SELECT dispatch_id, count(*) AS attempts,
                   count(*) FILTER (WHERE outcome = 'delivered') AS ok
            FROM postback_log GROUP BY 1""")
        rows = store.count()
    delivered = per.filter(per["ok"] == 1)
    failed = per.filter(per["ok"] == 0)
    wrong = per.filter(
        (per["ok"] > 1) | ((per["ok"] == 0) & (per["attempts"] != retry.max_attempts))
    )
    half = len(samples) // 2
    first = max(r for _, r in samples[: max(1, half)])
    second = max(r for _, r in samples[half:]) if samples[half:] else first
    print(f"{a.n:,} dispatches in {seconds:.1f}s ({result.attempts / seconds:,.0f} attempts/s)")
    print(
        f"delivered {delivered.height:,}, failed after {retry.max_attempts} attempts "
        f"{failed.height:,}, dispatches in the log {per.height:,} (missing "
        f"{a.n - per.height:,}), log rows {rows:,} = attempts {result.attempts:,}: "
        f"{rows == result.attempts}"
    )
    print(f"dispatches with a wrong attempt count or a double delivery: {wrong.height}")
    print(
        f"RSS MiB: start {samples[0][1]:.0f}, max first half {first:.0f}, max second half "
        f"{second:.0f} ({len(samples)} samples, one a second)"
    )
    ok = per.height == a.n and rows == result.attempts and wrong.height == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
