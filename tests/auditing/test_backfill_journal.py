"""Attempts left in the journal of a send that died count before anything is decided:
backfill replays them before it reconciles, ``audit`` and ``backfill --dry-run`` replay
them (or, read-only, say they are pending); a backfill's result says what it delivered."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from postback_lab import LogStore, Receiver, Retry, build_plan, read_rules
from postback_lab.auditing import audit, backfill_sync
from postback_lab.cli import main
from postback_lab.store import settle_journals

T0 = datetime(2024, 1, 1, tzinfo=UTC)

# a sender that journals what it did, then dies before appending it to the log
_DIE = """
import json, os, sys
from postback_lab import LogStore
from postback_lab.store import log_writer
db, started, done = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
store = LogStore(db)
run = log_writer(store).start_run("send", len(started), 0)
for r in started:
    r["run_id"] = run
for r in done:
    r["run_id"] = run
log_writer(store).journal(run, "start", started)
log_writer(store).journal(run, "done", done)
os._exit(0)
"""


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(1, 7)],
            "status": "approved",
            "occurred_at": [T0 + timedelta(minutes=i) for i in range(6)],
            "publisher_id": "7",
        }
    )


def _rules(base: str):
    return [{"name": "sales", "url": base + "/pb?t={transaction_id}"}]


def _dead_send(db: Path, plan, started: list[str], delivered: list[str]) -> None:
    """A send that journaled ``started`` going out and ``delivered`` coming back 200, then
    was killed before its log batch was written."""
    rows = {r["transaction_id"]: r for r in plan.frame.iter_rows(named=True)}

    def head(tid: str) -> dict:
        r = rows[tid]
        return {
            "dispatch_id": r["dispatch_id"],
            "attempt": 1,
            "rule": r["rule"],
            "transaction_id": tid,
            "offer_id": r["offer_id"],
            "publisher_id": r["publisher_id"],
            "method": r["method"],
            "url": r["url"],
            "host": r["host"],
            "status": r["status"],
            "due_at": r["due_at"].isoformat(),
            "fired_at": (T0 + timedelta(hours=1)).isoformat(),
        }

    done = [
        {**head(t), "latency_ms": 5.0, "status_code": 200, "outcome": "delivered", "source": "sent"}
        for t in delivered
    ]
    subprocess.run(
        [
            sys.executable,
            "-c",
            _DIE,
            str(db),
            json.dumps([head(t) for t in started]),
            json.dumps(done),
        ],
        check=True,
        timeout=60,
    )
    with LogStore(db, read_only=True) as s:
        assert s.count() == 0  # only the journal knows
    assert list(db.parent.glob(f"{db.name}.inflight-*.jsonl"))


def test_backfill_replays_the_journal_before_it_reconciles(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = build_plan(_events(), read_rules(_rules(rx.url)))
        _dead_send(db, plan, started=["t1", "t2", "t3"], delivered=["t1", "t2"])
        result = backfill_sync(plan, db, progress=False, retry=Retry.none())
        sent = sorted(q for r in rx.received() for k, q in r.query if k == "t")
    totals = result.reconciliation.totals
    # t3 went out and never came back: its result is unknown, so it counts as failed
    assert (totals["delivered"], totals["failed"], totals["missed"]) == (2, 1, 3)
    assert sorted(result.to_send.frame["transaction_id"]) == ["t3", "t4", "t5", "t6"]
    assert sent == ["t3", "t4", "t5", "t6"]
    assert not list(tmp_path.glob("*.inflight-*"))


def test_dry_run_backfill_and_audit_count_a_pending_journal(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    events = tmp_path / "events.csv"
    _events().write_csv(events)
    rules = tmp_path / "postbacks.yaml"
    rules.write_text(
        "postbacks:\n  - name: sales\n    url: https://p.example/pb?t={transaction_id}\n"
    )
    plan = build_plan(_events(), read_rules(rules))
    _dead_send(db, plan, started=["t1", "t2", "t3"], delivered=["t1", "t2"])

    assert main(["audit", "--db", str(db)]) == 0  # read-only: says what is pending
    err = capsys.readouterr().err
    assert "note: 3 attempts of a run that stopped are pending in " in err

    code = main(["backfill", str(events), "--rules", str(rules), "--db", str(db), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would send 4 postbacks" in out  # t3 (unknown result), t4, t5, t6
    assert "2 delivered, 1 failed, 3 missed" in out

    report = audit(db)  # replayed by now: every attempt counts
    assert report.frame.select("dispatches", "delivered", "attempts").rows() == [(3, 2, 3)]
    assert "pending" not in capsys.readouterr().err


def test_an_audit_never_replays_a_journal_it_says_what_is_pending(tmp_path, capsys):
    """Reading never writes: even through a writable LogStore, audit leaves a dead send's
    journal for the next send or backfill, and says how many attempts wait there."""
    db = tmp_path / "log.duckdb"
    plan = build_plan(_events(), read_rules(_rules("https://p.example")))
    _dead_send(db, plan, started=["t1"], delivered=["t1"])
    with LogStore(db) as s:
        report = audit(s)
        assert s.count() == 0
    assert report.frame.height == 0
    assert len(list(tmp_path.glob("*.inflight-*"))) == 1
    assert "note: 1 attempts of a run that stopped are pending in " in capsys.readouterr().err
    with LogStore(db) as s:
        assert settle_journals(s) == 0  # a writer replays it
        assert audit(s).frame.select("dispatches", "delivered", "attempts").rows() == [(1, 1, 1)]
    assert not list(tmp_path.glob("*.inflight-*"))


def test_backfill_result_shows_what_this_backfill_delivered(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver(fail_rate=0.0) as rx:
        rx.set_script("/pb", ["500", "200", "200", "200", "200", "200"])
        plan = build_plan(_events(), read_rules(_rules(rx.url)))
        with LogStore(db) as s:
            row = plan.frame.row(0, named=True)
            s.append(
                [
                    {
                        **{k: row[k] for k in ("dispatch_id", "rule", "transaction_id", "url")},
                        "run_id": "earlier",
                        "attempt": 1,
                        "fired_at": T0,
                        "status_code": 200,
                        "outcome": "delivered",
                        "source": "sent",
                    }
                ]
            )
        result = backfill_sync(plan, db, progress=False, retry=Retry.none())
    assert result.headline() == (
        "backfill sent 5 of 5 postbacks (missed + failed): 4 delivered, 1 failed; "
        "now 5 of 6 dispatches are delivered (before: 1)"
    )
    assert result.outcomes.rows() == [("sales", 5, 4, 1)]
    html = result._repr_html_()
    assert result.headline() in html
    assert "Delivered by this backfill, per rule" in html
    assert html.index("Delivered by this backfill") < html.index("Before the backfill")
