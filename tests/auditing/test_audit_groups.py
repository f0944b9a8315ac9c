"""Audit grouping edge cases: dispatches spanning groups, calendar buckets, breakdowns,
attempt numbering across sent and imported rows, empty logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postback_lab import LogStore, build_plan
from postback_lab.auditing import audit
from postback_lab.store import import_log

from .test_reconcile_backfill_audit import _events, _row, _rules

JAN1 = datetime(2024, 1, 1, tzinfo=UTC)
JAN2 = datetime(2024, 1, 2, tzinfo=UTC)


def _log(tmp_path, rows):
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(rows)
    return db


def _plan():
    return build_plan(_events(), _rules("https://p.example"))


def test_a_retry_after_midnight_counts_the_dispatch_on_both_days(tmp_path):
    plan = _plan()
    late, early = datetime(2024, 1, 1, 23, 50, tzinfo=UTC), datetime(2024, 1, 2, 0, 10, tzinfo=UTC)
    db = _log(
        tmp_path,
        [
            _row(plan, "t1", fired_at=late, outcome="failed", status_code=500, error="HTTP 500"),
            _row(plan, "t1", fired_at=early, attempt=2, outcome="delivered", status_code=200),
            _row(plan, "t2", fired_at=late, outcome="delivered", status_code=200),
        ],
    )
    cols = ["dispatches", "delivered", "attempts", "failed_attempts"]
    by_day = audit(db, by="day").frame.select("day", *cols).rows()
    assert by_day == [(JAN1, 2, 1, 2, 1), (JAN2, 1, 1, 1, 0)]
    by_code = audit(db, by="status_code").frame.select("status_code", *cols).rows()
    assert by_code == [(200, 2, 2, 2, 0), (500, 1, 0, 1, 1)]
    total = audit(db, by=[]).frame.select(*cols).rows()
    assert total == [(2, 2, 3, 1)]


def test_week_and_hour_buckets_are_utc_and_weeks_start_on_monday(tmp_path):
    plan = _plan()
    times = [
        datetime(2024, 1, 3, 13, 45, tzinfo=UTC),  # Wednesday
        datetime(2024, 1, 7, 23, 59, 59, tzinfo=UTC),  # Sunday
        datetime(2024, 1, 8, 0, 0, tzinfo=UTC),  # Monday
        datetime(2023, 12, 31, 13, 5, tzinfo=UTC),  # Sunday, previous week
    ]
    db = _log(
        tmp_path,
        [
            _row(plan, f"t{i}", fired_at=t, outcome="delivered", status_code=200)
            for i, t in enumerate(times, 1)
        ],
    )
    weeks = audit(db, by="week").frame.select("week", "dispatches").rows()
    assert weeks == [
        (datetime(2023, 12, 25, tzinfo=UTC), 1),
        (datetime(2024, 1, 1, tzinfo=UTC), 2),
        (datetime(2024, 1, 8, tzinfo=UTC), 1),
    ]
    hours = audit(db, by="hour").frame["hour"].to_list()
    assert hours == [
        datetime(2023, 12, 31, 13, tzinfo=UTC),
        datetime(2024, 1, 3, 13, tzinfo=UTC),
        datetime(2024, 1, 7, 23, tzinfo=UTC),
        datetime(2024, 1, 8, 0, tzinfo=UTC),
    ]


def test_status_codes_top_errors_and_timeline_exact(tmp_path):
    plan = _plan()
    db = _log(
        tmp_path,
        [
            _row(plan, "t1", outcome="failed", status_code=500, error="HTTP 500"),
            _row(plan, "t1", attempt=2, outcome="failed", status_code=500, error="HTTP 500"),
            _row(plan, "t1", attempt=3, outcome="delivered", status_code=200),
            _row(plan, "t4", outcome="timeout", error="timeout"),
            _row(plan, "t5", outcome="connection_error", error="reset"),
        ],
    )
    report = audit(db, by=[])
    assert report.status_codes.rows() == [(500, 2), (None, 2), (200, 1)]
    assert report.top_errors.rows() == [("HTTP 500", 2), ("reset", 1), ("timeout", 1)]
    by_pub = audit(db, by="publisher_id")
    assert by_pub.status_codes.rows() == [("12", None, 2), ("7", 500, 2), ("7", 200, 1)]
    assert by_pub.top_errors.rows() == [
        ("12", "reset", 1),
        ("12", "timeout", 1),
        ("7", "HTTP 500", 2),
    ]
    assert by_pub.timeline.select(
        "publisher_id", "period", "attempts", "failed_attempts"
    ).rows() == [
        ("12", JAN1, 2, 2),
        ("7", JAN1, 3, 2),
    ]


def test_breakdowns_read_only_the_rows_the_audit_saw(tmp_path):
    plan = _plan()
    db = _log(tmp_path, [_row(plan, "t1", outcome="failed", status_code=500, error="HTTP 500")])
    report = audit(db, by="rule")
    with LogStore(db) as s:  # appended after the audit, before the breakdowns are read
        s.append([_row(plan, "t2", outcome="failed", status_code=502, error="HTTP 502")])
    assert report.status_codes.rows() == [("sales", 500, 1)]
    assert report.top_errors.rows() == [("sales", "HTTP 500", 1)]
    assert report.timeline["attempts"].to_list() == [1]


def test_imported_attempts_continue_the_numbering_of_sent_ones(tmp_path):
    plan = build_plan(_events(2), _rules("https://p.example"))
    db = _log(tmp_path, [_row(plan, "t1", outcome="failed", status_code=500)])
    export = tmp_path / "export.csv"
    export.write_text(
        "Firing Time,Transaction ID,Response Code,Postback Name,Status\n"
        "2024-01-01 00:05:00,t1,200,sales,approved\n"
        "2024-01-01 00:04:00,t1,503,sales,approved\n"
        "2024-01-01 00:06:00,t2,200,sales,approved\n"
    )
    import_log(export, db)
    with LogStore(db) as s:
        got = s.sql(
            "SELECT transaction_id, attempt, status_code FROM postback_log ORDER BY fired_at"
        ).rows()
    assert got == [("t1", 1, 500), ("t1", 2, 503), ("t1", 3, 200), ("t2", 1, 200)]
    frame = audit(db, by="rule").frame
    assert frame.select("dispatches", "delivered", "attempts", "failed_attempts").rows() == [
        (2, 2, 4, 2)
    ]


def test_exports_without_a_status_number_and_count_by_rule_and_transaction(tmp_path):
    """No conversion status, no dispatch id: rows are keyed by rule + transaction id, across
    imports too."""
    db = tmp_path / "log.duckdb"
    head = "Firing Time,Transaction ID,Response Code,Postback Name\n"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(head + "2024-01-01 00:01:00,t7,500,sales\n2024-01-01 00:02:00,t8,200,sales\n")
    second.write_text(head + "2024-01-02 00:01:00,t7,200,sales\n")
    import_log(first, db)
    import_log(second, db)
    with LogStore(db) as s:
        got = s.sql(
            "SELECT transaction_id, attempt, dispatch_id FROM postback_log ORDER BY fired_at"
        ).rows()
    assert got == [("t7", 1, None), ("t8", 1, None), ("t7", 2, None)]
    frame = audit(db, by=["rule", "day"]).frame
    assert frame.select("day", "dispatches", "delivered", "attempts").rows() == [
        (JAN1, 2, 1, 2),
        (JAN1 + timedelta(days=1), 1, 1, 1),
    ]
    total = audit(db, by="rule").frame
    assert total.select("dispatches", "delivered", "attempts").rows() == [(2, 2, 3)]


def test_an_empty_selection_gives_an_empty_report(tmp_path):
    plan = _plan()
    dry = _log(tmp_path, [_row(plan, "t1", outcome="dry_run")])
    LogStore(tmp_path / "empty.duckdb").close()
    for db, by in [(dry, []), (dry, ["rule"]), (dry, ["day"]), (tmp_path / "empty.duckdb", [])]:
        report = audit(db, by=by)
        assert report.frame.height == 0, by
        assert report.summary() == "no attempts in the log for this selection"
        assert str(report) == "no attempts in the log for this selection"
        assert report.status_codes.height == 0
        assert report.top_errors.height == 0
        assert report.to_json() == "[]"
