"""A SIGKILLed send resumes without loss; httpbin as an independent peer decodes values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import duckdb
import polars as pl
import pytest

from postback_lab import build_plan, read_rules
from postback_lab.receiver import Receiver
from postback_lab.sending import send_sync
from postback_lab.store import LogStore

from .conftest import make_plan


def _log_rows(db) -> int:
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT count(*) FROM postback_log").fetchone()[0]
    except duckdb.Error:
        return 0  # held by the sender, or not created yet


def test_sigkill_mid_send_then_rerun_delivers_all_without_loss(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver(latency_ms=20) as rx:
        # the last 100 hang until the kill, so it lands mid-run however slow the machine
        rx.set_script("/late", ["hang"])
        urls = [f"{rx.url}/p?n={i}" for i in range(300)] + [
            f"{rx.url}/late?n={i}" for i in range(300, 400)
        ]
        plan = make_plan(urls)
        plan.write_parquet(tmp_path / "plan.parquet")
        cmd = [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "send",
            str(tmp_path / "plan.parquet"),
            "--db",
            str(db),
            "--per-host",
            "8",
            "--no-progress",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while len(rx.received()) < 120 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = len(rx.received())
        assert 0 < before < 400, "the kill must land mid-run"
        rx.set_script("/late", ["200"])  # the partner is back for the rerun

        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr

        keys = Counter(r.headers["idempotency-key"] for r in rx.received())
    with LogStore(db) as s:
        log = s.attempts()
    unknown = log.filter(pl.col("error").str.starts_with("result unknown"))
    delivered = log.filter(pl.col("outcome") == "delivered")
    assert set(keys) == set(plan.frame["dispatch_id"])  # everything reached the receiver
    assert delivered["dispatch_id"].n_unique() == 400
    duplicates = sum(c - 1 for c in keys.values())
    assert duplicates <= unknown.height <= 8  # bounded by what was in flight (per-host 8)
    # every request the receiver saw before the kill is either logged or marked unknown
    assert log.filter(pl.col("outcome") != "cancelled").height + unknown.height >= before
    assert not list(tmp_path.glob("*.inflight-*"))


@pytest.fixture
def httpbin_url():
    from httpbin import app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_httpbin_receives_reserved_and_non_ascii_values_exactly(httpbin_url, tmp_path):
    values = ["a b&c=d", "café/Ünïcode ✓", "100% off?#", "emoji 🎉+plus", "日本"]
    frame = pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(values))],
            "status": "approved",
            "occurred_at": "2024-01-01T00:00:00Z",
            "sub1": values,
        }
    )
    rules = read_rules([{"name": "bin", "url": httpbin_url + "/get?v={sub1}&t={transaction_id}"}])
    plan = build_plan(frame, rules)
    db = tmp_path / "log.duckdb"
    result = send_sync(plan, db, progress=False)
    assert result.delivered == len(values)
    with LogStore(db) as s:
        bodies = s.attempts().sort("transaction_id")["response_body"].to_list()
    got = [json.loads(b)["args"]["v"] for b in bodies]
    assert got == values


def test_cli_send_exit_codes(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as rx:
        rx.set_script("/bad", ["404"])
        make_plan([f"{rx.url}/ok"], rule="ok").write_parquet(tmp_path / "ok.parquet")
        make_plan([f"{rx.url}/bad"], rule="bad").write_parquet(tmp_path / "bad.parquet")
        base = [sys.executable, "-m", "postback_lab.cli", "send", "--db", str(db), "--no-progress"]
        ok = subprocess.run([*base, str(tmp_path / "ok.parquet")], capture_output=True, text=True)
        bad = subprocess.run([*base, str(tmp_path / "bad.parquet")], capture_output=True, text=True)
        missing = subprocess.run(
            [*base, str(tmp_path / "nope.parquet")], capture_output=True, text=True
        )
    assert ok.returncode == 0 and "1 delivered" in ok.stdout
    assert bad.returncode == 1 and "1 failed" in bad.stdout
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"postback-lab: error: {tmp_path / 'nope.parquet'}: no such plan file"
    )
    assert os.path.exists(db)


def test_cancellation_logs_what_was_in_flight_and_reports(tmp_path, capsys):
    import asyncio

    from postback_lab.sending import send

    db = tmp_path / "log.duckdb"

    async def main(rx: Receiver) -> None:
        plan = make_plan([f"{rx.url}/p?n={i}" for i in range(300)])
        task = asyncio.create_task(send(plan, db, per_host=4, progress=False))
        while len(rx.received()) < 40:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with Receiver(latency_ms=30) as rx:
        asyncio.run(main(rx))
        seen = {r.headers["idempotency-key"] for r in rx.received()}
    with LogStore(db) as s:
        log = s.attempts()
        runs = s.runs()
    assert runs["state"].to_list() == ["cancelled"]
    assert set(log["dispatch_id"]) >= seen  # every request that went out is in the log
    assert log.filter(pl.col("outcome") == "cancelled").height <= 4  # what was in flight
    assert "send cancelled: run " in capsys.readouterr().err
    assert not list(tmp_path.glob("*.inflight-*"))
