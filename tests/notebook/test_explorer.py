"""Drive the explorer programmatically: set widget values, check the re-queried results."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from postback_lab import LogStore, build_plan, read_rules
from postback_lab.plan import PLAN_SCHEMA

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def log(tmp_path):
    rows = []
    for i in range(10):
        rows.append(
            {
                "dispatch_id": f"d{i}",
                "run_id": "r",
                "attempt": 1,
                "rule": "sales" if i < 6 else "leads",
                "transaction_id": f"t{i}",
                "offer_id": "1",
                "publisher_id": "7" if i % 2 else "12",
                "method": "GET",
                "url": f"https://p.example/?t=t{i}",
                "host": "p.example",
                "status": "approved",
                "due_at": T0,
                "fired_at": T0 + timedelta(days=i // 5),
                "latency_ms": float(10 * i),
                "status_code": 500 if i in (2, 7) else 200,
                "outcome": "failed" if i in (2, 7) else "delivered",
                "error": "HTTP 500 boom" if i in (2, 7) else None,
                "source": "sent",
            }
        )
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(rows)
    return db


def test_widgets_are_imported_lazily():

    code = "import postback_lab, sys; print('ipywidgets' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_filters_requery_kpis_and_table(log):
    from postback_lab import explore

    ex = explore(log)
    assert ex.kpi_text() == (
        "80.0% delivered (8 of 10 postbacks) · 10 attempts, 20.0% failed (2) · p95 85 ms"
    )
    ex.filters["rule"].value = ("sales",)
    assert ex.kpi_text() == (
        "83.3% delivered (5 of 6 postbacks) · 6 attempts, 16.7% failed (1) · p95 48 ms"
    )
    assert "6 attempts" in ex.kpi.value
    ex.filters["outcome"].value = ("failed",)
    assert ex.rows()["transaction_id"].to_list() == ["t2"]
    ex.filters["outcome"].value = ()
    ex.filters["rule"].value = ()
    ex.text.value = "boom"
    assert ex.kpi_text() == (
        "0.0% delivered (0 of 2 postbacks) · 2 attempts, 100.0% failed (2) · p95 68 ms"
    )
    ex.text.value = ""
    ex.since.value = date(2024, 1, 2)
    assert ex.rows()["transaction_id"].sort().to_list() == ["t5", "t6", "t7", "t8", "t9"]
    ex.since.value = None
    assert ex.daily().select("day", "attempts").rows() == [
        (datetime(2024, 1, 1, tzinfo=UTC), 5),
        (datetime(2024, 1, 2, tzinfo=UTC), 5),
    ]
    ex.close()


def test_paging(log):
    from postback_lab.notebook import _explore

    old = _explore.PAGE
    _explore.PAGE = 4
    ex = _explore.Explorer(log)
    try:
        assert ex.page.max == 3
        ex.page.value = 3
        assert ex.rows().height == 2
        assert ex.pager_text() == "rows 9–10 of 10 · page 3 of 3"
        ex.filters["publisher_id"].value = ("7",)
        assert ex.page.value == 1 and ex.rows().height == 4
    finally:
        _explore.PAGE = old
        ex.close()


def test_selection_plan_hands_failed_rows_to_a_resend(log):
    from postback_lab import explore

    ex = explore(log)
    ex.filters["outcome"].value = ("failed",)
    plan = ex.selection_plan()
    assert sorted(plan.frame["dispatch_id"]) == ["d2", "d7"]
    assert plan.frame.schema == PLAN_SCHEMA
    assert plan.frame["success"].to_list() == [None, None]  # the log keeps no success check
    rules = read_rules(
        [
            {
                "name": "sales",
                "url": "https://p.example/?t={transaction_id}",
                "success": {"status": [200], "body_matches": "OK"},
            },
            {"name": "leads", "url": "https://p.example/?t={transaction_id}"},
        ]
    )
    again = ex.selection_plan(rules=rules).frame.sort("dispatch_id")
    assert again["success"].to_list() == [rules["sales"].success.to_json(), None]
    assert '"OK"' in again["success"][0]
    ex.close()


def test_selection_from_a_plan_keeps_its_rows(tmp_path):
    from postback_lab import explore

    events = pl.DataFrame(
        {"transaction_id": ["a", "b"], "status": "approved", "occurred_at": "2024-01-01"}
    )
    plan = build_plan(
        events, read_rules([{"name": "r", "url": "https://h.example/?t={transaction_id}"}])
    )
    row = plan.frame.filter(pl.col("transaction_id") == "a").row(0, named=True)
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append(
            [
                {
                    **{
                        k: row[k]
                        for k in (
                            "dispatch_id",
                            "rule",
                            "transaction_id",
                            "url",
                            "host",
                            "due_at",
                            "status",
                            "method",
                        )
                    },
                    "run_id": "r",
                    "attempt": 1,
                    "fired_at": T0,
                    "outcome": "timeout",
                }
            ]
        )
    ex = explore(db)
    assert ex.selection_plan(plan).frame["transaction_id"].to_list() == ["a"]
    ex.close()


def test_headline_equals_the_audits(log):
    from postback_lab import audit, explore

    ex = explore(log)
    assert ex.kpi_text() == audit(log, by=["status_code"]).summary().split(" — ")[0]
    ex.close()


def test_rows_are_one_line_with_times_to_the_second(log):
    from postback_lab import explore

    ex = explore(log)
    frame = ex.table_frame()
    assert frame.columns[0] == "fired (UTC)"
    assert frame["fired (UTC)"][0] == "2024-01-02 00:00:00"
    assert frame.columns == [
        "fired (UTC)",
        "rule",
        "transaction",
        "publisher",
        "outcome",
        "code",
        "ms",
        "error",
        "host",
        "url",
    ]
    assert frame["ms"].to_list() == ["50", "60", "70", "80", "90", "0", "10", "20", "30", "40"]
    assert "white-space:nowrap" in ex.table.value
    assert ex.pager_text() == "rows 1–10 of 10 · page 1 of 1"
    ex.close()


def test_search_finds_transaction_ids_and_dry_runs_can_be_picked(tmp_path, log):
    from postback_lab import explore

    with LogStore(log) as s:
        s.append(
            [
                {
                    "dispatch_id": "dx",
                    "run_id": "r2",
                    "attempt": 1,
                    "rule": "sales",
                    "transaction_id": "tx",
                    "fired_at": T0,
                    "outcome": "dry_run",
                }
            ]
        )
    ex = explore(log)
    ex.text.value = "t7"
    assert ex.rows()["transaction_id"].to_list() == ["t7"]
    ex.text.value = ""
    assert ex.total() == 10  # dry runs are rehearsals: left out ...
    assert "dry_run" in ex.filters["outcome"].options
    ex.filters["outcome"].value = ("dry_run",)  # ... unless asked for
    assert ex.rows()["transaction_id"].to_list() == ["tx"]
    ex.close()


def test_ids_sort_as_numbers(log):
    from postback_lab import explore

    ex = explore(log)
    assert list(ex.filters["publisher_id"].options) == ["7", "12"]
    ex.close()


def test_latency_shows_in_whole_milliseconds():
    from postback_lab.auditing import readable_rows

    rows = pl.DataFrame({"latency_ms": [4.238275, 1234.6, None], "status_code": [200, 500, None]})
    got = readable_rows(rows)
    assert got.columns == ["ms", "code"]
    assert got["ms"].to_list() == [4, 1235, None]


def test_the_daily_chart_names_its_axes_for_people(log):
    from postback_lab import explore

    ex = explore(log)
    enc = ex._chart().to_dict()["encoding"]
    assert (enc["x"]["title"], enc["y"]["title"]) == ("day (UTC)", "failed attempts")
    assert enc["y"]["axis"]["format"] == "%"
    ex.close()


def test_dry_runs_picked_in_the_explorer_are_not_failures(log):
    from postback_lab import explore

    with LogStore(log) as s:
        s.append(
            [
                {
                    "dispatch_id": f"dry{i}",
                    "run_id": "r2",
                    "attempt": 1,
                    "rule": "sales",
                    "transaction_id": f"tx{i}",
                    "fired_at": T0,
                    "outcome": "dry_run",
                }
                for i in range(3)
            ]
        )
    ex = explore(log)
    ex.filters["outcome"].value = ("dry_run",)
    assert ex.headline().attempts == 3 and ex.headline().failed_attempts == 0
    assert ex.daily().rows() == [(T0, 3, 0)]
    ex.filters["outcome"].value = ("dry_run", "failed")
    assert ex.headline().failed_attempts == 2
    ex.close()


def test_the_explorer_keeps_answering_after_its_log_is_closed(log):
    """A notebook's last cell closes the log; filters clicked afterwards still re-query
    (the file opened read-only per query), and a new writer of the file is not blocked."""
    from postback_lab import explore

    store = LogStore(log)
    ex = explore(store)
    assert ex.kpi_text().startswith("80.0% delivered (8 of 10 postbacks)")
    store.close()
    ex.filters["rule"].value = ("leads",)
    assert ex.kpi_text().startswith("75.0% delivered (3 of 4 postbacks)")
    assert "75.0% delivered (3 of 4 postbacks)" in ex.kpi.value
    assert ex.pager_text() == "rows 1–4 of 4 · page 1 of 1"
    with LogStore(log) as again:  # the explorer holds no connection between queries
        again.append(
            [
                {
                    "dispatch_id": "dn",
                    "run_id": "r3",
                    "attempt": 1,
                    "rule": "leads",
                    "transaction_id": "tn",
                    "fired_at": T0,
                    "status_code": 200,
                    "outcome": "delivered",
                }
            ]
        )
        ex.filters["rule"].value = ()
        ex.filters["rule"].value = ("leads",)  # through the writer open in this process
        assert ex.kpi_text().startswith("80.0% delivered (4 of 5 postbacks)")
    log.unlink()
    ex.filters["rule"].value = ()
    assert "cannot read the log" in ex.kpi.value


def test_days_of_a_time_zone(log):
    """Days of the chart and the date pickers are New York days when asked."""
    from postback_lab import explore

    ex = explore(log, timezone="America/New_York")
    # fired 2024-01-01 00:00 and 01-02 00:00 UTC: the evening before in New York
    days = ex.daily().with_columns(pl.col("day").dt.convert_time_zone("America/New_York"))
    assert days.select(pl.col("day").dt.date(), "attempts").rows() == [
        (date(2023, 12, 31), 5),
        (date(2024, 1, 1), 5),
    ]
    ex.since.value = date(2024, 1, 1)
    assert ex.total() == 5  # from New York's midnight (05:00 UTC) on
    enc = ex._chart().to_dict()["encoding"]
    assert enc["x"]["title"] == "day (America/New_York)"
    ex.close()
