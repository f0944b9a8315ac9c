"""A backfill is usually watched (a notebook cell, a terminal): it retries briefly by
default and stops retrying after a minute, and its progress bar shows failed attempts and
when the next retry goes, so a partner that is down is visible and never freezes the cell."""

from __future__ import annotations

import io
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from tqdm import tqdm

import postback_lab as pbl
from postback_lab.auditing import BACKFILL_DEFAULTS
from postback_lab.sending import Breaker, FakeClock, SendOptions
from postback_lab.sending._scheduler import Run

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def down() -> str:
    """The URL of a partner that is down: a port on 127.0.0.1 nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/pb"


def make_plan(url: str, n: int) -> pbl.Plan:
    """``n`` approved conversions (transaction ids t0, t1, …) each firing ``url``."""
    rules = pbl.read_rules(
        [
            {
                "name": "r",
                "type": "conversion",
                "fire_on": "approved",
                "url": url + "?t={transaction_id}",
            }
        ]
    )
    events = pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "event_type": "conversion",
            "status": "approved",
            "occurred_at": datetime.now(UTC) - timedelta(minutes=1),
        }
    )
    return pbl.build_plan(events, rules)


def _attempts(log: pbl.LogStore) -> dict[str, list[str]]:
    rows = log.sql("SELECT transaction_id, outcome FROM postback_log ORDER BY attempt")
    out: dict[str, list[str]] = {}
    for tid, outcome in rows.iter_rows():
        out.setdefault(tid, []).append(outcome)
    return out


def test_defaults_are_a_short_schedule_with_a_deadline(tmp_path, down):
    assert BACKFILL_DEFAULTS.retry == pbl.Retry.short()
    assert BACKFILL_DEFAULTS.max_duration == timedelta(minutes=1)
    clock = FakeClock(datetime.now(UTC))
    with pbl.LogStore(tmp_path / "log.duckdb") as log:
        # the schedule alone (the circuit breaker would pause the host after 10 failures)
        result = pbl.backfill_sync(
            make_plan(down, 3), log, clock=clock, progress=False, breaker=Breaker.off()
        )
        # 1 try and the 3 retries of the short schedule each, then failed for a later run
        assert _attempts(log) == {f"t{i}": ["connection_error"] * 4 for i in range(3)}
        spans = log.sql(
            "SELECT epoch(max(fired_at) - min(fired_at)) AS s FROM postback_log "
            "GROUP BY transaction_id"
        )["s"]
    # on the (fake, shared) clock: at least 0.5 s + 2 s + 5 s, and no 5-minute wait
    assert all(7.5 <= s < 60 for s in spans), spans.to_list()
    assert result.sent is not None and (result.sent.failed, result.sent.delivered) == (3, 0)


def test_retries_past_the_deadline_are_left_to_a_later_backfill(tmp_path, down):
    clock = FakeClock(datetime.now(UTC))
    slow = pbl.Retry(delays=(30.0, 60.0), jitter=0.0)
    with pbl.LogStore(tmp_path / "log.duckdb") as log:
        pbl.backfill_sync(make_plan(down, 1), log, retry=slow, clock=clock)
        # retry 1 goes at +30 s; retry 2 would go at +90 s, after the one-minute deadline
        assert _attempts(log) == {"t0": ["connection_error", "connection_error"]}
        # the next backfill gets a full schedule of its own
        pbl.backfill_sync(make_plan(down, 1), log, retry=pbl.Retry.none(), clock=clock)
        assert len(_attempts(log)["t0"]) == 3


def test_the_bar_shows_key_numbers_first_and_fits_80_columns():
    bar = tqdm(
        total=1000,
        file=io.StringIO(),
        ncols=80,
        bar_format="{n_fmt}/{total_fmt}{postfix} |{bar}| {elapsed}<{remaining}",
    )
    run = Run(SendOptions(clock=FakeClock(T0)), None, {}, None, bar)  # type: ignore[arg-type]
    run.by_outcome = Counter(connection_error=2, failed=1)
    run.final = Counter(delivered=440, failed=3)
    run.retrying = 2
    run.next_retry = {"a.example": T0 + timedelta(seconds=5), "b.example": None}
    bar.n = 445
    run.show()
    assert bar.postfix == "delivered 440 · failed 3 · retrying 2, next 10:00:05 UTC"
    line = str(bar)
    assert len(line) <= 80 and line.startswith("445/1000, delivered 440 · failed 3 · retrying 2")
    assert "next 10:00:05 UTC |" in line
    bar.close()


def test_a_send_waiting_for_retries_says_so_in_one_line(capsys):
    """All that is left waits for retries due later: one line says what and until when."""
    from postback_lab.sending._progress import Lines

    bar = Lines(3)
    run = Run(SendOptions(clock=FakeClock(T0)), None, {}, None, bar)  # type: ignore[arg-type]
    run.final = Counter(delivered=1)
    bar.n = 1
    run.retrying = 2
    run.next_retry = {"a.example": T0 + timedelta(minutes=5)}
    run.show(now=True)
    run.show(now=True)  # the same wait: said once
    err = capsys.readouterr().err
    assert err == (
        "waiting for 2 retries due 10:05:00 UTC; Ctrl-C leaves them to a later backfill\n"
    )
    run.retrying, bar.n = 1, 2  # one came back; the other waits for 10:35
    run.next_retry = {"a.example": T0 + timedelta(minutes=35)}
    run.show(now=True)
    assert capsys.readouterr().err == (
        "waiting for 1 retry due 10:35:00 UTC; Ctrl-C leaves them to a later backfill\n"
    )


def test_a_backfill_to_a_down_partner_ends_showing_its_failures(tmp_path, down, capsys):
    """Output that is not a terminal gets plain lines, never carriage returns."""
    with pbl.LogStore(tmp_path / "log.duckdb") as log:
        plan = make_plan(down, 2)
        pbl.backfill_sync(plan, log, progress=True, clock=FakeClock(datetime.now(UTC)))
    err = capsys.readouterr().err
    assert "\r" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("postbacks 2/2 (100%) · delivered 0 · failed 2 · ")
    assert "waiting for" not in err  # retries seconds apart are not worth a line


def test_a_send_that_waits_minutes_for_retries_says_so(tmp_path, down, capsys):
    clock = FakeClock(datetime.now(UTC))
    with pbl.LogStore(tmp_path / "log.duckdb") as log:
        pbl.send_sync(
            make_plan(down, 2),
            log,
            progress=True,
            clock=clock,
            retry=pbl.Retry(delays=(300.0,), jitter=0.0),
            max_duration=None,
            breaker=Breaker.off(),
        )
    err = capsys.readouterr().err
    waits = [line for line in err.splitlines() if line.startswith("waiting for")]
    assert len(waits) >= 1 and waits[0].endswith(" UTC; Ctrl-C leaves them to a later backfill"), (
        err
    )
    assert "\r" not in err
