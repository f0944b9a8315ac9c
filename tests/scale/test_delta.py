"""The central log as a Delta Lake table: exactly-once appends by (run, batch) transaction
ids, partitioned by month; audit, reconcile and the explorer read it as "delta:PATH"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import postback_lab as pbl
from postback_lab._errors import StoreError
from postback_lab.cli import main
from postback_lab.scale import DeltaLog, export_log, open_delta_log, optimize_log
from postback_lab.store import LogReader, LogStore, log_writer, open_log

pytest.importorskip("deltalake", reason="the [delta] extra is not installed")

START = datetime(2026, 10, 20, tzinfo=UTC)


def make_log(path, rows: int, run: str | None = "run-a", *, first: int = 0, state="completed"):
    """A DuckDB log with ``rows`` attempts of one run over two months (Oct, Nov 2026)."""
    idx = range(first, first + rows)
    frame = pl.DataFrame(
        {
            "dispatch_id": [f"d{i:06d}" for i in idx],
            "run_id": [run] * rows,
            "attempt": [1] * rows,
            "rule": [f"rule {i % 3}" for i in idx],
            "transaction_id": [f"T{i}" for i in idx],
            "status": ["approved"] * rows,
            "host": [f"h{i % 4}.example.com" for i in idx],
            "method": ["GET"] * rows,
            "url": [f"http://h{i % 4}.example.com/?t=T{i}" for i in idx],
            "fired_at": [START + timedelta(hours=i) for i in idx],
            "due_at": [START + timedelta(hours=i) for i in idx],
            "status_code": [200 if i % 5 else 500 for i in idx],
            "outcome": ["delivered" if i % 5 else "failed" for i in idx],
            "latency_ms": [float(i % 50) for i in idx],
            "source": ["sent"] * rows,
        }
    )
    with pbl.LogStore(path) as log:
        log.append(frame)
        if run is not None:
            log.sql(
                "INSERT INTO runs (run_id, kind, started_at, state) VALUES (?, 'send', now(), ?)",
                [run, state],
            )
    return frame


def delta_rows(path) -> pl.DataFrame:
    with open_delta_log(path) as log:
        return log.attempts()


def test_export_is_exactly_once_and_partitioned_by_month(tmp_path):
    db = tmp_path / "shard1.duckdb"
    make_log(db, 1_000)
    first = export_log(db, tmp_path / "central", batch_rows=300)
    assert first.rows == 1_000 and first.runs == {"run-a": 1_000}
    assert first.version == 3  # four batches: versions 0..3
    again = export_log(db, tmp_path / "central", batch_rows=300)
    assert again.rows == 0 and again.already == 1
    assert "nothing new to export (1 runs already exported)" in str(again)
    months = sorted(p.name for p in (tmp_path / "central").iterdir() if p.name != "_delta_log")
    assert months == ["month=2026-10", "month=2026-11"]
    got = delta_rows(tmp_path / "central")
    with pbl.LogStore(db, read_only=True) as log:
        want = log.attempts()
    assert got.sort("dispatch_id").equals(want.sort("dispatch_id"))

    # rows the log gets later (a crashed run recovered, hand-appended rows) go out next time
    make_log(db, 50, run=None, first=5_000)
    later = export_log(db, tmp_path / "central")
    assert later.rows == 50 and later.already == 1
    assert delta_rows(tmp_path / "central").height == 1_050


def test_a_running_run_waits_for_a_later_export(tmp_path):
    make_log(tmp_path / "l.duckdb", 10, run="live", state="running")
    result = export_log(tmp_path / "l.duckdb", tmp_path / "central")
    assert result.rows == 0 and result.skipped == ("live",)
    assert "1 runs still running, left for a later export: live" in str(result)


def test_audit_reconcile_and_explorer_read_the_delta_log(tmp_path):
    db = tmp_path / "l.duckdb"
    frame = make_log(db, 600)
    export_log(db, tmp_path / "central", batch_rows=250)
    central = f"delta:{tmp_path / 'central'}"
    for by in (["rule"], ["host", "day"], ["status_code"]):
        want = pbl.audit(str(db), by=by).frame
        got = pbl.audit(central, by=by).frame
        assert got.equals(want), by
    plan = pbl.read_plan(
        frame.select(
            "dispatch_id",
            "rule",
            "transaction_id",
            pl.lit("conversion").alias("event_type"),
            "status",
            pl.lit("1").alias("offer_id"),
            pl.lit("7").alias("publisher_id"),
            "method",
            "url",
            pl.lit(None, pl.String).alias("body"),
            "host",
            "due_at",
        )
    )
    assert pbl.reconcile(plan, central).totals == pbl.reconcile(plan, str(db)).totals
    explorer = pbl.explore(central)
    try:
        assert explorer.headline().attempts == 600
    finally:
        explorer.close()
    with open_delta_log(tmp_path / "central") as log:
        assert isinstance(log, DeltaLog) and log.count() == 600
        assert log.runs()["attempts"].to_list() == [600]
        # a reader, not a LogStore: no writer, no append
        assert isinstance(log, LogReader) and not isinstance(log, LogStore)
        assert not hasattr(log, "append")
        with pytest.raises(StoreError, match="a Delta log is read here, never written"):
            log_writer(log)
    for mode in ("create", "update"):  # what send, backfill and import-log open
        with pytest.raises(StoreError, match="a Delta log is read here, never written"):
            open_log(f"delta:{tmp_path / 'central'}", mode)


def test_a_dispatch_sent_by_two_shard_logs_counts_once(tmp_path):
    """After a change of the number of shards a failed dispatch is retried by another
    shard, whose log numbers it attempt 1 again: the Delta audit counts one dispatch."""
    a = make_log(tmp_path / "a.duckdb", 5, run="ra")  # d000000 failed (i % 5 == 0)
    retry = a.head(1).with_columns(
        pl.lit("rb").alias("run_id"),
        pl.lit(200).alias("status_code"),
        pl.lit("delivered").alias("outcome"),
        pl.col("fired_at") + timedelta(days=1),
    )
    with pbl.LogStore(tmp_path / "b.duckdb") as log:
        log.append(retry)
    for name in ("a", "b"):
        export_log(tmp_path / f"{name}.duckdb", tmp_path / "central")
    got = pbl.audit(f"delta:{tmp_path / 'central'}", by=[]).frame.row(0, named=True)
    assert (got["dispatches"], got["delivered"], got["attempts"]) == (5, 5, 6)


EXPORT = (
    "import sys; from postback_lab.scale import export_log; "
    "print(export_log(sys.argv[1], sys.argv[2], batch_rows=int(sys.argv[3])))"
)


def test_concurrent_exports_add_every_row_once(tmp_path):
    """Two shard logs exported at once, and the first one twice at once: every row once."""
    make_log(tmp_path / "s1.duckdb", 1_500, run="r1")
    make_log(tmp_path / "s2.duckdb", 1_500, run="r2", first=10_000)
    to = str(tmp_path / "central")
    export_log(tmp_path / "s1.duckdb", to, batch_rows=10)  # create the table first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT, str(tmp_path / db), to, "50"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for db in ("s2.duckdb", "s2.duckdb", "s1.duckdb")
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    rows = delta_rows(to)
    assert rows.height == 3_000
    assert rows.select("run_id", "dispatch_id", "attempt").is_duplicated().sum() == 0


def test_a_killed_export_run_again_adds_no_duplicate(tmp_path):
    make_log(tmp_path / "s.duckdb", 3_000, run="big")
    to = tmp_path / "central"
    proc = subprocess.Popen(
        [sys.executable, "-c", EXPORT, str(tmp_path / "s.duckdb"), str(to), "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    commits = []
    while time.monotonic() < deadline and len(commits) < 15:
        time.sleep(0.05)
        commits = list((to / "_delta_log").glob("*.json")) if (to / "_delta_log").exists() else []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = delta_rows(to).height
    assert 0 < before < 3_000 and before % 10 == 0  # whole batches only
    result = export_log(tmp_path / "s.duckdb", to, batch_rows=10)
    assert result.rows == 3_000 - before
    rows = delta_rows(to)
    assert rows.height == 3_000 and rows["dispatch_id"].n_unique() == 3_000


def test_cli_log_export_audit_and_optimize(tmp_path, capsys):
    db = tmp_path / "l.duckdb"
    make_log(db, 400)
    to = tmp_path / "central"
    assert main(["log", "export", "--db", str(db), "--to", str(to), "--batch-rows", "100"]) == 0
    assert main(["log", "export", "--db", str(db), "--to", str(to)]) == 0
    out = capsys.readouterr().out
    assert "exported 400 attempts from 1 runs" in out and "nothing new to export" in out
    assert main(["audit", "--db", str(db), "--by", "rule,day", "--format", "json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["audit", "--db", f"delta:{to}", "--by", "rule,day", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert main(["log", "optimize", str(to)]) == 0
    assert "compacted 5 files into 2" in capsys.readouterr().out  # 4 batches, 1 spans 2 months
    assert delta_rows(to).height == 400
    assert main(["log", "export", "--db", str(db), "--to", str(tmp_path / "rows.csv")]) == 0
    assert pl.read_csv(tmp_path / "rows.csv").height == 400
    assert main(["audit", "--db", f"delta:{tmp_path / 'nowhere'}"]) == 2
    assert "no Delta log here" in capsys.readouterr().err
    assert optimize_log(to)["numFilesAdded"] == 0


def test_an_export_that_loses_many_races_to_another_still_finishes(tmp_path, monkeypatch):
    """Each batch committed first by another export of the same run (simulated: the
    batch is appended, then this export is told its commit failed): 30 conflicts, every
    one with progress, end in every row once, not in 'cannot append'."""
    import deltalake

    from postback_lab.scale import _delta

    make_log(tmp_path / "s.duckdb", 300, run="r")
    real = _delta._append
    lost = []

    def first_by_someone_else(dl, table, batch, app_id, version, storage_options):
        real(dl, table, batch, app_id, version, storage_options)
        if len(lost) < 30:
            lost.append(version)
            raise deltalake.exceptions.CommitFailedError("a concurrent transaction won")

    monkeypatch.setattr(_delta, "_append", first_by_someone_else)
    result = export_log(tmp_path / "s.duckdb", tmp_path / "central", batch_rows=10)
    rows = delta_rows(tmp_path / "central")
    assert len(lost) == 30 and result.rows == 0  # every batch was "someone else's"
    assert rows.height == 300
    assert rows.select("run_id", "dispatch_id", "attempt").is_duplicated().sum() == 0


def test_prune_between_an_interrupted_export_and_its_resume_loses_nothing(
    tmp_path, monkeypatch, capsys
):
    """The issue's scenario, scaled down: 60 postbacks, the first 30 attempts failed and
    succeeded on retry; the export stops after 2 commits of 10 rows. A prune then refuses,
    naming the export and how far behind it is; once the export is forgotten, a prune and
    the resumed export still put every delivered dispatch in the table once, and a fresh
    shard sending with --central re-fires nothing."""
    from postback_lab.scale import _delta

    exports = tmp_path / "shard.duckdb.exports"  # where the export notes its table
    events = pl.DataFrame(
        {
            "transaction_id": [f"T{i:03d}" for i in range(60)],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
        }
    )
    db, to, plan_file = tmp_path / "shard.duckdb", tmp_path / "central", tmp_path / "plan.pq"
    with pbl.Receiver() as rx:
        rx.set_script("/pb", ["500"] * 30 + ["200"])
        rules = pbl.read_rules([{"name": "r", "url": rx.url + "/pb?t={transaction_id}"}])
        pbl.sink_plan(events, rules, plan_file)
        sent = pbl.send_sync(
            str(plan_file),
            db,
            retry=pbl.Retry(delays=(0.01,)),
            breaker=pbl.Breaker.off(),
            progress=False,
        )
        assert (sent.delivered, sent.attempts) == (60, 90), str(sent)
        cut = datetime.now(UTC)

        real, commits = _delta._append, []

        def killed_after_two(*args, **kwargs):
            if len(commits) == 2:
                raise KeyboardInterrupt  # the export process stops here
            real(*args, **kwargs)
            commits.append(1)

        monkeypatch.setattr(_delta, "_append", killed_after_two)
        with pytest.raises(KeyboardInterrupt):
            export_log(db, to, batch_rows=10)
        monkeypatch.setattr(_delta, "_append", real)
        taken = delta_rows(to)
        assert taken.height == 20
        with pbl.LogStore(db, read_only=True) as log:
            failed = log.attempts().filter(pl.col("outcome") != "delivered")
        behind = failed.join(taken, on=["run_id", "dispatch_id", "attempt"], how="anti").height
        assert 0 < behind <= 30

        before = cut.isoformat()
        assert main(["log", "prune", "--db", str(db), "--before", before]) == 2
        assert capsys.readouterr().err == (
            f"postback-lab: error: {db}: the Delta export to {to} has not taken {behind} of the "
            f"attempts this prune would delete; run postback-lab log export --db {db} --to {to} "
            f"first (to forget that export, remove its line from {exports})\n"
        )
        with pbl.LogStore(db, read_only=True) as log:
            assert log.count() == 90  # nothing deleted

        exports.unlink()  # forget the export: the prune goes ahead
        assert main(["log", "prune", "--db", str(db), "--before", before]) == 0
        with pbl.LogStore(db, read_only=True) as log:
            assert log.count() == 60
        result = export_log(db, to, batch_rows=10)  # the resumed export
        rows = delta_rows(to)
        delivered = rows.filter(pl.col("outcome") == "delivered")
        assert delivered["dispatch_id"].n_unique() == delivered.height == 60
        assert rows.select("run_id", "dispatch_id", "attempt").is_duplicated().sum() == 0
        assert result.rows == rows.height - 20
        assert export_log(db, to).rows == 0  # and again: nothing twice

        n = len(rx.received())
        fresh = tmp_path / "fresh.duckdb"
        code = main(
            [
                "send",
                str(plan_file),
                "--db",
                str(fresh),
                "--central",
                f"delta:{to}",
                "--no-progress",
            ]
        )
        assert code == 0
        assert "60 dispatches already delivered" in capsys.readouterr().out
        assert len(rx.received()) == n  # re-fired nothing


def test_an_export_keeps_prune_from_deleting_what_it_has_not_taken(tmp_path, capsys):
    db = tmp_path / "l.duckdb"
    make_log(db, 50)  # 10 failed attempts (every 5th)
    to = tmp_path / "central"
    export_log(db, to, batch_rows=10)
    assert main(["log", "prune", "--db", str(db), "--before", "2026-12-01"]) == 0
    assert "deleted 10 attempts" in capsys.readouterr().out
    assert delta_rows(to).height == 50  # the central log keeps them


def test_prune_refuses_a_cut_off_in_the_future(tmp_path, capsys):
    db = tmp_path / "l.duckdb"
    make_log(db, 10, run=None)
    assert main(["log", "prune", "--db", str(db), "--before", "2099-01-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("postback-lab: error: --before 2099-01-01 00:00:00 UTC is in the future")
    with pbl.LogStore(db, read_only=True) as log:
        assert log.count() == 10
        assert log.sql("SELECT count(*) FROM meta WHERE key = 'pruned_before'").item() == 0
