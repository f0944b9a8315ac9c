"""Benchmark: ``postback-lab plan EVENTS.parquet --rules R -o PLAN.parquet`` against the
plan scripts an analyst would write by hand, all whole processes, same run.

    python benchmarks/bench_plan.py --rows 2000000 --rows 10000000 [--runs 3]
    python benchmarks/bench_plan.py --rows 10000000 --runs 1 --contenders cli,pl \
        --threads 2 --threads 4 --threads 8 --budget-s 400 --out FOLDER

Contenders, each a fresh process that reads the events Parquet and writes the plan
Parquet: ``cli`` (``postback-lab plan -o``: read_events, then the plan written as it is
built), ``stream`` (``sink_plan`` called from Python), ``pl`` (a hand-written Polars +
DuckDB script, ``_polars_plan.py``, its output streamed by DuckDB's ``COPY``) and ``db``
(one hand-written DuckDB SQL, ``_duckdb_plan.py``). They run in turn (A B C A B C ...)
so a drift of a shared machine hits them alike; the table gives the medians of wall
time, of cores busy (user + system CPU seconds / wall seconds) and of peak RSS, and the
ratios against each hand-written script. The first run checks that every contender wrote
the same plan (same rows, URLs and dispatch ids).

``--threads N`` (repeatable) adds a table with every process limited to N cores
(``POLARS_MAX_THREADS``, DuckDB's ``threads`` in the scripts, and the CPU affinity of the
process), one run each unless ``--threads-runs``; ``--cores N`` limits the processes of
the first table (memory included) the same way. ``--budget-s`` starts no run that would
likely end past that many seconds from the start (runs left out are named). ``--out``
writes the tables there (``plan.md``, ``plan.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._common import scratch_path, table  # noqa: E402

NAMES = {
    "cli": "postback-lab plan -o",
    "stream": "sink_plan",
    "pl": "Polars script",
    "db": "DuckDB SQL",
}
START = time.monotonic()


def cli_command() -> list[str]:
    """``postback-lab`` (the console script next to this Python), or the same entry point
    through ``python -c`` where the package is on the path but not installed."""
    script = Path(sys.executable).parent / "postback-lab"
    if script.exists() and not os.environ.get("BENCH_NO_SCRIPT"):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from postback_lab.cli import main; sys.exit(main())"]


def run(cmd: list[str], threads: int | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one whole process.
    Under GNU time when there is one (a child forked from this large process would
    report at least our RSS), else from ``wait4``."""
    # the children may cache compiled bytecode, as any installed package has it: with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would compile postback_lab again
    # at every start (~0.25 s), which no user pays
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    preexec = None
    if threads is not None:
        env["POLARS_MAX_THREADS"] = env["BENCH_THREADS"] = str(threads)
        cores = sorted(os.sched_getaffinity(0))[:threads]

        def preexec() -> None:
            os.sched_setaffinity(0, cores)

    timer = Path("/usr/bin/time")
    if timer.exists():
        proc = subprocess.run(
            [str(timer), "-f", "TIME %e %M %U %S", *cmd],
            cwd=HERE.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=preexec,
        )
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        wall, kib, user, system = proc.stderr.strip().splitlines()[-1].split()[1:]
        return float(wall), int(kib) / 1024, float(user) + float(system)
    start = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=HERE.parent, stdout=subprocess.DEVNULL, env=env, preexec_fn=preexec
    )
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, usage.ru_maxrss / 1024, cpu


