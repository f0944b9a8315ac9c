"""The per-host circuit breaker over real sockets: a failing host is paused for the run,
its remaining dispatches are logged ``paused`` and sent by a later run; the audit does
not count them as attempts."""

from __future__ import annotations

import subprocess
import sys

import polars as pl

from postback_lab import LogStore, audit
from postback_lab.receiver import Receiver
from postback_lab.sending import Breaker, Retry, send_sync

from .conftest import make_plan


def test_a_host_failing_ten_times_in_a_row_is_paused_and_picked_up_later(tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver() as bad, Receiver() as good:
        for i in range(30):
            bad.set_script(f"/p{i}", ["500"])
        urls = [f"{bad.url}/p{i}" for i in range(30)] + [f"{good.url}/q{i}" for i in range(10)]
        plan = make_plan(urls)
        first = send_sync(plan, db, per_host=1, retry=Retry.none(), progress=False)
        hit = len(bad.received())
        for i in range(30):
            bad.set_script(f"/p{i}", ["200"])
        # the pause is kept in the log: with no cool-down left, the next run probes the
        # host once, and that probe being delivered resumes it
        second = send_sync(
            plan, db, per_host=1, retry=Retry.none(), breaker=Breaker(cool_down=0), progress=False
        )
    assert hit == 10  # nothing was sent to the paused host after the 10th failure
    assert (first.delivered, first.failed, first.paused) == (10, 10, 20)
    assert first.has_failures
    assert f"20 paused (circuit breaker: {bad.url.removeprefix('http://')})" in first.summary()
    assert first.by_outcome == {"delivered": 10, "failed": 10, "paused": 20}
    with LogStore(db) as s:
        log = s.attempts()
        paused = log.filter(pl.col("outcome") == "paused")
        report = audit(s, by=["host"])
    assert paused.height == 20 and paused["status_code"].null_count() == 20
    assert paused["error"][0] == (
        f"not sent: the circuit breaker paused {bad.url.removeprefix('http://')} after 10 "
        "failed attempts in a row"
    )
    # the later run sends the failed and the paused ones, numbering after them
    assert (second.delivered, second.skipped_delivered) == (30, 10)
    assert log.filter(pl.col("outcome") == "delivered")["dispatch_id"].n_unique() == 40
    rows = {
        r[0]: r[1:]
        for r in report.frame.select("host", "dispatches", "delivered", "attempts").rows()
    }
    # paused rows are not attempts: 10 failed + 30 delivered on the bad host
    assert rows == {
        bad.url.removeprefix("http://"): (30, 30, 40),
        good.url.removeprefix("http://"): (10, 10, 10),
    }


def test_a_failure_rate_over_the_window_pauses_too(tmp_path):
    with Receiver() as rx:
        for i in range(30):  # 8 of the first 10 fail, never 10 in a row
            rx.set_script(f"/p{i}", ["200" if i in (3, 9) else "500"])
        plan = make_plan([f"{rx.url}/p{i}" for i in range(30)])
        breaker = Breaker(consecutive=None, failure_rate=0.7, min_attempts=10, window=300)
        result = send_sync(
            plan,
            tmp_path / "log.duckdb",
            per_host=1,
            retry=Retry.none(),
            breaker=breaker,
            progress=False,
        )
        hit = len(rx.received())
    assert hit == 10 and result.paused == 20
    with LogStore(tmp_path / "log.duckdb") as s:
        err = s.attempts().filter(pl.col("outcome") == "paused")["error"][0]
    assert err.endswith("after 8 of the last 10 attempts failed (>= 70% within 300s)")


def test_breaker_off_and_the_cli_flag(tmp_path):
    with Receiver() as rx:
        rx.set_script("/p", ["500"])
        plan = make_plan([f"{rx.url}/p?i={i}" for i in range(12)])
        off = send_sync(
            plan,
            tmp_path / "a.duckdb",
            per_host=1,
            retry=Retry.none(),
            breaker=Breaker.off(),
            progress=False,
        )
        plan.write_parquet(tmp_path / "p.parquet")
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "postback_lab.cli",
                "send",
                str(tmp_path / "p.parquet"),
                "--db",
                str(tmp_path / "b.duckdb"),
                "--per-host",
                "1",
                "--retries",
                "none",
                "--pause-after",
                "3",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
        )
    assert (off.failed, off.paused) == (12, 0)
    assert cli.returncode == 1
    assert "3 failed, 9 paused (circuit breaker: " in cli.stdout
