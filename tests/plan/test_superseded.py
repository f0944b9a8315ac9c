"""Firing rule 7: a rule with a delay does not fire a row whose transaction reached another
status after it and at or before its due time ("superseded within the delay")."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postback_lab import build_plan, read_events, read_rules
from postback_lab.plan import _rows
from postback_lab.plan._rows import next_change

EVENTS = """
transaction_id,status,rejection_reason,occurred_at,payout
t1,approved,,2026-11-01T00:00:00Z,1
t1,rejected,fraud_score,2026-11-01T00:01:00Z,1
t2,approved,,2026-11-01T00:00:00Z,2
t2,rejected,fraud_score,2026-11-01T00:15:00Z,2
t3,approved,,2026-11-01T00:00:00Z,3
t3,rejected,fraud_score,2026-11-01T00:10:00Z,3
t4,approved,,2026-11-01T00:00:00Z,4
t4,rejected,fraud_score,2026-11-01T00:00:00Z,4
t5,approved,,2026-11-01T00:00:00Z,5
t5,rejected,vpn_proxy,2026-11-01T00:05:00Z,5
t5,approved,,2026-11-01T00:20:00Z,5
t6,pending,,2026-11-01T00:00:00Z,6
t6,approved,,2026-11-01T00:03:00Z,6
t7,approved,,2026-11-01T00:00:00Z,7
t7,approved,,2026-11-01T00:02:00Z,7
"""

URL = "https://h.example/?t={transaction_id}&p={payout}"


def at(minute: int) -> datetime:
    return datetime(2026, 11, 1, 0, minute, tzinfo=UTC)


@pytest.fixture
def events(write):
    return read_events(write("e.csv", EVENTS))


def plan_rows(events, **rule: object) -> list[tuple[str, str, datetime]]:
    rules = read_rules([{"name": "r", "url": URL, **rule}])
    frame = build_plan(events, rules).frame
    return frame.select("transaction_id", "status", "due_at").sort("transaction_id").rows()


def test_delay_rule_skips_rows_superseded_within_the_delay(events):
    assert plan_rows(events, delay="10m") == [
        # t1 rejected 1 minute after approval; t3 rejected exactly at due_at (counts)
        ("t2", "approved", at(10)),  # rejected after 15 minutes: too late to cancel
        ("t4", "approved", at(10)),  # rejected at the same instant: not after the row
        ("t5", "approved", at(30)),  # the first approval was superseded, the second fires
        ("t6", "approved", at(13)),
        ("t7", "approved", at(10)),  # a repeat of the same status supersedes nothing
    ]


def test_cancel_on_change_false_fires_every_first_row(events):
    assert plan_rows(events, delay="10m", cancel_on_change=False) == [
        (t, "approved", at(13 if t == "t6" else 10))
        for t in ("t1", "t2", "t3", "t4", "t5", "t6", "t7")
    ]


def test_a_rule_without_delay_is_unchanged(events):
    assert plan_rows(events) == [
        (t, "approved", at(3 if t == "t6" else 0))
        for t in ("t1", "t2", "t3", "t4", "t5", "t6", "t7")
    ]


def test_fire_on_all_cancels_each_status_that_was_superseded(events):
    rules = read_rules([{"name": "r", "url": URL, "fire_on": "all", "delay": "5m"}])
    rows = build_plan(events, rules).frame.select("transaction_id", "status", "occurred_at")
    assert sorted(rows.rows()) == [
        ("t1", "rejected", at(1)),
        ("t2", "approved", at(0)),
        ("t2", "rejected", at(15)),
        ("t3", "approved", at(0)),
        ("t3", "rejected", at(10)),
        ("t4", "approved", at(0)),
        ("t4", "rejected", at(0)),
        ("t5", "approved", at(20)),  # approved at 0 superseded at 5 (t == due_at)
        ("t5", "rejected", at(5)),
        ("t6", "approved", at(3)),  # pending superseded 3 minutes later
        ("t7", "approved", at(0)),
    ]


def test_row_order_does_not_matter(events):
    rules = read_rules([{"name": "r", "url": URL, "fire_on": "all", "delay": "10m"}])
    a = build_plan(events, rules).frame.sort("dispatch_id")
    shuffled = dataclasses.replace(
        events, frame=events.frame.sample(fraction=1.0, shuffle=True, seed=5)
    )
    assert build_plan(shuffled, rules).frame.sort("dispatch_id").equals(a)


def test_explain_counts_superseded_and_why_names_the_status(events):
    rules = read_rules(
        [
            {"name": "late", "url": URL, "delay": "10m"},
            {"name": "now", "url": URL},
        ]
    )
    plan = build_plan(events, rules)
    wide = {r["rule"]: r for r in plan.explain().to_polars().iter_rows(named=True)}
    late = {k: v for k, v in wide["late"].items() if v and k != "rule"}
    # t1, t3 (rejected exactly at due_at) and t5's first approval are superseded
    assert late == {"status": 6, "superseded": 3, "duplicate": 1, "fired": 5}
    assert wide["now"]["superseded"] == 0 and wide["now"]["fired"] == 7
    assert "superseded within the delay 3" in str(plan.explain())
    verdicts = plan.why("t1").to_polars().filter(pl.col("rule") == "late")["verdict"].to_list()
    assert verdicts == [
        "not fired: superseded within the delay: the transaction reached 'rejected' at "
        "2026-11-01 00:01:00, before the postback was due at 2026-11-01 00:10:00 (10m delay; "
        "cancel_on_change: false fires it anyway)",
        "not fired: status is 'rejected', the rule fires on 'approved'",
    ]
    t5 = plan.why("t5").to_polars().filter(pl.col("rule") == "late")["verdict"].to_list()
    assert t5[0].startswith("not fired: superseded within the delay: the transaction reached")
    assert t5[2].startswith("fires (dispatch ")


ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["approved", "rejected", "pending"]),
        st.integers(0, 6),
    ),
    max_size=30,
)


def frame_of(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "occurred_at": [at(r[2]) for r in rows],
        },
        schema={
            "transaction_id": pl.String,
            "status": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
        },
    )


def check_next_change(rows: list[tuple[str, str, int]]) -> None:
    times, statuses = next_change(frame_of(rows))
    expected = []
    for tid, status, t in rows:
        later = sorted((t2, s2) for tid2, s2, t2 in rows if tid2 == tid and s2 != status and t2 > t)
        expected.append(later[0][0] if later else None)
    assert [None if v is None else v.minute for v in times.to_list()] == expected
    for (tid, status, _), when, what in zip(rows, times.to_list(), statuses.to_list(), strict=True):
        if when is not None:  # the status reached then (one of them, on a tie)
            assert (tid, what, when.minute) in rows and what != status


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_next_change_matches_a_plain_reference(rows):
    check_next_change(rows)


@settings(max_examples=100, deadline=None)
@given(ROWS)
def test_next_change_is_exact_when_transaction_hashes_collide(rows):
    """Every transaction id hashed alike: the rows are still grouped by the ids."""
    real = _rows._hash_prefix
    _rows._hash_prefix = lambda frame, n, status=None: np.zeros(frame.height, dtype=np.uint64)
    try:
        check_next_change(rows)
        keys = [(r[0], r[1]) for r in rows]
        assert _rows.duplicated(frame_of(rows)).tolist() == [keys.count(k) > 1 for k in keys]
    finally:
        _rows._hash_prefix = real


@settings(max_examples=100, deadline=None)
@given(ROWS)
def test_duplicated_finds_every_twin(rows):
    keys = [(r[0], r[1]) for r in rows]
    assert _rows.duplicated(frame_of(rows)).tolist() == [keys.count(k) > 1 for k in keys]