def same_plan(ours: Path, other: Path, *, ordered: bool) -> bool:
    """Whether two plan files hold the same plan, checked in a child process: reading two
    plans of 20M rows here would raise the peak RSS the next contenders inherit."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.bench_plan import compare;"
        "sys.exit(0 if compare(sys.argv[2], sys.argv[3], sys.argv[4] == 'ordered') else 1)"
    )
    order = "ordered" if ordered else "any"
    args = [sys.executable, "-c", code, str(HERE.parent), str(ours), str(other), order]
    return subprocess.run(args, cwd=HERE.parent).returncode == 0


def compare(ours: str, other: str, ordered: bool) -> bool:
    a, b = pl.read_parquet(ours), pl.read_parquet(other)
    if a.columns != b.columns or a.height != b.height:
        return False
    b = b.cast(a.schema)  # type: ignore[arg-type]
    if not ordered:
        a, b = a.sort("rule", "dispatch_id"), b.sort("rule", "dispatch_id")
    return a.equals(b)


def commands(events: str, rules: Path, plans: dict[str, Path]) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "cli": [*cli_command(), "plan", events, "--rules", str(rules), "-o", str(plans["cli"])],
        "stream": [
            py,
            "benchmarks/_plan_steps.py",
            "stream",
            events,
            str(rules),
            str(plans["stream"]),
        ],
        "pl": [py, "benchmarks/_polars_plan.py", events, str(rules), str(plans["pl"])],
        "db": [py, "benchmarks/_duckdb_plan.py", events, str(rules), str(plans["db"])],
    }


def over_budget(budget: float | None, expected: float) -> bool:
    """Whether a run expected to take ``expected`` seconds would end past the budget."""
    return budget is not None and time.monotonic() - START + expected * 1.3 > budget


def measure(
    rows: int,
    chosen: list[str],
    runs: int,
    threads: int | None,
    budget: float | None,
    expected: dict[str, float],
    skipped: list[str],
    check: bool,
) -> dict[str, dict[str, float]]:
    """Median wall, cores busy and peak RSS per contender at ``rows`` events."""
    rules = scratch_path("postbacks.yaml")
    events = f"benchmarks/.data/events_{rows}.parquet"
    subprocess.run(
        [sys.executable, "benchmarks/_plan_steps.py", "prepare", str(rows), rules], check=True
    )
    plans = {name: rules.with_name(f"{name}.parquet") for name in NAMES}
    cmds = commands(events, rules, plans)
    got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in chosen}
    label = f"{rows:,} events" + (f", {threads} threads" if threads else "")
    for i in range(runs):
        for name in chosen:
            if over_budget(budget, expected.get(name, 0.0)):
                skipped.append(f"{label}: {NAMES[name]} run {i + 1}")
                continue
            got[name].append(run(cmds[name], threads))
            expected[name] = max(expected.get(name, 0.0), got[name][-1][0])
            print(f"  {label}, {NAMES[name]}: {got[name][-1][0]:.2f} s", flush=True)
        if i == 0 and check and "cli" in chosen and got["cli"]:
            checks = {
                NAMES[k]: same_plan(plans["cli"], plans[k], ordered=k != "db")
                for k in chosen
                if k != "cli" and got[k]
            }
            plan_rows = pl.scan_parquet(plans["cli"]).select(pl.len()).collect().item()
            print(f"{rows:,} events -> {plan_rows:,} postbacks; same plan: {checks}", flush=True)
            if not all(checks.values()):
                raise SystemExit(f"the contenders wrote different plans: {checks}")
    shutil.rmtree(rules.parent, ignore_errors=True)  # the plans (GBs at 10M)
    return {
        k: {
            "wall_s": statistics.median(w for w, _, _ in v),
            "cores_busy": statistics.median(c / w for w, _, c in v),
            "peak_mib": statistics.median(m for _, m, _ in v),
            "runs": len(v),
        }
        for k, v in got.items()
        if v
    }


def ratio(a: dict[str, float], b: dict[str, float] | None) -> str:
    if b is None:
        return "-"
    return f"{a['wall_s'] / b['wall_s']:.2f}x time, {a['peak_mib'] / b['peak_mib']:.2f}x memory"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, action="append", help="events (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--contenders", default="cli,stream,pl,db", help="of cli,stream,pl,db")
    ap.add_argument("--threads", type=int, action="append", help="cores for a second table")
    ap.add_argument("--threads-runs", type=int, default=1, help="runs per --threads row")
    ap.add_argument("--cores", type=int, help="limit every process of the first table too")
    ap.add_argument("--budget-s", type=float, help="start no run likely to end after this")
    ap.add_argument("--out", type=Path, help="folder for plan.md and plan.json")
    a = ap.parse_args()
    chosen = [c.strip() for c in a.contenders.split(",")]
    unknown = [c for c in chosen if c not in NAMES]
    if unknown:
        raise SystemExit(f"unknown contenders {unknown}: choose from {', '.join(NAMES)}")
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} cores, load average {load:.2f}, Python {sys.version.split()[0]}, "
        f"polars {pl.__version__}",
        flush=True,
    )
    results: dict[str, object] = {"cores": os.cpu_count(), "load_before": load}
    skipped: list[str] = []
    head = (
        "events",
        "contender",
        "wall s",
        "cores busy",
        "peak RSS MiB",
        "vs Polars script",
        "vs DuckDB SQL",
    )
    out = [head]
    expected: dict[str, float] = {}
    for rows in a.rows or [1_000_000]:
        got = measure(rows, chosen, a.runs, a.cores, a.budget_s, expected, skipped, True)
        results[f"{rows}"] = got
        for name, m in got.items():
            out.append(
                (
                    f"{rows:,}",
                    NAMES[name],
                    f"{m['wall_s']:.2f}",
                    f"{m['cores_busy']:.2f}",
                    f"{m['peak_mib']:,.0f}",
                    ratio(m, got.get("pl")),
                    ratio(m, got.get("db")),
                )
            )
    limit = f", every process limited to {a.cores} cores" if a.cores else ""
    text = [
        table(out),
        f"medians of {a.runs} runs, each contender a whole process, in turn{limit}",
    ]
    if a.threads:
        rows = (a.rows or [1_000_000])[-1]
        lines = [("threads", *(f"{NAMES[c]} s (cores busy)" for c in chosen), "cli / pl")]
        each = f"medians of {a.threads_runs} runs" if a.threads_runs > 1 else "one run each"
        for n in a.threads:
            got = measure(rows, chosen, a.threads_runs, n, a.budget_s, expected, skipped, False)
            results[f"{rows}@{n}"] = got
            cells = [
                f"{got[c]['wall_s']:.1f} ({got[c]['cores_busy']:.2f})" if c in got else "-"
                for c in chosen
            ]
            both = "cli" in got and "pl" in got
            share = f"{got['cli']['wall_s'] / got['pl']['wall_s']:.2f}x" if both else "-"
            lines.append((str(n), *cells, share))
        text += ["", f"{rows:,} events, every process limited to N cores ({each})", table(lines)]
    if skipped:
        text += ["", "left out (over the time budget): " + "; ".join(skipped)]
    results["skipped"] = skipped
    results["load_after"] = os.getloadavg()[0]
    text.append(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print("\n".join(text))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "plan.md").write_text("\n".join(text) + "\n", "utf-8")
        (a.out / "plan.json").write_text(json.dumps(results, indent=1), "utf-8")


if __name__ == "__main__":
    main()
