"""Reconcile categories, idempotent backfill against the receiver, audit by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from postback_lab import InputError, LogStore, Receiver, Retry, build_plan, read_rules
from postback_lab.auditing import audit, backfill_sync, reconcile, wilson
from postback_lab.store import import_log

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _events(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(1, n + 1)],
            "status": "approved",
            "occurred_at": [T0 + timedelta(minutes=i) for i in range(n)],
            "publisher_id": ["7", "7", "7", "12", "12", "12"][:n],
        }
    )


def _rules(base: str):
    return read_rules([{"name": "sales", "url": base + "/pb?t={transaction_id}"}])


def _row(plan, tid, **kw):
    d = plan.frame.filter(pl.col("transaction_id") == tid).row(0, named=True)
    base = {
        k: d[k]
        for k in (
            "dispatch_id",
            "rule",
            "transaction_id",
            "offer_id",
            "publisher_id",
            "method",
            "url",
            "host",
            "due_at",
            "status",
        )
    }
    return {**base, "run_id": "r", "attempt": 1, "fired_at": d["due_at"], "source": "sent", **kw}


def test_reconcile_categories_exact(tmp_path):
    plan = build_plan(_events(), _rules("https://p.example"))
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(
            [
                _row(plan, "t1", outcome="delivered", status_code=200, latency_ms=10.0),
                _row(plan, "t2", outcome="failed", status_code=500, latency_ms=20.0),
                _row(plan, "t2", outcome="failed", status_code=503, attempt=2, latency_ms=30.0),
                _row(plan, "t3", outcome="delivered", status_code=200, latency_ms=40.0),
                _row(plan, "t3", outcome="delivered", status_code=200, attempt=2, latency_ms=50.0),
                _row(plan, "t4", outcome="dry_run"),
                {
                    **_row(plan, "t1", outcome="delivered", status_code=200),
                    "dispatch_id": "zzz",
                    "transaction_id": "t99",
                },
            ]
        )
    rec = reconcile(plan, db)
    states = dict(rec.dispatches.select("transaction_id", "state").iter_rows())
    assert states == {
        "t1": "delivered",
        "t2": "failed",
        "t3": "delivered",
        "t4": "missed",
        "t5": "missed",
        "t6": "missed",
    }
    assert rec.unexpected["transaction_id"].to_list() == ["t99"]
    assert rec.duplicates["transaction_id"].to_list() == ["t3"]
    assert rec.counts("publisher_id").rows() == [("12", 3, 0, 0, 3, 0), ("7", 3, 2, 1, 0, 1)]
    assert "Reconciliation" in rec._repr_html_()


def test_imported_rows_without_status_link_by_rule_and_transaction(tmp_path):
    plan = build_plan(_events(2), _rules("https://p.example"))
    export = tmp_path / "export.csv"
    export.write_text(
        "Firing Time,Transaction ID,Response Code,Postback Name\n"
        "2024-01-01 00:00:30,t1,200,sales\n2024-01-01 00:02:00,t2,404,sales\n"
        "2024-01-01 00:03:00,t7,200,sales\n"
    )
    db = tmp_path / "log.duckdb"
    import_log(export, db)
    rec = reconcile(plan, db)
    assert dict(rec.dispatches.select("transaction_id", "state").iter_rows()) == {
        "t1": "delivered",
        "t2": "failed",
    }
    assert rec.unexpected["transaction_id"].to_list() == ["t7"]


def test_backfill_sends_exactly_missed_and_failed_once_then_nothing(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        plan = build_plan(_events(), _rules(rx.url))
        with LogStore(db) as s:
            s.append(
                [
                    _row(plan, "t1", outcome="delivered", status_code=200),
                    _row(plan, "t2", outcome="failed", status_code=500),
                ]
            )
        first = backfill_sync(
            _events(), db, rules=_rules(rx.url), progress=False, retry=Retry.none()
        )
        sent = sorted(q for r in rx.received() for k, q in r.query if k == "t")
        assert sent == ["t2", "t3", "t4", "t5", "t6"]
        assert first.sent.delivered == 5
        second = backfill_sync(plan, db, progress=False)
        assert second.sent.attempts == 0 and len(rx.received()) == 5
        dry = backfill_sync(_events(), db, rules=_rules(rx.url), dry_run=True, progress=False)
        assert len(dry.to_send) == 0 and len(rx.received()) == 5


def test_backfill_window_and_dry_run(tmp_path):
    db = tmp_path / "log.duckdb"
    LogStore(db).close()  # backfill needs an existing log (send is for no history)
    with Receiver() as rx:
        result = backfill_sync(
            _events(),
            db,
            rules=_rules(rx.url),
            since="2024-01-01T00:02:00Z",
            until="2024-01-01T00:04:00Z",
            dry_run=True,
            progress=False,
        )
        assert rx.received() == []
    assert sorted(result.to_send.frame["transaction_id"]) == ["t3", "t4"]
    assert result.would_send().rows() == [("sales", rx.url.split("/")[2], 2)]
    assert "would send 2 postbacks" in str(result)


def test_audit_matches_a_hand_computation(tmp_path):
    plan = build_plan(_events(), _rules("https://p.example"))
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(
            [
                _row(plan, "t1", outcome="delivered", status_code=200, latency_ms=10.0),
                _row(
                    plan, "t2", outcome="failed", status_code=500, latency_ms=20.0, error="HTTP 500"
                ),
                _row(plan, "t2", outcome="delivered", status_code=200, attempt=2, latency_ms=30.0),
                _row(plan, "t4", outcome="timeout", latency_ms=40.0, error="timeout"),
                _row(plan, "t5", outcome="dry_run"),
            ]
        )
    report = audit(db, by=["publisher_id"])
    got = report.frame.select(
        "publisher_id",
        "dispatches",
        "delivered",
        "undelivered",
        "delivery_rate",
        "attempts",
        "failed_attempts",
        "attempt_failure_rate",
        "p50_latency_ms",
        "p95_latency_ms",
    ).rows()
    assert got == [
        ("12", 1, 0, 1, 0.0, 1, 1, 1.0, 40.0, 40.0),
        ("7", 2, 2, 0, 1.0, 3, 1, 1 / 3, 20.0, 29.0),
    ]
    lo, hi = pl.select(
        *(e.alias(n) for e, n in zip(wilson(pl.lit(2), pl.lit(2)), "ab", strict=True))
    ).row(0)
    assert report.frame["delivery_rate_lo"][1] == pytest.approx(lo)
    assert hi == pytest.approx(1.0)
    assert report.top_errors.filter(pl.col("publisher_id") == "7")["error"].to_list() == [
        "HTTP 500"
    ]
    assert json.loads(report.to_json())[1] == {
        "publisher_id": "7",
        "dispatches": 2,
        "delivered": 2,
        "undelivered": 0,
        "delivery_rate": 1.0,
        "attempts": 3,
        "failed_attempts": 1,
        "attempt_failure_rate": 1 / 3,
        "p50_latency_ms": 20.0,
        "p95_latency_ms": 29.0,
    }
    chart = report.chart()
    assert chart.to_dict()["vconcat"][0]["title"] == "Failure rate over time"
    codes = audit(db, by="status_code").frame.select("status_code", "attempts", "dispatches")
    assert codes.rows() == [(200, 2, 2), (500, 1, 1), (None, 1, 1)]
    by_day = audit(db, by="day")
    assert by_day.frame.select("day", "attempts").rows() == [(T0, 4)]


def test_cli_audit_json_and_errors(tmp_path):
    db = tmp_path / "log.duckdb"
    plan = build_plan(_events(2), _rules("https://p.example"))
    with LogStore(db) as s:
        s.append([_row(plan, "t1", outcome="delivered", status_code=200, latency_ms=5.0)])
    base = [sys.executable, "-m", "postback_lab.cli", "audit", "--db", str(db)]
    out = subprocess.run(
        [*base, "--by", "rule,host", "--format", "json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert list(json.loads(out.stdout)[0]) == [
        "rule",
        "host",
        "dispatches",
        "delivered",
        "undelivered",
        "delivery_rate",
        "attempts",
        "failed_attempts",
        "attempt_failure_rate",
        "p50_latency_ms",
        "p95_latency_ms",
    ]
    bad = subprocess.run([*base, "--by", "rul"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "postback-lab: error: cannot audit by 'rul' (did you mean 'rule'?)"


def test_backfill_takes_a_plan_or_events_with_rules(tmp_path):
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    rules = _rules("http://h.example")
    plan = build_plan(_events(), rules)
    from_plan = backfill_sync(plan, db, dry_run=True, progress=False)
    from_events = backfill_sync(_events(), db, rules=rules, dry_run=True, progress=False)
    assert from_plan.to_send.frame.equals(from_events.to_send.frame)
    assert len(from_plan.to_send) == 6
    with pytest.raises(InputError, match="a plan already has its rules"):
        backfill_sync(plan, db, rules=rules, dry_run=True, progress=False)  # type: ignore[call-overload]
    with pytest.raises(InputError, match=r"needs a Plan, or events with rules= \(got a DataFrame"):
        backfill_sync(_events(), db, dry_run=True, progress=False)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="log must be a LogStore, a DuckDB file path or None"):
        backfill_sync(plan, rules, dry_run=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="positional"):  # the old backfill(events, rules, log)
        backfill_sync(_events(), rules, db)  # type: ignore[call-overload]
    with pytest.raises(InputError, match=r"since='yesterday' is not a date or time"):
        backfill_sync(plan, db, since="yesterday", dry_run=True, progress=False)


def test_backfill_result_is_exported_and_describes_itself(tmp_path):
    import postback_lab as pbl

    plan = build_plan(_events(2), _rules("http://h.example"))
    LogStore(tmp_path / "log.duckdb").close()
    result = pbl.backfill_sync(plan, tmp_path / "log.duckdb", dry_run=True, progress=False)
    assert isinstance(result, pbl.BackfillResult) and not result.has_failures
    assert "would send 2 postbacks" in str(result) and "Backfill" in result._repr_html_()
