"""build_plan: the exact firing semantics of the rules, the plan columns, explain and diff."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from postback_lab import RuleValidationError, build_plan, read_events, read_plan, read_rules

EVENTS = """
transaction_id,event_type,status,rejection_reason,goal,occurred_at,external_transaction_id,offer_id,publisher_id,payout,sub1
t1,conversion,pending,,sale,2024-01-01T00:00:00Z,x1,1,7,10,a
t1,conversion,approved,,sale,2024-01-02T00:00:00Z,x1,1,7,12.50,a
t1,conversion,approved,,sale,2024-01-03T00:00:00Z,x1,1,7,99,a
t2,conversion,declined,vpn_proxy,sale,2024-01-02T00:00:00+02:00,é&=,1,12,3,a
t3,conversion,approved,,lead,2024-01-02T00:00:00Z,x3,1,12,3,a
t4,conversion,approved,,sale,2024-01-02T00:00:00Z,,1,12,3,a
t5,conversion,approved,,sale,2024-01-02T00:00:00Z,x5,1,99,3,a
t6,click,approved,,sale,2024-01-02T00:00:00Z,x6,1,7,3,a
t7,conversion,rejected,geo,sale,2024-01-02T00:00:00Z,x7,1,7,3,a
t8,conversion,approved,,sale,2024-01-02T00:00:00Z,x8,007,7,3,a
"""

RULES = """
postbacks:
  - name: sales
    offers: [1]
    publishers: [7, 12]
    fire_on: approved
    goals: [sale]
    delay: 2m
    url: https://p.example/?clickid={external_transaction_id}&payout={payout}
  - name: rejects
    fire_on: rejected
    rejection_reasons: [vpn_proxy]
    url: https://r.example/{external_transaction_id}/x?s={status}
  - name: off
    enabled: false
    url: https://off.example/
