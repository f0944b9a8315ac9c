"""Every benchmark runs, at a tiny size, so none rots unseen (a plan column the benchmark
did not know stopped bench_audit and bench_explore once). Nothing is asserted about the
figures: each must finish with exit code 0 and print its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: benchmark -> the arguments of its smallest run (seconds each)
SMOKE = {
    "bench_audit.py": ["--rows", "2000", "--fresh", "1"],
    "bench_events.py": ["--rows", "500"],
    "bench_explore.py": ["--rows", "2000"],
    "bench_plan.py": ["--rows", "500", "--runs", "1"],
    "bench_plan_memory.py": ["--rows", "500"],
    "bench_scale.py": ["--rows", "2000", "--partitions", "2", "--sends", "200", "--skip-spark"],
    "bench_send.py": ["--n", "200", "--whole", "200", "--runs", "1", "--skip-1m"],
    "bench_soak.py": ["--n", "300"],
}


def test_every_benchmark_has_a_smoke_run():
    assert sorted(SMOKE) == sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_the_benchmark_runs_at_a_tiny_size(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *SMOKE[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip(), "printed nothing"
