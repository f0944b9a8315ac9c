"""Benchmark: our sender (logging on) vs a bare aiohttp loop vs a requests loop, 50k
postbacks to a fast aiohttp server on 127.0.0.1 (separate process); whole processes:
``postback-lab send`` (start-up, plan reading and logging included) against a bare loop
of httpx requests over the same transport and concurrency, run in turn; delay lateness
for a plan spread over 10 s; time and peak RSS of a 1M-row dry-run send.

    python benchmarks/bench_send.py [--n 50000] [--whole N] [--runs 3] [--skip-1m]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


#: the children may cache compiled bytecode, as any installed package has it: with
#: PYTHONDONTWRITEBYTECODE set (as on some machines), an editable checkout would compile
#: the package's modules again at every start (~0.25 s here), which no user pays
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start_server(ports: list[int]) -> subprocess.Popen[str]:
    """The fast loopback server of the send benchmarks on ``ports``, once it is ready
    (the caller kills it)."""
    server = subprocess.Popen(
        [sys.executable, "benchmarks/_server.py", *map(str, ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one whole child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def whole_process(n: int, ports: list[int], runs: int) -> dict[str, float]:
    """``postback-lab send`` (one worker, and two) and the bare httpx loop as whole
    processes, in turn ``runs`` times each over the same ``n`` URLs; medians of each and
    of the ratios within each turn."""
    folder = Path(tempfile.mkdtemp(prefix="pbl-bench-send-"))
    try:
        prep = "benchmarks/_send_process.py"
        arg = ",".join(map(str, ports))
        subprocess.run([sys.executable, prep, "prepare", str(n), arg, str(folder)], check=True)
        cli = str(Path(sys.executable).with_name("postback-lab"))
        floor = [sys.executable, prep, "floor", str(folder / "urls.txt"), "64"]
        ours, base, two, ratios, cpu_ratios, two_ratios = [], [], [], [], [], []
        for i in range(runs):
            db = folder / f"log{i}.duckdb"
            cmd = [cli, "send", str(folder / "plan.parquet"), "--db", str(db)]
            # 64 in flight over 4 hosts, 16 connections each: the floor's pool of 64
            # connections (with --per-host 64 we would keep up to 256 open, and pay for it)
            cmd += ["--concurrency", "64", "--per-host", "16", "--retries", "none"]
            cmd += ["--no-progress"]
            b = _timed(floor)
            o = _timed([*cmd, "--workers", "1"])  # one core's worth: the per-core ratio
            for extra in folder.glob(f"log{i}.duckdb*"):
                extra.unlink()
            w = _timed([*cmd, "--workers", "2"])
            for extra in folder.glob(f"log{i}.duckdb*"):
                extra.unlink()
            base.append(b)
            ours.append(o)
            two.append(w)
            ratios.append(b[0] / o[0])  # rate ratio: our rate / the floor's
            cpu_ratios.append(o[1] / b[1])
            two_ratios.append(o[0] / w[0])  # 2 workers' rate / 1 worker's
        return {
            "two_rate": n / statistics.median(w for w, _ in two),
            "two_ratio": statistics.median(two_ratios),
            "two_cpu_ms": statistics.median(c for _, c in two) * 1000 / n,
            "ours_rate": n / statistics.median(w for w, _ in ours),
            "floor_rate": n / statistics.median(w for w, _ in base),
            "ratio": statistics.median(ratios),
            "ours_cpu_ms": statistics.median(c for _, c in ours) * 1000 / n,
            "floor_cpu_ms": statistics.median(c for _, c in base) * 1000 / n,
            "cpu_ratio": statistics.median(cpu_ratios),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--whole", type=int, default=30_000, help="postbacks per whole-process run")
    ap.add_argument("--runs", type=int, default=3, help="whole-process runs of each")
    ap.add_argument("--skip-1m", action="store_true")
    a = ap.parse_args()
    os.chdir(Path(__file__).resolve().parent.parent)
    ports = free_ports(4)
    server = start_server(ports)
    try:
        arg = ",".join(map(str, ports))
        res = {}
        for name in ("aiohttp", "httpx-floor", "ours", "ours-aiohttp", "requests"):
            res[name] = measure("benchmarks/_send_steps.py", name, str(a.n), arg)
            print(name, res[name], flush=True)
        whole = whole_process(a.whole, ports, a.runs)
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
        f"whole processes, {a.whole:,} postbacks, median of {a.runs} runs in turn: "
        f"postback-lab send {whole['ours_rate']:,.0f}/s, bare httpx loop (same transport, "
        f"concurrency 64) {whole['floor_rate']:,.0f}/s: ratio {whole['ratio']:.2f}x; CPU per "
        f"delivered postback {whole['ours_cpu_ms']:.3f} ms vs {whole['floor_cpu_ms']:.3f} ms "
        f"({whole['cpu_ratio']:.2f}x); --workers 2: {whole['two_rate']:,.0f}/s, "
        f"{whole['two_ratio']:.2f}x one worker, {whole['two_cpu_ms']:.3f} ms CPU per postback "
        "(all processes)"
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
