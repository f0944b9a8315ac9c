"""reconcile and backfill agree: the same "last status code" of a dispatch (the last real
answer of the partner: by firing time, then attempt number, dry runs, test fires and
paused rows left out), the same half-open window ``[since, until)`` as ``plan``, and
imported deliveries linked against every due dispatch when a backfill is narrowed."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from postback_lab import LogStore, Receiver, Retry, build_plan, read_events, read_rules
from postback_lab._errors import UnlinkedImportsError
from postback_lab.auditing import backfill_sync, reconcile
from postback_lab.store import import_log

from .test_reconcile_backfill_audit import T0, _events, _row, _rules
from .test_windows import _files

CLI = [sys.executable, "-m", "postback_lab.cli"]
DOCS = Path(__file__).parent.parent / "fixtures" / "presets" / "docs"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _answers(plan, tid: str, *rows: tuple[int, timedelta, str, int | None]) -> list[dict]:
    """Log rows of ``tid``'s dispatch: (attempt, fired after due, outcome, status code)."""
    due = _row(plan, tid)["due_at"]
    return [
        _row(
            plan,
            tid,
            run_id=f"run-{attempt}-{tid}",
            attempt=attempt,
            fired_at=due + after,
            outcome=outcome,
            status_code=code,
            error="host paused" if outcome == "paused" else None,
        )
        for attempt, after, outcome, code in rows
    ]


