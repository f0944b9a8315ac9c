"""Steps measured by bench_events.py."""

from __future__ import annotations

import sys
import time

import polars as pl


def main() -> dict:
    step, path = sys.argv[1], sys.argv[2]
    t = time.perf_counter()
    if step == "ours":
        from postback_lab import read_events

        ev = read_events(path)
        n = ev.frame.height + ev.quarantine.height
    else:
        n = pl.read_csv(path, infer_schema=False).height
    return {"seconds": time.perf_counter() - t, "rows": n}
