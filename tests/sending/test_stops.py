"""How a send stops: SIGTERM like Ctrl-C, a log that cannot be written, a backfill that
finds a dead run's journal; and backfill's retry options, non-ASCII headers."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import subprocess
import sys
import time
from collections import Counter

import polars as pl
import pytest

from postback_lab import LogStore, StoreError, build_plan, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import ENGINES, Retry, send, send_sync
from postback_lab.store import LogWriter, log_writer

from .conftest import make_plan
from .test_one_writer import dead_owner, write_journal

CLI = [sys.executable, "-m", "postback_lab.cli"]


def test_sigterm_finishes_the_log_like_ctrl_c(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver(latency_ms=20) as rx:
        # the last 100 hang, so SIGTERM lands mid-run however slow the machine
        rx.set_script("/late", ["hang"])
        urls = [f"{rx.url}/p?n={i}" for i in range(300)] + [
            f"{rx.url}/late?n={i}" for i in range(300, 400)
        ]
        make_plan(urls).write_parquet(tmp_path / "p.parquet")
        proc = subprocess.Popen(
            [*CLI, "send", str(tmp_path / "p.parquet"), "--db", str(db), "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 30
        while len(rx.received()) < 60 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        seen = {r.headers["idempotency-key"] for r in rx.received()}
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "terminated; completed attempts are in the log"
    assert "send cancelled: run " in err and "Traceback" not in err
    with LogStore(db) as s:
        assert s.runs()["state"].to_list() == ["cancelled"]
        logged = set(s.attempts()["dispatch_id"])
    assert logged >= seen  # every request that went out is in the log
    assert not list(tmp_path.glob("*.inflight-*"))


def _fsize_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_stops_sending_with_one_clear_error(tmp_path):
    """The files may not grow past 1 MB (as on a full disk): the send stops at the first
    write that fails, with one sentence; a later run delivers the rest exactly once."""
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    with Receiver() as rx:
        urls = [f"{rx.url}/p?n={i}&pad={'x' * 200}" for i in range(3000)]
        make_plan(urls).write_parquet(tmp_path / "p.parquet")
        cmd = [*CLI, "send", str(tmp_path / "p.parquet"), "--db", str(db), "--no-progress"]
        full = subprocess.run(
            cmd, capture_output=True, text=True, preexec_fn=_fsize_limit(1_000_000), timeout=120
        )
        stopped_at = len(rx.received())
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        keys = Counter(r.headers["idempotency-key"] for r in rx.received())
    assert full.returncode == 2
    [line] = full.stderr.splitlines()
    assert line.startswith(f"postback-lab: error: {db}: cannot write its crash journal ")
    assert "File too large" in line and "sending stopped after " in line
    assert 0 < stopped_at < 3000
    assert again.returncode == 0, again.stderr
    assert len(keys) == 3000 and sum(keys.values()) - 3000 <= 8  # at most what was in flight
    with LogStore(db) as s:
        delivered = s.attempts().filter(pl.col("outcome") == "delivered")
        assert s.runs()["state"].to_list() == ["failed", "completed"]
    assert delivered["dispatch_id"].n_unique() == delivered.height == 3000


def test_a_log_that_cannot_be_appended_stops_the_run(tmp_path, monkeypatch, caplog):
    db = tmp_path / "log.duckdb"
    calls = []
    real = LogWriter.append

    def failing(self, rows, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise StoreError(f"{self.path}: cannot write the log (IO Error: No space left)")
        return real(self, rows, **kw)

    monkeypatch.setattr(LogWriter, "append", failing)
    caplog.set_level(logging.DEBUG, logger="asyncio")
    with Receiver() as rx:
        plan = make_plan([f"{rx.url}/p?n={i}" for i in range(3000)])
        with pytest.raises(StoreError) as err:
            send_sync(plan, db, progress=False)
        sent = len(rx.received())
    assert str(err.value).startswith(f"{db}: cannot write the log (IO Error: No space left)")
    assert "the next send or backfill adds them" in str(err.value)
    assert sent < 3000
    assert "exception was never retrieved" not in caplog.text
    monkeypatch.setattr(LogWriter, "append", real)
    with Receiver() as rx, LogStore(db) as s:
        log_writer(s).recover_inflight()  # the journal kept what the log lacked
        assert s.count() >= sent - 8  # at most what was in flight is unknown


def test_backfill_takes_retries_and_retry_for(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("transaction_id,status,occurred_at\nt1,approved,2024-01-01T00:00:00Z\n")
    with Receiver() as rx:
        rx.set_script("/p", ["500"])
        rules = tmp_path / "rules.yaml"
        rules.write_text(f"postbacks:\n  - name: r\n    url: {rx.url}/p?t={{transaction_id}}\n")
        base = [*CLI, "backfill", str(events), "--rules", str(rules), "--no-progress"]
        for db in "abc":  # backfill needs an existing log (send is for no history)
            LogStore(tmp_path / f"{db}.duckdb").close()
        none = subprocess.run(
            [*base, "--db", str(tmp_path / "a.duckdb"), "--retries", "none"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        two = subprocess.run(
            [*base, "--db", str(tmp_path / "b.duckdb"), "--retries", "0.2s,0.2s"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        cut = subprocess.run(
            [*base, "--db", str(tmp_path / "c.duckdb"), "--retries", "2", "--retry-for", "1s"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        bad = subprocess.run([*base, "--retries", "often"], capture_output=True, text=True)
    assert none.returncode == two.returncode == cut.returncode == 1, none.stderr
    for db, attempts in (("a", 1), ("b", 3), ("c", 1)):  # c: the 5s retry is past 1s
        with LogStore(tmp_path / f"{db}.duckdb") as s:
            assert s.count() == attempts, db
    assert bad.returncode == 2
    assert bad.stderr == (
        "postback-lab: error: --retries 'often': use default, short, none, a number of "
        "retries or delays like 1s,5s,30s\n"
    )
    assert Retry.parse("2") == Retry(delays=(5.0, 300.0))
    assert Retry.parse("6").delays == (5.0, 300.0, 1800.0, 7200.0, 7200.0, 7200.0)


def test_backfill_replays_a_dead_runs_journal_before_reconciling(tmp_path):
    db = tmp_path / "log.duckdb"
    events = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2"],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
        }
    )
    with Receiver() as rx:
        plan = build_plan(
            events, read_rules([{"name": "r", "url": rx.url + "/p/{transaction_id}"}])
        )
        first = plan.frame.filter(pl.col("transaction_id") == "t1").row(0, named=True)
        LogStore(db).close()
        line = {
            "k": "done",
            **{k: first[k] for k in ("dispatch_id", "rule", "transaction_id", "url", "host")},
            "run_id": "deadrun",
            "attempt": 1,
            "status": "approved",
            "due_at": str(first["due_at"]),
            "fired_at": str(first["due_at"]),
            "outcome": "delivered",
            "status_code": 200,
        }
        write_journal(db, "deadrun", dead_owner(), [json.dumps(line) + "\n"])
        from postback_lab import backfill_sync

        result = backfill_sync(plan, db, progress=False)
        got = [r.path for r in rx.received()]
    assert got == ["/p/t2"]  # t1 was delivered by the run that died
    assert result.reconciliation.totals["delivered"] == 1
    assert len(result.to_send) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_non_ascii_header_values_go_out_as_utf8(engine, tmp_path):
    events = pl.DataFrame(
        {
            "transaction_id": ["t1"],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
            "sub1": ["Zoë ✓"],
        }
    )
    with Receiver() as rx:
        rules = read_rules(
            [{"name": "r", "url": rx.url + "/p", "headers": {"X-Name": "Ünï {sub1}"}}]
        )
        result = send_sync(
            build_plan(events, rules), tmp_path / "log.duckdb", engine=engine, progress=False
        )
        got = rx.received()[0].headers["x-name"]
    assert result.delivered == 1
    assert got.encode("latin-1").decode("utf-8") == "Ünï Zoë ✓"


def test_cancelled_send_task_logs_and_releases_the_store(tmp_path):
    """After a cancelled send the same LogStore takes the next send (the hold is released)."""
    db = tmp_path / "log.duckdb"

    async def main(rx: Receiver) -> int:
        plan = make_plan([f"{rx.url}/p?n={i}" for i in range(200)])
        with LogStore(db) as store:
            task = asyncio.create_task(send(plan, store, per_host=2, progress=False))
            while len(rx.received()) < 10:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            again = await send(plan, store, progress=False)
            return again.delivered + again.skipped_delivered

    with Receiver(latency_ms=10) as rx:
        assert asyncio.run(main(rx)) == 200
