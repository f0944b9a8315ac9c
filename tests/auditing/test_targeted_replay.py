"""Targeted replay over the real receiver and a real DuckDB log: backfill narrowed by
rule, publisher, offer, host and the status code of the last attempt, the count shown
before anything is sent, and the deliberate re-send of delivered postbacks (only with
the exact count and a reason, both kept on the run)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab.receiver import Receiver
from postback_lab.sending import Retry


def _rules(a: str, b: str) -> pbl.RuleSet:
    return pbl.read_rules(
        [
            {"name": "A", "url": a + "/a?t={transaction_id}", "publishers": ["7", "8"]},
            {"name": "B", "url": b + "/b?t={transaction_id}"},
        ]
    )


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "event_type": "conversion",
            "status": "approved",
            "offer_id": ["1", "1", "2", "2"],
            "publisher_id": ["7", "8", "7", "8"],
            "occurred_at": datetime.now(UTC) - timedelta(minutes=5),
        }
    )


def _first_send(db, rx_a: Receiver, rx_b: Receiver) -> pbl.Plan:
    """Rule A: t1 answered 503, t2 answered 404, t3 and t4 delivered; rule B all delivered
    except t4 (500)."""
    plan = pbl.build_plan(_events(), _rules(rx_a.url, rx_b.url))
    # the receiver scripts by path; the order of requests is the plan's (per_host=1)
    rx_a.set_script("/a", ["503", "404", "200", "200"])
    rx_b.set_script("/b", ["200", "200", "200", "500"])
    pbl.send_sync(plan, db, per_host=1, retry=Retry.none(), progress=False)
    return plan


def test_backfill_filters_pick_what_goes_and_say_how_many_first(tmp_path):
    db = tmp_path / "log.duckdb"
    lines: list[str] = []
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
        a.set_script("/a", ["200"])
        b.set_script("/b", ["200"])
        before = (len(a.received()), len(b.received()))
        # only rule A's postbacks whose last attempt was a 5xx: t1, not t2 (a 404)
        r = pbl.backfill_sync(
            plan,
            db,
            rule="A",
            status_code="5xx",
            retry=Retry.none(),
            progress=False,
            announce=lines.append,
        )
        sent_a = [q.query for q in a.received()[before[0] :]]
        sent_b = len(b.received()) - before[1]
        # publisher 8 of any rule: t2 (A, 404) and t4 (B, 500)
        r2 = pbl.backfill_sync(
            plan, db, publisher=8, retry=Retry.none(), progress=False, announce=lines.append
        )
    assert (
        lines[0]
        == "backfill: 1 postbacks (missed + failed) match rule=A, status_code=500-599; sending them"
    )
    assert sent_a == [[("t", "t1")]] and sent_b == 0
    assert (r.sent.delivered, r.sent.failed, len(r.to_send)) == (1, 0, 1)
    assert lines[1] == "backfill: 2 postbacks (missed + failed) match publisher=8; sending them"
    assert sorted(r2.to_send.frame["transaction_id"].to_list()) == ["t2", "t4"]
    assert r2.sent.delivered == 2


def test_a_filter_matches_nothing_sends_nothing(tmp_path):
    db = tmp_path / "log.duckdb"
    lines: list[str] = []
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
        n = len(a.received()) + len(b.received())
        r = pbl.backfill_sync(plan, db, host="nowhere.test", progress=False, announce=lines.append)
        assert len(a.received()) + len(b.received()) == n
    assert len(r.to_send) == 0 and r.sent is not None and r.sent.attempts == 0
    assert lines == [
        "backfill: 0 postbacks (missed + failed) match host=nowhere.test; sending them"
    ]


def test_resend_delivered_needs_the_exact_count_and_a_reason_and_logs_them(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
        n = len(b.received())
        with pytest.raises(pbl.InputError, match="needs --reason"):
            pbl.backfill_sync(plan, db, rule="B", resend_delivered=3, progress=False)
        with pytest.raises(pbl.InputError) as wrong:
            pbl.backfill_sync(
                plan, db, rule="B", resend_delivered=4, reason="partner lost data", progress=False
            )
        with pytest.raises(pbl.InputError, match="a reason alone re-sends nothing"):
            pbl.backfill_sync(plan, db, rule="B", reason="x", progress=False)
        assert len(b.received()) == n  # none of the refusals sent anything
        b.set_script("/b", ["200"])
        r = pbl.backfill_sync(
            plan,
            db,
            rule="B",
            resend_delivered=3,
            reason="partner lost data on 2026-12-03",
            retry=Retry.none(),
            progress=False,
        )
        got = sorted(q.query[0][1] for q in b.received()[n:])
        with pbl.LogStore(db) as s:
            run = s.sql("SELECT kind, reason FROM runs WHERE run_id = ?", [r.sent.run_id])
    assert str(wrong.value) == (
        "--resend-delivered 4: 3 delivered postbacks match the filters, not 4; nothing was "
        "sent. Check the filters (a dry run shows them), then pass --resend-delivered 3"
    )
    # the 3 delivered and the failed t4: each sent once
    assert got == ["t1", "t2", "t3", "t4"]
    assert (r.resend, r.sent.resent, r.sent.delivered) == (3, 3, 4)
    assert run.rows() == [("backfill", "partner lost data on 2026-12-03")]
    assert "3 delivered postbacks re-sent on purpose" in r.sent.summary()
    assert r.headline() == (
        "backfill sent 4 of 4 postbacks (missed + failed + 3 delivered, re-sent on purpose): "
        "4 delivered, 0 failed; now 4 of 4 dispatches are delivered (before: 3)"
    )


def test_without_resend_delivered_nothing_delivered_goes_again(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
        b.set_script("/b", ["200"])
        a.set_script("/a", ["200"])
        n = (len(a.received()), len(b.received()))
        r = pbl.backfill_sync(plan, db, status_code="200", progress=False)
        assert (len(a.received()), len(b.received())) == n
    assert len(r.to_send) == 0


def test_status_code_spellings():
    from postback_lab.auditing._replay import status_ranges

    assert status_ranges(["5xx", "429", "500-504"]) == ((500, 599), (429, 429), (500, 504))
    assert status_ranges("4xx,503") == ((400, 499), (503, 503))
    with pytest.raises(pbl.InputError, match="write a status code"):
        status_ranges("server errors")


def test_backfill_cli_filters_and_resend(tmp_path, write, run_cli):
    db = tmp_path / "log.duckdb"
    with Receiver() as a, Receiver() as b:
        rules = write(
            "rules.yaml",
            f"""
            postbacks:
              - name: A
                url: {a.url}/a?t={{transaction_id}}
              - name: B
                url: {b.url}/b?t={{transaction_id}}
            """,
        )
        events = tmp_path / "events.csv"
        _events().write_csv(events)
        a.set_script("/a", ["503", "200"])

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            backfill = ("backfill", events, "--rules", rules, "--db", db, "--no-progress")
            return run_cli(*backfill, "--retries", "none", *args)

        pbl.LogStore(db).close()  # backfill sends what an existing log lacks
        first = cli()
        dry = cli("--rule", "A", "--status-code", "5xx", "--dry-run")
        targeted = cli("--rule", "A", "--status-code", "5xx")
        refused = cli("--rule", "B", "--resend-delivered", "9", "--reason", "audit")
        resent = cli("--rule", "B", "--resend-delivered", "4", "--reason", "partner replay")
        hits_b = len(b.received())
    assert first.returncode == 1  # t1 of rule A answered 503
    assert "backfill: 8 postbacks (missed + failed) match no filter; sending them" in first.stdout
    assert "match rule=A, status_code=500-599; would send them" in dry.stdout
    assert targeted.returncode == 0, targeted.stderr
    assert targeted.stdout.startswith(
        "backfill: 1 postbacks (missed + failed) match rule=A, status_code=500-599; sending them"
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "postback-lab: error: --resend-delivered 9: 4 delivered postbacks match the filters"
    )
    assert resent.returncode == 0, resent.stderr
    assert hits_b == 8  # the first send's 4 and the deliberate re-send's 4
    with pbl.LogStore(db) as s:
        reasons = s.sql("SELECT reason FROM runs WHERE reason IS NOT NULL")["reason"].to_list()
        jsonable = json.loads(s.sql("SELECT count(*) AS n FROM postback_log").write_json())
    assert reasons == ["partner replay"]
    assert jsonable == [{"n": 14}]


def test_status_code_is_that_of_the_last_attempt(tmp_path):
    """A postback answered 503, then timed out: its last attempt has no status code, so
    ``5xx`` does not pick it."""
    db = tmp_path / "log.duckdb"
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
    t1 = plan.frame.filter((pl.col("rule") == "A") & (pl.col("transaction_id") == "t1"))
    with pbl.LogStore(db) as s:
        s.append(
            [
                dict(
                    dispatch_id=t1["dispatch_id"][0],
                    attempt=2,
                    rule="A",
                    transaction_id="t1",
                    fired_at=datetime.now(UTC),
                    outcome="timeout",
                )
            ]
        )
    r = pbl.backfill_sync(plan, db, rule="A", status_code="5xx", dry_run=True, progress=False)
    assert len(r.to_send) == 0
    r = pbl.backfill_sync(plan, db, rule="A", dry_run=True, progress=False)
    assert sorted(r.to_send.frame["transaction_id"]) == ["t1", "t2"]


def test_a_misspelt_rule_is_an_error_naming_the_closest(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as a, Receiver() as b:
        plan = _first_send(db, a, b)
        sent = len(a.received()) + len(b.received())
        with pytest.raises(pbl.InputError, match=r"rule='a': no such rule in the plan.*'A'"):
            pbl.backfill_sync(plan, db, rule="a", retry=Retry.none(), progress=False)
        assert len(a.received()) + len(b.received()) == sent
