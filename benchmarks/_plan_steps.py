"""Steps measured by bench_plan.py, each run in its own process (see _common.measure)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

from postback_lab import read_rules
from postback_lab.events import read_events
from postback_lab.sample import OFFERS, PUBLISHERS, generate

BASE = "https://partner{n}.example"


def rules(n: int = 50):
    """``n`` rules in the shape of the sample rules, with varied scopes."""
    out = []
    for i in range(n):
        kind = i % 4
        pubs = [PUBLISHERS[i % len(PUBLISHERS)]]
        base = BASE.format(n=i % 10)
        if kind == 0:
            out.append(
                {
                    "name": f"r{i}",
                    "publishers": [*pubs, PUBLISHERS[(i + 1) % len(PUBLISHERS)]],
                    "fire_on": "approved",
                    "goals": ["sale"],
                    "delay": "2m",
                    "url": base
                    + "/pb?clickid={external_transaction_id}&payout={payout}&sub={sub1}",
                }
            )
        elif kind == 1:
            out.append(
                {
                    "name": f"r{i}",
                    "publishers": pubs,
                    "fire_on": "rejected",
                    "rejection_reasons": ["vpn_proxy", "fraud_score"],
                    "url": base + "/rej?clickid={external_transaction_id}&r={rejection_reason}",
                }
            )
        elif kind == 2:
            out.append(
                {
                    "name": f"r{i}",
                    "offers": [OFFERS[i % 5]],
                    "publishers": pubs,
                    "fire_on": "all",
                    "url": base + "/{publisher_id}/lead?tid={transaction_id}&s={status}&s2={sub2}",
                }
            )
        else:
            out.append(
                {
                    "name": f"r{i}",
                    "offers": [OFFERS[i % 5]],
                    "publishers": pubs,
                    "fire_on": "approved",
                    "url": base + "/c?tid={transaction_id}&p={payout}&t={occurred_at}",
                }
            )
    return read_rules(out)


def data_path(rows: int) -> Path:
    return Path("benchmarks/.data") / f"events_{rows}.parquet"


def prepare(rows: int) -> Path:
    p = data_path(rows)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        raw = generate(max(1, int(rows / 2.4)), seed=1)
        read_events(raw).frame.write_parquet(p)
    return p


def main() -> dict:
    step, rows = sys.argv[1], int(sys.argv[2])
    events = pl.read_parquet(data_path(rows))
    rs = rules(50)
    if step == "ours":
        from postback_lab import build_plan
        from postback_lab.events import Events

        ev = Events(events, pl.DataFrame())
        t = time.perf_counter()
        plan = build_plan(ev, rs)
        return {"seconds": time.perf_counter() - t, "plan_rows": len(plan), "events": events.height}
    if step == "duckdb":
        from benchmarks._duckdb_plan import duckdb_plan

        t = time.perf_counter()
        n = duckdb_plan(events, rs)
        return {"seconds": time.perf_counter() - t, "plan_rows": n, "events": events.height}
    if step == "naive":
        from benchmarks._naive_plan import naive_plan

        sub = events.head(200_000)
        t = time.perf_counter()
        n = naive_plan(sub, rs)
        dt = time.perf_counter() - t
        return {
            "seconds": dt * events.height / sub.height,
            "subset_seconds": dt,
            "plan_rows": n,
            "events": sub.height,
        }
    raise SystemExit(f"unknown step {step}")
