"""Firing rule 7 at send time: fresh events given to ``send`` stop a delayed postback
whose conversion changed status within the delay."""

from __future__ import annotations

import polars as pl

from postback_lab import LogStore, build_plan, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import send_sync


def test_a_dispatch_superseded_within_its_delay_is_not_fired(tmp_path):
    planned = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3"],
            "status": "approved",
            "occurred_at": ["2024-01-01T10:00:00Z"] * 3,
        }
    )
    # later: t1 rejected 5 minutes after approval (inside the 10m delay); t2 rejected after
    # its postback was due; t3 unchanged
    fresh = pl.concat(
        [
            planned,
            pl.DataFrame(
                {
                    "transaction_id": ["t1", "t2"],
                    "status": "rejected",
                    "occurred_at": ["2024-01-01T10:05:00Z", "2024-01-01T10:20:00Z"],
                }
            ),
        ]
    )
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "delay": "10m", "url": rx.url + "/p/{transaction_id}"}])
        plan = build_plan(planned, rules)
        assert len(plan) == 3
        result = send_sync(plan, db, events=fresh, progress=False)
        got = sorted(r.path for r in rx.received())
    assert got == ["/p/t2", "/p/t3"]
    assert (result.delivered, result.superseded, result.has_failures) == (2, 1, False)
    assert "1 superseded within their delay were not fired" in result.summary()
    with LogStore(db) as s:
        assert sorted(s.attempts()["transaction_id"]) == ["t2", "t3"]  # nothing logged for t1


def test_without_a_delay_nothing_is_rechecked(tmp_path):
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t1"],
            "status": ["approved", "rejected"],
            "occurred_at": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:01Z"],
        }
    )
    with Receiver() as rx:
        rules = read_rules([{"name": "r", "url": rx.url + "/p/{transaction_id}"}])
        result = send_sync(
            build_plan(events, rules), tmp_path / "log.duckdb", events=events, progress=False
        )
    assert (result.delivered, result.superseded) == (1, 0)
