"""The benchmark's data and rules, and our streaming step (each run as its own process)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from postback_lab import read_rules
from postback_lab.events import read_events
from postback_lab.sample import OFFERS, PUBLISHERS, generate

BASE = "https://partner{n}.example"


def rules(n: int = 50):
    """``n`` rules in the shape of the sample rules, with varied scopes."""
    return read_rules(rule_dicts(n))


def rule_dicts(n: int = 50) -> list[dict]:
    """The rules of ``rules(n)`` as the mappings a postbacks.yaml holds."""
    out: list[dict] = []
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
    return out


def write_rules(path: Path, n: int = 50) -> Path:
    """``rules(n)`` as a postbacks.yaml file."""
    path.write_text(yaml.safe_dump({"postbacks": rule_dicts(n)}, sort_keys=False), "utf-8")
    return path


def data_path(rows: int) -> Path:
    return Path("benchmarks/.data") / f"events_{rows}.parquet"


def prepare(rows: int) -> Path:
    """The events of the benchmark at ``rows`` (generated once, kept in benchmarks/.data)."""
    p = data_path(rows)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        raw = generate(max(1, int(rows / 2.4)), seed=1)
        read_events(raw).frame.write_parquet(p)
    return p


def ours_streaming(events: str, rules_path: str, out: str) -> int:
    """The plan written as it is built (``sink_plan``), buckets beyond its bucket size."""
    from postback_lab.plan import sink_plan

    written = sink_plan(events, rules_path, out)
    print(written)
    return len(written)


if __name__ == "__main__":
    # python benchmarks/_plan_steps.py prepare ROWS RULES.yaml | stream EVENTS RULES OUT
    if sys.argv[1] == "prepare":
        prepare(int(sys.argv[2]))
        write_rules(Path(sys.argv[3]))
    elif sys.argv[1] == "stream":
        ours_streaming(*sys.argv[2:5])
    else:
        raise SystemExit(f"unknown step {sys.argv[1]}")