"""


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def plan(write):
    return build_plan(read_events(write("e.csv", EVENTS)), read_rules(write("r.yaml", RULES)))


def test_exact_rows(plan):
    rows = plan.to_polars().select("rule", "transaction_id", "status", "url", "host", "due_at")
    assert rows.rows() == [
        (
            "sales",
            "t1",
            "approved",
            "https://p.example/?clickid=x1&payout=12.5",
            "p.example",
            utc(2024, 1, 2, 0, 2),
        ),
        (
            "rejects",
            "t2",
            "rejected",
            "https://r.example/%C3%A9%26%3D/x?s=rejected",
            "r.example",
            utc(2024, 1, 1, 22),
        ),
    ]
    assert plan.frame.columns[:12] == [
        "dispatch_id",
        "rule",
        "transaction_id",
        "event_type",
        "status",
        "offer_id",
        "publisher_id",
        "method",
        "url",
        "body",
        "host",
        "due_at",
    ]


def test_dispatch_ids_are_deterministic_and_order_free(write):
    rules = read_rules(write("r.yaml", RULES))
    ev = read_events(write("e.csv", EVENTS))
    a = build_plan(ev, rules).frame
    shuffled = dataclasses.replace(ev, frame=ev.frame.sample(fraction=1.0, shuffle=True, seed=3))
    b = build_plan(shuffled, rules).frame
    assert sorted(a["dispatch_id"]) == sorted(b["dispatch_id"])
    assert a.sort("dispatch_id").equals(b.sort("dispatch_id"))
    import hashlib

    expected = hashlib.md5(b"sales\x1ft1\x1fapproved").hexdigest()
    assert a.filter(pl.col("rule") == "sales")["dispatch_id"].to_list() == [expected]


def test_explain_counts_per_rule(plan):
    wide = plan.explain().to_polars()
    assert wide.columns[0] == "rule"
    got = {r["rule"]: r for r in wide.iter_rows(named=True)}
    # sales: t6 type; t5 publisher; t8 offer 007 != 1; t1 pending, t2, t7 status; t3 goal;
    # t4 missing macro; t1 approved twice -> one duplicate
    assert {k: v for k, v in got["sales"].items() if v and k != "rule"} == {
        "type": 1,
        "offer": 1,
        "publisher": 1,
        "status": 3,
        "goal": 1,
        "missing": 1,
        "duplicate": 1,
        "fired": 1,
    }
    assert {k: v for k, v in got["rejects"].items() if v and k != "rule"} == {
        "type": 1,
        "status": 7,
        "rejection_reason": 1,
        "fired": 1,
    }
    assert {k: v for k, v in got["off"].items() if v and k != "rule"} == {"disabled": 10}


def test_explain_one_transaction(plan):
    ex = plan.why("t1").to_polars()
    assert ex.filter(pl.col("rule") == "sales")["verdict"].to_list() == [
        "not fired: status is 'pending', the rule fires on 'approved'",
        f"fires (dispatch {plan.frame['dispatch_id'][0]})",
        "duplicate: an earlier row with this status already fires this rule",
    ]
    t5 = plan.why("t5").to_polars()
    assert t5.filter(pl.col("rule") == "sales")["verdict"].to_list() == [
        "not fired: publisher '99' is not in ['7', '12']"
    ]
    t4 = plan.why("t4").to_polars()
    assert t4.filter(pl.col("rule") == "sales")["verdict"].to_list() == [
        "not fired: missing {external_transaction_id} has no value in this row"
    ]


def test_fire_on_all_fires_each_status_once_with_rejection_filter_only_on_rejected(write):
    ev = read_events(write("e.csv", EVENTS))
    rules = read_rules(
        [
            {
                "name": "all",
                "fire_on": "all",
                "rejection_reasons": ["vpn_proxy"],
                "url": "https://a.example/?t={transaction_id}&s={status}",
            }
        ]
    )
    rows = (
        build_plan(ev, rules)
        .frame.select("transaction_id", "status")
        .sort("transaction_id", "status")
        .rows()
    )
    # t7 rejected for 'geo' is filtered; approved/pending rows are unaffected; t6 is a click
    assert rows == [
        ("t1", "approved"),
        ("t1", "pending"),
        ("t2", "rejected"),
        ("t3", "approved"),
        ("t4", "approved"),
        ("t5", "approved"),
        ("t8", "approved"),
    ]


def test_post_body_headers_and_env_secret_is_not_rendered(write, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", "s3cret")
    ev = read_events(write("e.csv", EVENTS))
    rules = read_rules(
        [
            {
                "name": "crm",
                "method": "POST",
                "url": "https://crm.example/hook?k={env:CRM_TOKEN}",
                "headers": {"Authorization": "Bearer {env:CRM_TOKEN}", "X-Tid": "{transaction_id}"},
                "body": '{"id": "{{ transaction_id }}", "amount": {{ payout }}, "sub": "{{ sub1 }}"}',
                "timeout": "3s",
            }
        ]
    )
    f = build_plan(ev, rules).frame.filter(pl.col("transaction_id") == "t1")
    assert f["body"].to_list() == ['{"id": "t1", "amount": 12.5, "sub": "a"}']
    assert json.loads(f["headers"][0]) == {"Authorization": "Bearer {env:CRM_TOKEN}", "X-Tid": "t1"}
    assert f["url"].to_list() == ["https://crm.example/hook?k={env:CRM_TOKEN}"]
    assert f["timeout_s"].to_list() == [3.0]
    assert "s3cret" not in str(build_plan(ev, rules).frame.rows())


def test_rendering_numbers_timestamps_and_ids():
    frame = pl.DataFrame(
        {
            "transaction_id": ["a", "b"],
            "status": ["approved", "approved"],
            "occurred_at": ["2024-01-01T10:00:00+01:00", "2024-01-01T10:00:00.5Z"],
            "payout": [12.0, 0.0000001],
            "offer_id": ["007", "7"],
        }
    )
    rules = read_rules(
        [
            {
                "name": "r",
                "offers": [7, "007"],
                "url": "https://h.example/{offer_id}?p={payout}&t={occurred_at}",
            }
        ]
    )
    urls = build_plan(frame, rules).frame.sort("transaction_id")["url"].to_list()
    assert urls == [
        "https://h.example/007?p=12&t=2024-01-01T09%3A00%3A00Z",
        "https://h.example/7?p=0.0000001&t=2024-01-01T10%3A00%3A00.500Z",
    ]


def test_unknown_macro_at_plan_time_names_rule_and_suggests(write):
    ev = read_events(write("e.csv", EVENTS))
    rules = read_rules([{"name": "r", "url": "https://h.example/?x={aff_sub}"}])
    with pytest.raises(RuleValidationError) as err:
        build_plan(ev, rules)
    assert "rule 'r' (#1), field 'url': unknown macro {aff_sub}" in str(err.value)


def test_diff_what_if(plan, write):
    ev, rules = plan.events, plan.rules
    other = rules.replace("sales", publishers="all", delay="5m")
    d = plan.diff(build_plan(ev, other))
    assert d.added["transaction_id"].to_list() == ["t5"]
    assert d.removed.height == 0
    assert d.changed.select("transaction_id", "due_at", "due_at_new").rows() == [
        ("t1", utc(2024, 1, 2, 0, 2), utc(2024, 1, 2, 0, 5))
    ]
    assert d.counts().rows() == [("sales", 1, 0, 1)]
    assert str(d).startswith("1 added, 0 removed, 1 changed")


def test_parquet_round_trip_filter_and_reprs(plan, tmp_path):
    path = plan.write_parquet(tmp_path / "plan.parquet")
    back = read_plan(path)
    assert back.frame.equals(plan.frame)
    assert len(back.filter(rule="sales")) == 1
    assert "2 postbacks to fire from 2 rules to 2 hosts" in str(plan)
    html = plan._repr_html_()
    assert "Dispatch plan" in html and "p.example" in html
    assert ">sales</td>" in plan.explain()._repr_html_()


def test_due_at_is_occurred_plus_delay(plan):
    f = plan.frame.filter(pl.col("rule") == "sales")
    assert (f["due_at"] - f["occurred_at"]).to_list() == [timedelta(minutes=2)]


def test_explain_and_why_have_one_return_type_each(plan):
    from postback_lab import Explanation, TransactionExplanation

    assert isinstance(plan.explain(), Explanation)
    why = plan.why("t1")
    assert isinstance(why, TransactionExplanation)
    assert "Verdicts for transaction t1" in why._repr_html_()
    with pytest.raises(TypeError):  # the older spelling explain(transaction_id=) is gone
        plan.explain(transaction_id="t1")  # type: ignore[call-arg]


def test_why_says_invalid_body_not_duplicate(write):
    ev = read_events(write("e.csv", EVENTS))
    rules = read_rules(
        [
            {
                "name": "crm",
                "method": "POST",
                "url": "https://c.example/",
                "body": '{"id": {{ sub1 }}}',  # sub1 is text: renders to {"id": a}
            }
        ]
    )
    plan = build_plan(ev, rules)
    assert len(plan) == 0 and plan.body_errors == {"crm": 5}
    verdicts = plan.why("t1").to_polars()["verdict"].to_list()
    assert verdicts == [
        "not fired: status is 'pending', the rule fires on 'approved'",
        "not fired: invalid body, the rendered body is not valid JSON "
        "(Expecting value at character 8)",
        "duplicate: an earlier row with this status already fires this rule",
    ]
    counts = {r["reason"]: r["events"] for r in plan.explain().frame.iter_rows(named=True)}
    assert counts["invalid_body"] == 5 and counts["duplicate"] == 1


def test_a_plan_read_from_a_file_cannot_explain(plan, tmp_path):
    from postback_lab import PlanError

    back = read_plan(plan.write_parquet(tmp_path / "p.parquet"))
    with pytest.raises(PlanError, match="why needs the events and rules"):
        back.why("t1")
    with pytest.raises(PlanError, match="explain needs the events and rules"):
        back.explain()
