"""A backfill's options: one default retry schedule from Python or the command line
(``BACKFILL_DEFAULTS``: the short schedule, 0.5 s, 2 s, 5 s, within a minute), and "now"
read from the injected clock."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import postback_lab as pbl
from postback_lab.auditing import BACKFILL_DEFAULTS
from postback_lab.receiver import Receiver

EVENTS = "transaction_id,event_type,status,occurred_at,offer_id,publisher_id\n" + (
    "t1,conversion,approved,2026-01-05T10:00:00Z,1,7\n"
)


def test_the_constant_is_the_short_schedule_within_a_minute():
    assert BACKFILL_DEFAULTS.retry == pbl.Retry.short()
    assert BACKFILL_DEFAULTS.max_duration == timedelta(minutes=1)


def _attempts(db) -> list[tuple[str, int]]:
    with pbl.LogStore(db, read_only=True) as s:
        return s.sql(
            "SELECT kind, count(*) FROM postback_log JOIN runs USING (run_id) "
            "WHERE kind = 'backfill' GROUP BY kind"
        ).rows()


def test_cli_and_api_backfill_retry_on_the_same_schedule(tmp_path):
    """Retrying for 1 s: the short schedule's first retry (0.5 s) fits, its second (2 s
    later) does not: 2 attempts each way (send's default schedule waits 5 s first: 1)."""
    events = tmp_path / "events.csv"
    events.write_text(EVENTS, encoding="utf-8")
    with Receiver() as rx:
        rx.set_script("/p", ["500"])
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            f"postbacks:\n  - name: A\n    url: {rx.url}/p?t={{transaction_id}}\n",
            encoding="utf-8",
        )
        cli_db, api_db = tmp_path / "cli.duckdb", tmp_path / "api.duckdb"
        for db in (cli_db, api_db):
            pbl.LogStore(db).close()  # backfill needs an existing log
        done = subprocess.run(
            [
                *(sys.executable, "-m", "postback_lab.cli", "backfill", str(events)),
                *("--rules", str(rules), "--db", str(cli_db), "--retry-for", "1s"),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        pbl.backfill_sync(str(events), api_db, rules=rules, max_duration=1, progress=False)
    assert _attempts(cli_db) == _attempts(api_db) == [("backfill", 2)]


def test_backfill_reads_now_from_the_injected_clock(tmp_path):
    """A postback due after the clock's now is not in the window: nothing is sent."""
    from datetime import UTC, datetime

    from postback_lab.sending import FakeClock

    events = tmp_path / "events.csv"
    events.write_text(EVENTS, encoding="utf-8")  # due 2026-01-05 10:00
    db = tmp_path / "log.duckdb"
    pbl.LogStore(db).close()
    with Receiver() as rx:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            f"postbacks:\n  - name: A\n    url: {rx.url}/p?t={{transaction_id}}\n",
            encoding="utf-8",
        )
        early = FakeClock(datetime(2026, 1, 5, 9, 59, tzinfo=UTC))
        before = pbl.backfill_sync(str(events), db, rules=rules, clock=early, progress=False)
        late = FakeClock(datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
        after = pbl.backfill_sync(str(events), db, rules=rules, clock=late, progress=False)
        assert len(rx.received()) == 1
    assert (len(before.to_send), len(after.to_send)) == (0, 1)
    assert after.sent is not None and after.sent.delivered == 1