def test_reconcile_and_a_status_code_backfill_pick_the_same_last_answer(tmp_path):
    """Attempts numbered across runs out of firing order (a later run's attempt 1 after an
    earlier run's attempt 2), and a paused row after a 503: the last answer is the last
    fired real attempt, in reconcile, in the API's backfill and in the CLI's."""
    events, rules = _files(tmp_path)
    plan = build_plan(read_events(events), read_rules(rules))
    db = tmp_path / "log.duckdb"
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    with LogStore(db) as s:
        s.append(
            [
                # t1: 503 (attempt 2, earlier run), then 404 (attempt 1, a later run): 404
                *_answers(plan, "t1", (2, minute, "failed", 503), (1, hour, "failed", 404)),
                # t2: 404 (attempt 2, earlier), then 500 (attempt 1, later): 500
                *_answers(plan, "t2", (2, minute, "failed", 404), (1, hour, "failed", 500)),
                # t3: 503, then paused by the breaker (no answer): 503
                *_answers(plan, "t3", (1, minute, "failed", 503), (2, hour, "paused", None)),
            ]
        )
    ids = {t: _row(plan, t)["dispatch_id"] for t in ("t1", "t2", "t3")}
    rec = reconcile(plan, db)
    last = dict(rec.dispatches.select("dispatch_id", "last_status_code").iter_rows())
    assert [last[ids[t]] for t in ("t1", "t2", "t3")] == [404, 500, 503]
    five = rec.dispatches.filter(pl.col("last_status_code").is_between(500, 599))
    assert sorted(five["dispatch_id"]) == sorted([ids["t2"], ids["t3"]])
    done = backfill_sync(plan, db, status_code="5xx", dry_run=True, progress=False)
    assert sorted(done.to_send.frame["dispatch_id"]) == sorted([ids["t2"], ids["t3"]])
    # the CLI: reconcile's table and what backfill's dry run logged name the same ids
    out = run("reconcile", events, "--rules", rules, "--db", str(db), "--format", "csv")
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    fives = sorted(r["dispatch_id"] for r in table if r["last_status_code"].startswith("5"))
    assert fives == sorted([ids["t2"], ids["t3"]])
    dry = run(
        "backfill", events, "--rules", rules, "--db", str(db), "--status-code", "5xx",
        "--dry-run", "--format", "json",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    run_id = json.loads(dry.stdout)["sent"]["run_id"]
    with LogStore(db) as s:
        rehearsed = s.sql(
            "SELECT dispatch_id FROM postback_log WHERE run_id = ? AND outcome = 'dry_run' "
            "ORDER BY dispatch_id",
            [run_id],
        )["dispatch_id"].to_list()
    assert rehearsed == fives


def test_a_window_is_half_open_for_unexpected_rows(tmp_path):
    """``reconcile(..., since, until)`` keeps ``[since, until)`` as ``plan --until`` does:
    another transaction's postback due exactly at ``until`` is outside the window, one due
    a microsecond before it is a stray; imported rows (no due time) likewise by firing."""
    plan = build_plan(_events(), _rules("https://p.example"))
    db = tmp_path / "log.duckdb"
    until = T0 + timedelta(hours=1)
    tick = timedelta(microseconds=1)

    def other(tid: str, at) -> dict:
        return {
            **_row(plan, "t1", outcome="delivered", status_code=200),
            "dispatch_id": f"d-{tid}",
            "transaction_id": tid,
            "due_at": at,
            "fired_at": at,
        }

    with LogStore(db) as s:
        s.append([other("t98", until - tick), other("t99", until)])
    rec = reconcile(plan, db, since=T0, until=until)
    assert rec.unexpected["transaction_id"].to_list() == ["t98"]
    assert rec.totals["unexpected"] == 1
    # widen the window by a microsecond and the row due at the old ``until`` is in it
    assert reconcile(plan, db, since=T0, until=until + tick).totals["unexpected"] == 2


def test_a_status_code_backfill_links_imports_against_every_due_dispatch(tmp_path):
    """An imported delivery of conversion A and an imported 500 of conversion B: a backfill
    of 5xx answers re-sends B only, and A's delivery is no unlinked row that stops it."""
    db = tmp_path / "log.duckdb"
    a, b = "9c0534c99eb34b57bda16f92b6d5d3d4", "307971a211b74db98c3c11d5e83c082a"
    with Receiver() as rx:
        rules = tmp_path / "postbacks.yaml"
        rules.write_text(
            "postbacks:\n  - name: Partner approved\n    fire_on: approved\n"
            f"    url: {rx.url}/pb?t={{transaction_id}}\n"
        )
        plan = build_plan(
            read_events(DOCS / "everflow_conversions.csv", preset="everflow"), read_rules(rules)
        )
        import_log(
            DOCS / "everflow_postback_log.csv", db, preset="everflow", rule="Partner approved"
        )
        rec = reconcile(plan, db)
        states = dict(rec.dispatches.select("transaction_id", "state").iter_rows())
        assert (states[a], states[b]) == ("delivered", "failed")
        rx.set_script("/pb", ["200"])
        done = backfill_sync(plan, db, status_code="5xx", progress=False, retry=Retry.none())
        sent = [q.query for q in rx.received()]
    assert done.unlinked is None or done.unlinked.height == 0
    assert done.to_send.frame["transaction_id"].to_list() == [b]
    assert sent == [[("t", b)]]
    assert (done.sent.delivered, done.sent.failed) == (1, 0)


def _imported(tid: str, fired, rule: str | None) -> dict:
    """A delivery in a platform's log that names no conversion status (nor dispatch)."""
    return {
        "dispatch_id": None,
        "rule": rule,
        "transaction_id": tid,
        "status": None,
        "run_id": "import",
        "attempt": 1,
        "fired_at": fired,
        "due_at": None,
        "outcome": "delivered",
        "status_code": 200,
        "source": "imported",
    }


def test_a_windowed_backfill_links_imports_as_the_whole_plan_does(tmp_path):
    """t1 pending (due T0) then approved (due T0+2h); an imported delivery without a status
    fired a minute after T0 is the pending postback's. A backfill from T0+1h must still
    send the approved one: linked against its window only, the import would fall forward
    onto the approved dispatch and make it look delivered."""
    rules = read_rules([{"name": "sales", "url": "https://p.example/pb?t={transaction_id}",
                         "fire_on": "all"}])  # fmt: skip
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t1"],
            "status": ["pending", "approved"],
            "occurred_at": [T0, T0 + timedelta(hours=2)],
            "publisher_id": "7",
        }
    )
    plan = build_plan(events, rules)
    approved = plan.frame.filter(pl.col("status") == "approved")["dispatch_id"].to_list()
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append([_imported("t1", T0 + timedelta(minutes=1), "sales")], check_attempts=False)
    states = dict(reconcile(plan, db).dispatches.select("status", "state").iter_rows())
    assert states == {"pending": "delivered", "approved": "missed"}
    done = backfill_sync(plan, db, since=T0 + timedelta(hours=1), dry_run=True, progress=False)
    assert done.to_send.frame["dispatch_id"].to_list() == approved
    assert done.reconciliation.dispatches["state"].to_list() == ["missed"]
    # the CLI's reconcile of the same window agrees
    events.write_csv(tmp_path / "events.csv")
    (tmp_path / "postbacks.yaml").write_text(
        "postbacks:\n  - name: sales\n    fire_on: all\n"
        "    url: https://p.example/pb?t={transaction_id}\n"
    )
    out = run(
        "reconcile", str(tmp_path / "events.csv"), "--rules", str(tmp_path / "postbacks.yaml"),
        "--db", str(db), "--since", "2024-01-01T01:00:00Z", "--format", "csv",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["dispatch_id"], r["state"]) for r in table] == [(approved[0], "missed")]


def test_a_rule_narrowed_backfill_does_not_resolve_an_ambiguous_import(tmp_path):
    """t1 fires rules A and B; an imported delivery of t1 naming no rule fits both, so it
    links to neither. Narrowed to rule A, the backfill must not take it for A's delivery:
    it stops on it as the unnarrowed backfill does."""
    rules = read_rules(
        [
            {"name": "A", "url": "https://a.example/pb?t={transaction_id}"},
            {"name": "B", "url": "https://b.example/pb?t={transaction_id}"},
        ]
    )
    plan = build_plan(_events(1), rules)
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append([_imported("t1", T0 + timedelta(minutes=1), None)], check_attempts=False)
    assert reconcile(plan, db).totals["delivered"] == 0
    whole = backfill_sync(plan, db, dry_run=True, progress=False)
    narrowed = backfill_sync(plan, db, rule="A", dry_run=True, progress=False)
    assert sorted(whole.to_send.frame["rule"]) == ["A", "B"]
    assert narrowed.to_send.frame["rule"].to_list() == ["A"]
    assert narrowed.unlinked is not None and narrowed.unlinked["transaction_id"].to_list() == ["t1"]
    with pytest.raises(UnlinkedImportsError):
        backfill_sync(plan, db, rule="A", progress=False, retry=Retry.none())
