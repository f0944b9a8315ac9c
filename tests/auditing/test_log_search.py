"""Log search over a real DuckDB log: exclusions of any filter (``--not-rule``, …), the
conversion status, and text search that also covers response bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import postback_lab as pbl
from postback_lab.auditing import LogFilter, attempt_rows

T = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _log(path):
    rows = [
        dict(
            dispatch_id="d1",
            attempt=1,
            rule="A",
            transaction_id="t1",
            host="a.test",
            fired_at=T,
            status_code=200,
            outcome="delivered",
            status="approved",
            response_body="ok",
        ),
        dict(
            dispatch_id="d2",
            attempt=1,
            rule="A",
            transaction_id="t2",
            host="b.test",
            fired_at=T,
            status_code=500,
            outcome="failed",
            status="rejected",
            response_body="upstream quota exceeded",
        ),
        dict(
            dispatch_id="d3",
            attempt=1,
            rule="B",
            transaction_id="t3",
            host="a.test",
            fired_at=T,
            status_code=404,
            outcome="failed",
            status="approved",
            response_body="no such click",
        ),
    ]
    with pbl.LogStore(path) as s:
        s.append(rows)


def test_exclusions_status_and_body_search(tmp_path):
    db = tmp_path / "log.duckdb"
    _log(db)
    with pbl.LogStore(db) as s:

        def ids(**kw):
            return sorted(attempt_rows(s, LogFilter.of(**kw), limit=10)["transaction_id"])

        assert ids(not_rule="A") == ["t3"]
        assert ids(not_host=["a.test"]) == ["t2"]
        assert ids(not_status_code=[200, 404]) == ["t2"]
        assert ids(status="approved", not_outcome="delivered") == ["t3"]
        assert ids(search="QUOTA") == ["t2"]


def test_log_show_cli_exclusions_as_json(tmp_path):
    db = tmp_path / "log.duckdb"
    _log(db)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "log",
            "show",
            "--db",
            str(db),
            "--not-rule",
            "B",
            "--search",
            "exceeded",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert [r["transaction_id"] for r in json.loads(out.stdout)] == ["t2"]


def test_each_attempt_keeps_event_type_and_goal_searchable(tmp_path):
    from datetime import timedelta

    import polars as pl

    from postback_lab.receiver import Receiver

    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/pb", ["200", "500"])
        rules = pbl.read_rules(
            [{"name": "r", "url": rx.url + "/pb?t={transaction_id}", "fire_on": "all"}]
        )
        events = pl.DataFrame(
            {
                "transaction_id": ["t1", "t2"],
                "event_type": "conversion",
                "status": ["approved", "rejected"],
                "goal": ["sale", "lead"],
                "occurred_at": datetime.now(UTC) - timedelta(minutes=1),
            }
        )
        pbl.LogStore(db).close()  # backfill sends what an existing log lacks
        pbl.backfill_sync(events, db, rules=rules, retry=pbl.Retry.none(), progress=False)
    with pbl.LogStore(db) as s:
        rows = s.sql("SELECT transaction_id, event_type, goal FROM postback_log ORDER BY 1")

        def tids(**kw):
            return sorted(attempt_rows(s, LogFilter.of(**kw), limit=10)["transaction_id"])

        assert rows.rows() == [("t1", "conversion", "sale"), ("t2", "conversion", "lead")]
        assert tids(goal="lead") == ["t2"]
        assert tids(event_type="conversion", not_goal="lead") == ["t1"]
        assert tids(status="rejected") == ["t2"]


def test_an_older_log_gets_the_new_columns_when_opened_to_write(tmp_path):
    import duckdb

    db = tmp_path / "old.duckdb"
    with pbl.LogStore(db) as s:
        s.append(
            [
                dict(
                    dispatch_id="d1",
                    attempt=1,
                    rule="A",
                    transaction_id="t1",
                    fired_at=T,
                    outcome="delivered",
                    status_code=200,
                )
            ]
        )
    con = duckdb.connect(str(db))  # make it a schema-5 log, as written before
    con.execute("ALTER TABLE postback_log DROP COLUMN event_type")
    con.execute("ALTER TABLE postback_log DROP COLUMN goal")
    con.execute("DROP TABLE host_health")
    con.execute("DROP TABLE retry_due")
    con.execute("ALTER TABLE runs DROP COLUMN reason")
    con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    con.close()
    with pbl.LogStore(db) as s:
        cols = s.sql("SELECT * FROM postback_log").columns
        assert s.schema_version == 7
        assert {"event_type", "goal"} <= set(cols)
        assert s.sql("SELECT count(*) FROM host_health").item() == 0
        assert "reason" in s.runs().columns
