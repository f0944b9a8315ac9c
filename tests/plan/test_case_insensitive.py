"""Rejection reasons and goals match whatever their case; the plan keeps the event's own
spelling."""

from __future__ import annotations

import polars as pl

from postback_lab import build_plan, read_rules

EVENTS = pl.DataFrame(
    {
        "transaction_id": ["a", "b", "c", "d", "e"],
        "status": ["approved", "rejected", "rejected", "approved", "rejected"],
        "rejection_reason": [None, "VPN_Proxy", "geo", None, "Fraud_Score"],
        "goal": ["Sale", "SALE", "sale", "lead", None],
        "occurred_at": ["2026-01-01T00:00:00Z"] * 5,
    }
)
RULES = read_rules(
    [
        {"name": "sales", "goals": ["sale"], "url": "https://h.example/?g={goal}"},
        {
            "name": "fraud",
            "fire_on": "rejected",
            "rejection_reasons": ["vpn_proxy", "FRAUD_SCORE"],
            "url": "https://h.example/?r={rejection_reason}",
        },
        {"name": "upper goals", "fire_on": "all", "goals": ["SALE"], "url": "https://h.example/"},
    ]
)


def test_matching_ignores_case_and_keeps_the_spelling():
    plan = build_plan(EVENTS, RULES)
    rows = plan.frame.select("rule", "transaction_id", "url").sort("rule", "transaction_id")
    assert rows.rows() == [
        ("fraud", "b", "https://h.example/?r=VPN_Proxy"),
        ("fraud", "e", "https://h.example/?r=Fraud_Score"),
        ("sales", "a", "https://h.example/?g=Sale"),
        ("upper goals", "a", "https://h.example/"),
        ("upper goals", "b", "https://h.example/"),
        ("upper goals", "c", "https://h.example/"),
    ]
    counts = {
        r["rule"]: {k: v for k, v in r.items() if v and k != "rule"}
        for r in plan.explain().to_polars().iter_rows(named=True)
    }
    assert counts == {
        "sales": {"status": 3, "goal": 1, "fired": 1},
        "fraud": {"status": 2, "rejection_reason": 1, "fired": 2},
        "upper goals": {"goal": 2, "fired": 3},
    }
    why = plan.why("c").to_polars().filter(pl.col("rule") == "fraud")["verdict"].to_list()
    assert why == ["not fired: rejection reason 'geo' is not in ['vpn_proxy', 'FRAUD_SCORE']"]
