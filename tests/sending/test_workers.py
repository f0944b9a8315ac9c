"""Sending from worker processes: hosts split across processes, one writer of the log,
exactly once; a killed send with workers loses nothing that completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import polars as pl
import pytest

from postback_lab import LogStore, StoreError
from postback_lab.receiver import Receiver
from postback_lab.sending import FakeClock, SendOptions, send_sync
from postback_lab.sending._workers import shards, worker_count
from postback_lab.store import LogWriter, log_writer
from postback_lab.store._journal import journal_owner

from .conftest import make_plan


def test_exactly_once_across_four_hosts_and_two_workers(tmp_path):
    db = tmp_path / "log.duckdb"
    receivers = [Receiver().start() for _ in range(4)]
    try:
        urls = [f"{receivers[i % 4].url}/pb?n={i}" for i in range(2000)]
        plan = make_plan(urls)
        result = send_sync(plan, db, workers=2, concurrency=32, progress=False)
        keys = Counter(r.headers["idempotency-key"] for rx in receivers for r in rx.received())
        again = send_sync(plan, db, workers=2, progress=False)
    finally:
        for rx in receivers:
            rx.stop()
    assert (result.state, result.delivered, result.failed, result.attempts) == (
        "completed",
        2000,
        0,
        2000,
    )
    assert sorted(result.by_host["delivered"].to_list()) == [500, 500, 500, 500]
    assert set(keys) == set(plan.frame["dispatch_id"]) and set(keys.values()) == {1}
    assert (again.skipped_delivered, again.attempts) == (2000, 0)
    with LogStore(db) as s:
        log = s.attempts()
        runs = s.sql("SELECT state, attempts, delivered FROM runs ORDER BY started_at").rows()
    assert log.height == 2000 and log["dispatch_id"].n_unique() == 2000
    assert set(log["run_id"]) == {result.run_id}
    assert runs == [("completed", 2000, 2000), ("completed", 0, 0)]
    assert not list(tmp_path.glob("*.jsonl"))  # every worker deleted its journal


def test_shards_balance_hosts_and_workers_are_capped():
    todo = pl.DataFrame({"host": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 1})
    parts = shards(todo, 2)
    assert sorted(sorted(set(p["host"])) for p in parts) == [["a", "d"], ["b", "c"]]
    assert worker_count(SendOptions(workers=8), hosts=3) == 3
    cores = os.cpu_count() or 1
    assert worker_count(SendOptions(workers=None), hosts=100) == cores
    assert SendOptions().workers is None  # the default: as many as is worth it
    assert worker_count(SendOptions(), hosts=100, rows=100_000) == cores
    assert worker_count(SendOptions(), hosts=100, rows=1_999) == 1  # not worth a start
    assert worker_count(SendOptions(), hosts=100, rows=4_000) == min(cores, 2)
    assert worker_count(SendOptions(), hosts=1, rows=100_000) == 1
    assert worker_count(SendOptions(workers=3), hosts=100, rows=10) == 3  # asked for
    fake = FakeClock(datetime.now(UTC))
    assert worker_count(SendOptions(workers=4, clock=fake), hosts=4) == 1


def test_sigkill_a_send_with_workers_then_rerun_delivers_the_rest(tmp_path):
    db = tmp_path / "log.duckdb"
    receivers = [Receiver(latency_ms=5).start() for _ in range(4)]
    try:
        urls = [f"{receivers[i % 4].url}/pb?n={i}" for i in range(3000)]
        plan_path = tmp_path / "plan.parquet"
        make_plan(urls).frame.write_parquet(plan_path)
        cmd = [sys.executable, "-m", "postback_lab.cli", "send", str(plan_path), "--db", str(db)]
        cmd += ["--workers", "2", "--per-host", "4", "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while sum(len(rx.received()) for rx in receivers) < 400:
            assert time.monotonic() < deadline, "the send did not get going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the workers notice their parent is gone and stop, keeping their journals
        while any(
            (o := journal_owner(j)) is not None and o.alive() for j in tmp_path.glob("*.jsonl")
        ):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            time.sleep(0.05)
        before = sum(len(rx.received()) for rx in receivers)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        got = Counter(r.headers["idempotency-key"] for rx in receivers for r in rx.received())
    finally:
        for rx in receivers:
            rx.stop()
    assert len(got) == 3000  # everything arrived
    twice = sum(n - 1 for n in got.values())
    assert twice <= 2 * 2 * 4  # at most what was in flight: 2 workers x 2 hosts x per-host 4
    assert before < 3000
    with LogStore(db) as s:
        delivered = s.attempts().filter(pl.col("outcome") == "delivered")
        states = sorted(s.sql("SELECT state FROM runs")["state"].to_list())
    assert delivered["dispatch_id"].n_unique() == 3000
    assert states == ["completed", "crashed"]
    assert not list(tmp_path.glob("*.jsonl"))


def test_ctrl_c_stops_the_workers_and_logs_what_they_had_in_flight(tmp_path):
    db = tmp_path / "log.duckdb"
    receivers = [Receiver(latency_ms=5).start() for _ in range(2)]
    try:
        urls = [f"{receivers[i % 2].url}/pb?n={i}" for i in range(3000)]
        plan_path = tmp_path / "plan.parquet"
        make_plan(urls).frame.write_parquet(plan_path)
        cmd = [sys.executable, "-m", "postback_lab.cli", "send", str(plan_path), "--db", str(db)]
        cmd += ["--workers", "2", "--per-host", "4", "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while sum(len(rx.received()) for rx in receivers) < 300:
            assert time.monotonic() < deadline, "the send did not get going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        got = sum(len(rx.received()) for rx in receivers)
    finally:
        for rx in receivers:
            rx.stop()
    assert proc.returncode == 130, err
    with LogStore(db) as s:
        log = s.attempts()
        runs = s.sql("SELECT state FROM runs").rows()
    outcomes = Counter(log["outcome"])
    assert runs == [("cancelled",)]
    assert set(outcomes) <= {"delivered", "cancelled"}
    # every request that went out is in the log: delivered, or cancelled (result unknown)
    assert outcomes["delivered"] <= got <= outcomes["delivered"] + outcomes["cancelled"]
    assert outcomes["cancelled"] <= 2 * 4  # what was in flight
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_log_that_cannot_be_written_stops_the_workers(tmp_path, monkeypatch):
    db = tmp_path / "log.duckdb"
    real = LogWriter.append
    calls = []

    def failing(self, rows, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise StoreError(f"{self.path}: cannot write the log (IO Error: No space left)")
        return real(self, rows, **kw)

    monkeypatch.setattr(LogWriter, "append", failing)
    receivers = [Receiver(latency_ms=5).start() for _ in range(2)]
    try:
        urls = [f"{receivers[i % 2].url}/pb?n={i}" for i in range(4000)]
        with pytest.raises(StoreError) as err:
            send_sync(make_plan(urls), db, workers=2, per_host=4, progress=False)
        sent = sum(len(rx.received()) for rx in receivers)
    finally:
        for rx in receivers:
            rx.stop()
    assert str(err.value).startswith(f"{db}: cannot write the log (IO Error: No space left)")
    assert sent < 4000
    monkeypatch.setattr(LogWriter, "append", real)
    with LogStore(db) as s:
        log_writer(s).recover_inflight()  # the workers' journals kept what the log lacked
        assert s.count() >= sent
    assert not list(tmp_path.glob("*.jsonl"))
