"""Reading a log never creates or writes one: audit, reconcile, explore, ``log show`` and
``log export`` of a missing log are errors naming it (nothing is created); reading an
existing log leaves its bytes as they were (no migration in place, no journal replayed,
no retried marks written); backfill needs an existing log (send is for no history)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import postback_lab as pbl
from postback_lab import LogStore, StoreError, build_plan, read_rules
from postback_lab.cli import main
from postback_lab.store import SCHEMA_VERSION
from postback_lab.store._schema import MIGRATIONS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _plan() -> pbl.Plan:
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3"],
            "status": "approved",
            "occurred_at": [T0 + timedelta(minutes=i) for i in range(3)],
        }
    )
    return build_plan(
        events, read_rules([{"name": "sales", "url": "https://p.example/?t={transaction_id}"}])
    )


def _files(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` and a hash of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_reading_a_missing_log_is_an_error_and_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "typo.duckdb"
    plan = _plan()
    for read in (
        lambda: pbl.audit(str(typo)),
        lambda: pbl.audit(typo),
        lambda: pbl.reconcile(plan, str(typo)),
        lambda: pbl.explore(typo),
        lambda: LogStore(typo, read_only=True),
    ):
        with pytest.raises(StoreError, match=f"^no such log: {re.escape(str(typo))}$"):
            read()
    with pytest.raises(StoreError, match=r"no such log: .*; backfill sends what the log"):
        pbl.backfill_sync(plan, typo, dry_run=True, progress=False)
    for args in (
        ["audit", "--db", str(typo)],
        ["log", "show", "--db", str(typo)],
        ["log", "export", "--db", str(typo), "--to", str(tmp_path / "x.csv")],
        ["log", "export", "--db", str(typo), "--to", str(tmp_path / "delta")],
        ["log", "prune", "--db", str(typo), "--before", "2024-01-01"],
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"postback-lab: error: no such log: {typo}"), err
    assert list(tmp_path.iterdir()) == []


def test_cli_backfill_of_a_missing_log_says_use_send(tmp_path, run_cli):
    events = tmp_path / "events.csv"
    events.write_text("transaction_id,status,occurred_at\nt1,approved,2024-01-01T00:00:00Z\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("postbacks:\n  - name: r\n    url: https://p.example/?t={transaction_id}\n")
    db = tmp_path / "typo.duckdb"
    got = run_cli("backfill", events, "--rules", rules, "--db", db, "--no-progress")
    assert got.returncode == 2
    assert got.stderr == (
        f"postback-lab: error: no such log: {db}; backfill sends what the log of earlier sends "
        "lacks. To send a plan with no history, use send (postback-lab send PLAN --db LOG)\n"
    )
    assert not db.exists()


def _log_with_work_left(db: Path, plan: pbl.Plan) -> None:
    """A log whose retried marks lag (rows appended without marks, as after a crash) and
    with a dead run's journal beside it: what a writer would tidy up, and a reader not."""
    rows = plan.frame.select(
        "dispatch_id", "rule", "transaction_id", "url", "host", "due_at"
    ).with_columns(
        pl.lit("r1").alias("run_id"),
        pl.lit(1, pl.Int32).alias("attempt"),
        pl.lit(T0).alias("fired_at"),
        pl.lit("failed").alias("outcome"),
    )
    with LogStore(db) as s:
        s.append(rows, mark=True)
        s.append(rows.head(1).with_columns(pl.lit(2, pl.Int32).alias("attempt")), mark=False)
        s.sql("CHECKPOINT")
    journal = db.with_name(f"{db.name}.inflight-dead0000.jsonl")
    journal.write_text(
        '{"k": "owner", "note": "pid:999999999 start:1 boot:gone host:?"}\n'
        '{"k": "start", "dispatch_id": "dz", "run_id": "dead0000", "attempt": 1}\n'
    )


def test_reading_an_existing_log_changes_no_byte(tmp_path, capsys):
    db = tmp_path / "log.duckdb"
    plan = _plan()
    _log_with_work_left(db, plan)
    before = _files(tmp_path)
    report = pbl.audit(db, by="rule")
    assert report.frame.select("dispatches", "attempts").rows() == [(3, 4)]
    assert pbl.reconcile(plan, db).totals["failed"] == 3
    explorer = pbl.explore(db)
    try:
        assert explorer.headline().attempts == 4
    finally:
        explorer.close()
    assert main(["log", "show", "--db", str(db)]) == 0
    assert main(["log", "export", "--db", str(db), "--to", str(tmp_path / "out.parquet")]) == 0
    assert main(["audit", "--db", str(db)]) == 0
    (tmp_path / "out.parquet").unlink()
    assert _files(tmp_path) == before  # the journal still there, the log's bytes the same
    assert "1 attempts of a run that stopped are pending" in capsys.readouterr().err
    with LogStore(db, read_only=True) as s:
        assert s.retried_upto() < s.sql("SELECT max(rowid) FROM postback_log").item()


def test_an_older_log_is_read_from_a_migrated_copy_never_in_place(tmp_path):
    db = tmp_path / "v2.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(MIGRATIONS[1] + MIGRATIONS[2])
        con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        con.execute(
            "INSERT INTO postback_log (dispatch_id, run_id, attempt, rule, outcome, fired_at) "
            "VALUES ('d1', 'r1', 1, 'sales', 'delivered', TIMESTAMPTZ '2024-01-01 00:00:00+00')"
        )
    before = _files(tmp_path)
    assert pbl.audit(db).frame.select("rule", "delivered").rows() == [("sales", 1)]
    with LogStore(db, read_only=True) as s:
        assert s.schema_version == SCHEMA_VERSION
    assert _files(tmp_path) == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("2",)]
    with LogStore(db) as s:  # a writer migrates it
        assert s.schema_version == SCHEMA_VERSION


def test_a_file_that_is_not_a_log_is_refused_for_reading(tmp_path):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="not a postback_lab attempt log"):
        pbl.audit(other)
    assert _files(tmp_path) == before


def test_a_writer_while_this_process_reads_the_file_is_told_to_close_the_reader(tmp_path):
    """DuckDB keeps one configuration per file and process: a read-only reader (an
    explorer opened by path) and a writer cannot share it; the writer is told so."""
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    explorer = pbl.explore(db)
    try:
        with pytest.raises(pbl.StoreLockedError, match="already open for reading in this process"):
            pbl.send_sync(_plan(), db, dry_run=True, progress=False)
    finally:
        explorer.close()
    assert pbl.send_sync(_plan(), db, dry_run=True, progress=False).rehearsed == 3
