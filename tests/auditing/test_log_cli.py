"""``postback-lab log show|export|prune`` and ``audit --fail-below`` over a real DuckDB log
with exact rows: what is printed, written, deleted, and the exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab.cli import main

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _rows():
    """Ten attempts of ten postbacks: sales t0-t5, leads t6-t9; t2 and t7 failed (500);
    t0-t4 fired on Jan 1, t5-t9 on Jan 2; publisher 12 for even, 7 for odd."""
    return [
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
            "fired_at": T0 + timedelta(days=i // 5, hours=i),
            "latency_ms": float(10 * i),
            "status_code": 500 if i in (2, 7) else 200,
            "outcome": "failed" if i in (2, 7) else "delivered",
            "error": "HTTP 500 boom" if i in (2, 7) else None,
            "source": "sent",
        }
        for i in range(10)
    ]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "log.duckdb"
    with pbl.LogStore(path) as s:
        s.append(_rows())
    return path


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # the width tables fit into; one test narrows it


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_filters_and_headline(db, capsys):
    code, out, _ = run(capsys, "log", "show", "--db", db, "--rule", "sales")
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0] == "83.3% delivered (5 of 6 postbacks) · 6 attempts, 16.7% failed (1) · p95 48 ms"
    )
    assert lines[1].split() == [
        "fired",
        "(UTC)",
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
    assert [ln.split()[3] for ln in lines[3:-1]] == ["t5", "t4", "t3", "t2", "t1", "t0"]
    assert lines[-1] == "6 of 6 attempts shown, newest first"


def test_show_search_finds_transaction_ids_and_limits(db, capsys):
    code, out, _ = run(capsys, "log", "show", "--db", db, "--search", "T7", "--format", "csv")
    assert code == 0
    assert pl.read_csv(out.encode())["transaction_id"].to_list() == ["t7"]
    _, out, _ = run(capsys, "log", "show", "--db", db, "--limit", "2", "--publisher", "7")
    assert out.splitlines()[-1] == "2 of 5 attempts shown, newest first; --limit 5 shows all"
    _, out, _ = run(capsys, "log", "show", "--db", db, "--outcome", "failed", "--format", "json")
    assert [r["transaction_id"] for r in json.loads(out)] == ["t7", "t2"]


def test_show_fits_the_terminal(db, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    _, out, _ = run(capsys, "log", "show", "--db", db)
    assert max(len(line) for line in out.splitlines()[1:-2]) <= 60
    assert out.splitlines()[-2].startswith("(")  # says which columns were left out


def test_export_csv_and_parquet_with_filters(db, tmp_path, capsys):
    code, out, _ = run(capsys, "log", "export", "--db", db, "--to", tmp_path / "all.csv")
    assert (code, out) == (0, f"10 attempts written to {tmp_path / 'all.csv'}\n")
    every = pl.read_csv(tmp_path / "all.csv")
    assert every.columns == list(pbl.store.LOG_COLUMNS)
    assert every["transaction_id"].to_list() == [f"t{i}" for i in range(10)]
    code, _, _ = run(
        capsys,
        "log",
        "export",
        "--db",
        db,
        "-o",  # -o/--output as wherever a command writes a file; --to is the same option
        tmp_path / "f.parquet",
        "--outcome",
        "failed",
        "--since",
        "2024-01-02",
    )
    assert code == 0
    assert pl.read_parquet(tmp_path / "f.parquet")["transaction_id"].to_list() == ["t7"]


def test_export_to_a_table_path_is_not_mistaken_for_a_file(db, tmp_path, capsys):
    code, _, err = run(
        capsys, "log", "export", "--db", db, "--to", tmp_path / "lake", "--rule", "sales"
    )
    assert code == 2
    assert "a Delta export appends the whole log" in err and ".csv and .parquet" in err
    assert not (tmp_path / "lake").exists()
    code, _, err = run(capsys, "log", "export", "--db", db, "--to", tmp_path / "no" / "x.csv")
    assert code == 2 and "does not exist" in err


def test_prune_keeps_delivered_and_moves_the_audit_start(db, capsys):
    code, out, _ = run(capsys, "log", "prune", "--db", db, "--before", "2024-01-02", "--dry-run")
    assert code == 0 and out.startswith("would delete 1 attempts fired before 2024-01-02 00:00:00")
    with pbl.LogStore(db) as s:
        assert s.count() == 10
    code, out, _ = run(capsys, "log", "prune", "--db", db, "--before", "2024-01-02")
    assert out.startswith("deleted 1 attempts") and "kept the 4 delivered" in out
    with pbl.LogStore(db) as s:
        assert s.count() == 9
        assert s.delivered_ids() == {f"d{i}" for i in (0, 1, 3, 4, 5, 6, 8, 9)}
        report = pbl.audit(s, by=["rule"])
        # the audit starts at the cut-off: only Jan 2 (t5-t9) counts
        assert report.frame.select("rule", "dispatches", "delivered").rows() == [
            ("leads", 4, 3),
            ("sales", 1, 1),
        ]
        assert "pruned before 2024-01-02" in report.summary()
    _, out, _ = run(capsys, "log", "show", "--db", db)
    assert out.splitlines()[-1] == "5 of 5 attempts shown, newest first"


def test_audit_fail_below_names_the_groups(db, capsys):
    code, out, err = run(capsys, "audit", "--db", db, "--by", "rule", "--fail-below", "0.8")
    assert code == 1
    assert err.strip() == (
        "postback-lab: 1 group below 80.0% delivered: rule=leads 75.0% (3 of 4 postbacks)"
    )
    assert out.splitlines()[0].startswith("80.0% delivered (8 of 10 postbacks)")
    code, _, err = run(capsys, "audit", "--db", db, "--by", "rule", "--fail-below", "75%")
    assert (code, err) == (0, "")
    code, _, err = run(capsys, "audit", "--db", db, "--fail-below", "1.5")
    assert code == 2 and "--fail-below" in err


def test_headline_is_the_same_whatever_the_grouping(db):
    with pbl.LogStore(db) as s:
        # a postback retried into another status code and day: by status code or by day
        # it appears in two groups, yet the headline counts it once
        s.append(
            [
                {
                    **_rows()[2],
                    "attempt": 2,
                    "fired_at": T0 + timedelta(days=3),
                    "status_code": 200,
                    "outcome": "delivered",
                    "error": None,
                }
            ]
        )
        lines = {
            by: pbl.audit(s, by=[by]).summary().split(" — ")[0]
            for by in ("rule", "status_code", "day", "publisher_id")
        }
    assert set(lines.values()) == {
        "90.0% delivered (9 of 10 postbacks) · 11 attempts, 18.2% failed (2) · p95 85 ms"
    }
