"""The smaller display fixes of the notebook review: counts with the right plural, the
reason a transaction's rows were quarantined, example requests in a dry run, and whole
URLs in plan previews."""

from __future__ import annotations

import postback_lab as pbl

EVENTS = """transaction_id,event_type,status,occurred_at,payout
T1,conversion,approved,2026-11-03 10:00:00,5
T2,conversion,approved,not a date,5
"""
LONG = "http://127.0.0.1:9/pb?t={transaction_id}&" + "x" * 200


def _plan(tmp_path) -> pbl.Plan:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    rules = pbl.read_rules(
        [{"name": "r", "type": "conversion", "fire_on": "approved", "url": LONG}]
    )
    return pbl.build_plan(pbl.read_events(path), rules)


def test_one_of_each_is_singular(tmp_path):
    assert _plan(tmp_path).summary().startswith("1 postback to fire from 1 rule to 1 host, due")


def test_why_names_the_quarantine_reason(tmp_path):
    plan = _plan(tmp_path)
    assert str(plan.why("T2")) == (
        "transaction 'T2': no readable events; quarantined when read "
        "(line 3: bad timestamp 'not a date'; see events.quarantine)"
    )
    assert str(plan.why("T9")) == "transaction 'T9': no events with this id"
    assert str(plan.why("T")) == "transaction 'T': no events with this id"  # whole ids only


def test_a_dry_run_shows_an_example_request_per_rule(tmp_path):
    with pbl.LogStore(tmp_path / "log.duckdb") as log:
        result = pbl.backfill_sync(_plan(tmp_path), log, dry_run=True, progress=False)
    url = LONG.replace("{transaction_id}", "T1")
    assert result.examples().rows() == [("r", "GET", url)]
    text = str(result)
    assert f"example requests (one per rule):\n  r: GET {url}\n" in text
    assert url.replace("&", "&amp;") in result._repr_html_()


def test_plan_previews_keep_urls_whole(tmp_path):
    html = _plan(tmp_path)._repr_html_()
    assert LONG.replace("{transaction_id}", "T1").replace("&", "&amp;") in html


def test_a_partitioned_plan_counts_the_same_way(tmp_path):
    from postback_lab.scale import plan_partitioned

    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    rules = pbl.read_rules(
        [{"name": "r", "type": "conversion", "fire_on": "approved", "url": LONG}]
    )
    out = plan_partitioned(pbl.read_events(path), rules, tmp_path / "plan", partitions=2, workers=1)
    assert out.summary().startswith("1 postback to fire from 1 rule to 1 host, due")


def test_counted_says_singular_and_plural():
    from postback_lab._util import counted

    assert [counted(n, "host") for n in (0, 1, 2, 1352)] == [
        "0 hosts",
        "1 host",
        "2 hosts",
        "1,352 hosts",
    ]
