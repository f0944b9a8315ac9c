"""A dry run is one vectorised pass: every dispatch left to send is one ``dry_run`` row,
numbered after the log's attempts, fired when the per-host rate would have let it go."""

from __future__ import annotations

from datetime import timedelta

from postback_lab import LogStore
from postback_lab.sending import send_sync

from .conftest import make_plan


def test_a_dry_run_logs_each_dispatch_once_with_the_rate_simulated(tmp_path):
    db = tmp_path / "log.duckdb"
    urls = [f"http://a.test/p?n={i}" for i in range(3)] + ["http://b.test/p?n=9"]
    plan = make_plan(urls)
    first = send_sync(plan, db, dry_run=True, progress=False)
    result = send_sync(plan, db, dry_run=True, rate=2.0, progress=False)
    assert (result.rehearsed, result.attempts, result.has_failures) == (4, 4, False)
    assert result.by_outcome == {"dry_run": 4}
    assert dict(result.by_host.select("host", "dry_run").iter_rows()) == {"a.test": 3, "b.test": 1}
    with LogStore(db) as s:
        rows = s.sql(
            "SELECT run_id, host, url, attempt, outcome, latency_ms, fired_at FROM postback_log "
            "ORDER BY run_id = ?, url",
            params=[result.run_id],
        ).rows()
        runs = s.sql("SELECT kind, state, attempts FROM runs ORDER BY started_at").rows()
    assert [r[0] for r in rows] == [first.run_id] * 4 + [result.run_id] * 4
    second = rows[4:]
    assert [(h, u, a, o, lat) for _, h, u, a, o, lat, _ in second] == [
        ("a.test", "http://a.test/p?n=0", 2, "dry_run", 0.0),
        ("a.test", "http://a.test/p?n=1", 2, "dry_run", 0.0),
        ("a.test", "http://a.test/p?n=2", 2, "dry_run", 0.0),
        ("b.test", "http://b.test/p?n=9", 2, "dry_run", 0.0),
    ]
    t0 = second[0][6]
    assert [r[6] - t0 for r in second] == [
        timedelta(0),
        timedelta(seconds=0.5),
        timedelta(seconds=1.0),
        timedelta(0),  # another host: its own rate
    ]
    assert runs == [("dry_run", "completed", 4), ("dry_run", "completed", 4)]


def test_a_dry_run_of_a_password_url_logs_it_masked(tmp_path):
    db = tmp_path / "log.duckdb"
    send_sync(make_plan(["http://admin:hunter2@a.test/p"]), db, dry_run=True, progress=False)
    with LogStore(db) as s:
        assert s.attempts()["url"].to_list() == ["http://admin:***@a.test/p"]
