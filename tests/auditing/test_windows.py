"""Windows and scopes in analyst terms: ``plan --since/--until/--rule/--publisher``, the
``reconcile`` and ``why`` commands, ``Plan.filter`` with zoned datetimes, audit days in a
time zone, and reconcile of a windowed plan counting only its window's strays."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from postback_lab import LogStore, build_plan, read_events, read_rules
from postback_lab.auditing import audit, reconcile

from .test_reconcile_backfill_audit import T0, _events, _row, _rules

CLI = [sys.executable, "-m", "postback_lab.cli"]
NY = ZoneInfo("America/New_York")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _files(tmp_path):
    events = tmp_path / "events.csv"
    pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(1, 7)],
            "status": "approved",
            # 2024-01-01 03:00 .. 08:00 UTC = 2023-12-31 22:00 .. 2024-01-01 03:00 in New York
            "occurred_at": [f"2024-01-01T0{2 + i}:00:00Z" for i in range(1, 7)],
            "publisher_id": ["7", "7", "7", "12", "12", "12"],
            "offer_id": "1",
        }
    ).write_csv(events)
    rules = tmp_path / "postbacks.yaml"
    rules.write_text(
        "postbacks:\n"
        "  - name: sales\n    url: https://p.example/pb?t={transaction_id}\n"
        "  - name: leads\n    url: https://q.example/pb?t={transaction_id}\n    publishers: [12]\n"
    )
    return str(events), str(rules)


def test_plan_window_and_scope_flags(tmp_path):
    events, rules = _files(tmp_path)
    out = run(
        "plan",
        events,
        "--rules",
        rules,
        "--since",
        "2024-01-01T05:00:00Z",
        "--until",
        "2024-01-01T08:00:00Z",
        "--rule",
        "sales",
        "--publisher",
        "12",
        "-o",
        str(tmp_path / "p.parquet"),
    )
    assert out.returncode == 0, out.stderr
    got = pl.read_parquet(tmp_path / "p.parquet").sort("transaction_id")
    assert got.select("rule", "transaction_id").rows() == [("sales", "t4"), ("sales", "t5")]
    # a time without an offset is in --timezone: New York midnight is 05:00 UTC
    out = run(
        "plan",
        events,
        "--rules",
        rules,
        "--since",
        "2024-01-01",
        "--timezone",
        "America/New_York",
        "--rule",
        "sales",
    )
    assert out.returncode == 0, out.stderr
    assert "4 postbacks" in out.stdout
    bad = run("plan", events, "--rules", rules, "--rule", "Sale")
    assert bad.returncode == 2
    assert (
        bad.stderr == "postback-lab: error: --rule 'Sale': no such rule (did you mean 'sales'?)\n"
    )


def test_reconcile_and_why_commands(tmp_path):
    events, rules = _files(tmp_path)
    db = tmp_path / "log.duckdb"
    missing = run("reconcile", events, "--rules", rules, "--db", str(db))
    assert missing.returncode == 2 and "no such log" in missing.stderr
    assert not db.exists()  # a read never creates the log
    plan = build_plan(read_events(events), read_rules(rules))
    with LogStore(db) as s:
        s.append([_row(plan, "t1", outcome="delivered", status_code=200)])
    out = run("reconcile", events, "--rules", rules, "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "delivered": 1,
        "failed": 0,
        "missed": 8,
        "unexpected": 0,
        "duplicate": 0,
        "dispatches": 9,
    }
    out = run("reconcile", events, "--rules", rules, "--db", str(db), "--rule", "leads")
    assert out.stdout.splitlines()[0].startswith("3 dispatches: 0 delivered, 0 failed, 3 missed")
    why = run("why", "t1", events, "--rules", rules)
    assert why.returncode == 0, why.stderr
    assert "sales" in why.stdout and "leads" in why.stdout and "t1" in why.stdout


def test_plan_filter_takes_zoned_datetimes():
    plan = build_plan(_events(), _rules("https://p.example"))
    cut = datetime(2023, 12, 31, 19, 3, tzinfo=NY)  # 2024-01-01 00:03 UTC
    got = plan.filter(pl.col("due_at") >= cut)
    assert got.frame["transaction_id"].to_list() == ["t4", "t5", "t6"]
    assert got.frame.schema == plan.frame.schema
    between = plan.filter(pl.col("due_at").is_between(cut, cut + timedelta(minutes=1)))
    assert between.frame["transaction_id"].to_list() == ["t4", "t5"]


def test_audit_days_in_a_time_zone(tmp_path):
    plan = build_plan(_events(), _rules("https://p.example"))
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(
            [
                _row(
                    plan,
                    f"t{i}",
                    outcome="delivered",
                    status_code=200,
                    fired_at=T0 + timedelta(hours=2 * i),
                )
                for i in range(1, 7)
            ]
        )
    utc = audit(db, by=["day"]).table()
    assert utc.select("day", "postbacks").rows() == [("2024-01-01", 6)]
    ny = audit(db, by=["day"], timezone="America/New_York")
    assert ny.table().select("day", "postbacks").rows() == [("2023-12-31", 2), ("2024-01-01", 4)]
    assert ny.summary().endswith("— by day (America/New_York)")
    out = run(
        "audit",
        "--db",
        str(db),
        "--by",
        "day",
        "--timezone",
        "America/New_York",
        "--format",
        "json",
    )
    assert [(r["day"][:19], r["dispatches"]) for r in json.loads(out.stdout)] == [
        ("2023-12-31 05:00:00", 2),
        ("2024-01-01 05:00:00", 4),
    ]
    bad = run("audit", "--db", str(db), "--by", "day", "--timezone", "Mars/Olympus")
    assert bad.returncode == 2 and "'Mars/Olympus' is not a time zone" in bad.stderr


def test_reconcile_of_a_window_counts_no_strays_outside_it(tmp_path):
    plan = build_plan(_events(), _rules("https://p.example"))
    db = tmp_path / "log.duckdb"
    later = {  # a postback of another transaction, due and fired a week later
        **_row(plan, "t1", outcome="delivered", status_code=200),
        "dispatch_id": "other",
        "transaction_id": "t99",
        "due_at": T0 + timedelta(days=7),
        "fired_at": T0 + timedelta(days=7),
    }
    inside = {
        **later,
        "dispatch_id": "stray",
        "transaction_id": "t98",
        "due_at": T0 + timedelta(minutes=2),
        "fired_at": T0 + timedelta(minutes=2),
    }
    with LogStore(db) as s:
        s.append([later, inside])
    week = plan.filter(pl.col("due_at") < T0 + timedelta(minutes=3))
    rec = reconcile(week, db, since=T0, until=T0 + timedelta(days=1))
    assert rec.unexpected["transaction_id"].to_list() == ["t98"]
    assert reconcile(week, db).unexpected["transaction_id"].to_list() == ["t98"]
    assert reconcile(plan, db, since=T0, until=T0 + timedelta(days=8)).totals["unexpected"] == 2
    assert datetime(2024, 1, 1, tzinfo=UTC) == T0
