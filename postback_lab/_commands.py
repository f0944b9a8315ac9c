"""The bodies of the CLI commands that need more than a few lines (imported lazily)."""

from __future__ import annotations

import argparse

from . import sample
from .events import read_events
from .plan import build_plan
from .rules import read_rules


def cmd_demo(a: argparse.Namespace) -> int:
    """Sample data -> events -> plan -> explanation."""
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    src = sample.data_dir()
    print(f"== sample data in {src}")
    events = read_events(src / "events.csv")
    print(events)
    rules = read_rules(src / "postbacks.yaml")
    plan = build_plan(events, rules)
    print("\n== plan")
    print(plan)
    print("\n== why events did not fire")
    print(plan.explain())
    path = plan.write_parquet(out / "plan.parquet")
    print(f"\nplan written to {path}")
    return 0
