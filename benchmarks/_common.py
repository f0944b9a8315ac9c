"""Shared helpers: run a step in a fresh subprocess to get its own wall time and peak RSS."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(script: str, *args: str) -> dict:
    """Run ``python script args`` in a child; it prints one JSON line of figures, to which
    the child's peak RSS (MiB) is added unless the step measured its own."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report
    # its parent's peak (e.g. the data generation) as its own
    code = (
        "import json, re, runpy, sys;"
        f"sys.argv = [{script!r}, *{list(args)!r}];"
        "out = runpy.run_path(sys.argv[0], run_name='__step__')['main']();"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
        "out.setdefault('peak_rss_mib', int(hwm) / 1024);"
        "print('RESULT ' + json.dumps(out))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE.parent
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{script} {args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def scratch_path(name: str) -> Path:
    """A file path in a new temporary folder, removed when the benchmark process exits
    (10M-row logs are ~500 MB each)."""
    folder = Path(tempfile.mkdtemp(prefix="pbl-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / name
