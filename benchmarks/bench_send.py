"""Benchmark: our sender (logging on) vs a bare aiohttp loop vs a requests loop, 50k
postbacks to a fast aiohttp server on 127.0.0.1 (separate process); delay lateness for
a plan spread over 10 s; peak RSS of a 1M-row (dry-run) send.

    python benchmarks/bench_send.py [--n 50000] [--skip-1m]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, table


def free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--skip-1m", action="store_true")
    a = ap.parse_args()
    ports = free_ports(4)
    server = subprocess.Popen(
        [sys.executable, "benchmarks/_server.py", *map(str, ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        arg = ",".join(map(str, ports))
        res = {}
        for name in ("aiohttp", "httpx-floor", "ours", "ours-aiohttp", "requests"):
            res[name] = measure("benchmarks/_send_steps.py", name, str(a.n), arg)
            print(name, res[name], flush=True)
        late = measure("benchmarks/_send_steps.py", "lateness", "5000", arg)
        big = None if a.skip_1m else measure("benchmarks/_send_steps.py", "dry-1m", "1000000", arg)
    finally:
        server.kill()
        server.wait()
    base = res["aiohttp"]["requests"] / res["aiohttp"]["seconds"]
    rows = [("client", "req/s", "CPU ms/req", "peak RSS MiB", "vs bare aiohttp", "delivered")]
    for name, r in res.items():
        rate = r["requests"] / r["seconds"]
        rows.append(
            (
                name,
                f"{rate:,.0f}",
                f"{r['cpu_ms_per_request']:.3f}",
                f"{r['peak_rss_mib']:,.0f}",
                f"{rate / base:.2f}x",
                f"{r['delivered']:,}",
            )
        )
    print(table(rows))
    ours = res["ours-aiohttp"]["requests"] / res["ours-aiohttp"]["seconds"]
    req = res["requests"]["requests"] / res["requests"]["seconds"]
    print(
        f"\nours (default aiohttp transport) / requests: {ours / req:.1f}x (requests loop "
        "measured on 5,000 and scaled); 'ours' is httpx's own transport; 'httpx-floor' is "
        "a bare loop of httpx requests over the aiohttp transport, the most any sender "
        "using the httpx API can reach"
    )
    print(
        f"delay lateness, 5,000 postbacks due over 10 s: p50 {late['lateness_p50_ms']:.1f} ms, "
        f"p99 {late['lateness_p99_ms']:.1f} ms"
    )
    if big:
        print(
            f"1M-row plan, dry-run send: {big['seconds']:.1f} s, peak RSS "
            f"{big['peak_rss_mib']:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
