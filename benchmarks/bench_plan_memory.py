"""Benchmark: where the peak memory of ``postback-lab plan -o`` is. Plans the benchmark
events (N x 50 rules, as bench_plan) in this process, samples its RSS every 20 ms and
marks when the shared groupings (``Evaluator``) start and end, then prints the peak, the
marks and a coarse timeline.

    python benchmarks/bench_plan_memory.py --rows 10000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T0 = time.perf_counter()
samples: list[tuple[float, float]] = []
marks: list[tuple[float, str, float]] = []
running = True


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sample() -> None:
    while running:
        samples.append((time.perf_counter() - T0, rss_mib()))
        time.sleep(0.02)


def mark(what: str) -> None:
    marks.append((time.perf_counter() - T0, what, rss_mib()))


def main() -> None:
    global running
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    rows = ap.parse_args().rows
    from benchmarks._common import scratch_path

    rules = scratch_path("postbacks.yaml")
    step = [sys.executable, "benchmarks/_plan_steps.py", "prepare", str(rows), str(rules)]
    subprocess.run(step, check=True, cwd=Path(__file__).resolve().parent.parent)
    events = Path(__file__).resolve().parent / ".data" / f"events_{rows}.parquet"
    plan = rules.with_name("plan.parquet")
    threading.Thread(target=sample, daemon=True).start()
    from postback_lab.cli import main as cli
    from postback_lab.plan import _evaluate

    init = _evaluate.Evaluator.__init__

    def marked(self: _evaluate.Evaluator, *args: object, **kwargs: object) -> None:
        mark("groupings start")
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        mark("groupings end")

    _evaluate.Evaluator.__init__ = marked  # type: ignore[method-assign]
    sys.argv = ["postback-lab", "plan", str(events), "--rules", str(rules), "-o", str(plan)]
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            cli()
        except SystemExit:
            pass
        finally:
            sys.stdout = stdout
    mark("done")
    running = False
    at, peak = max(samples, key=lambda s: s[1])
    print(f"{rows:,} events, {os.cpu_count()} cores: peak {peak:,.0f} MiB at {at:.1f} s")
    for t, what, mib in marks:
        print(f"  {t:6.1f} s  {mib:7,.0f} MiB  {what}")
    step = max(1, len(samples) // 30)
    print("  timeline (s, MiB): " + ", ".join(f"{t:.1f} {m:,.0f}" for t, m in samples[::step]))


if __name__ == "__main__":
    main()
