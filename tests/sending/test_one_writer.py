"""One writer per log file, within a process too; a journal belongs to its run and is
replayed only when its owner is gone; damaged journals are named, not fatal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from collections import Counter

import pytest

from postback_lab import LogStore, StoreLockedError
from postback_lab.receiver import Receiver
from postback_lab.sending import send
from postback_lab.store import JournalWarning, log_writer
from postback_lab.store._owner import Owner

from .conftest import make_plan


def dead_owner() -> str:
    """The owner note of a process that has ended."""
    pid = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    me = Owner.current()
    return Owner(pid, "1", me.boot, me.host).note()


def journal_line(kind: str, dispatch_id: str, attempt: int, run_id: str, **more) -> str:
    row = {
        "k": kind,
        "dispatch_id": dispatch_id,
        "run_id": run_id,
        "attempt": attempt,
        "rule": "r",
        "transaction_id": dispatch_id,
        "method": "GET",
        "url": "http://x.test/p",
        "host": "x.test",
        "status": "approved",
        "due_at": "2024-01-01 00:00:00+00:00",
        "fired_at": "2024-01-01 00:00:01+00:00",
        **more,
    }
    return json.dumps(row) + "\n"


def write_journal(db, run_id: str, owner_note: str, lines: list[str]) -> os.PathLike:
    path = db.with_name(f"{db.name}.inflight-{run_id}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"k": "owner", "note": owner_note}) + "\n")
        f.writelines(lines)
    return path


def test_a_second_writable_logstore_in_this_process_is_refused(tmp_path):
    db = tmp_path / "log.duckdb"
    with LogStore(db) as first:
        with pytest.raises(StoreLockedError) as err:
            LogStore(tmp_path / "." / "log.duckdb")  # another spelling of the same file
        assert str(err.value) == (
            f"{tmp_path / '.' / 'log.duckdb'} is already open for writing in this process "
            f"({first!r}); use that LogStore, or close it first"
        )
        with pytest.raises(StoreLockedError, match="read through it, or close it first"):
            LogStore(db, read_only=True)
    with LogStore(db) as again:  # closed: free again
        assert again.count() == 0


def test_two_concurrent_sends_on_one_store_one_is_refused(tmp_path):
    db = tmp_path / "log.duckdb"

    async def main(rx: Receiver) -> list[object]:
        plan = make_plan([f"{rx.url}/p?n={i}" for i in range(40)])
        with LogStore(db) as store:
            return await asyncio.gather(
                send(plan, store, per_host=2, progress=False),
                send(plan, store, per_host=2, progress=False),
                return_exceptions=True,
            )

    with Receiver(latency_ms=5) as rx:
        first, second = asyncio.run(main(rx))
        keys = Counter(r.headers["idempotency-key"] for r in rx.received())
    assert isinstance(second, StoreLockedError)
    assert "another send or backfill is writing to this log in this process" in str(second)
    assert first.delivered == 40  # type: ignore[union-attr]
    assert set(keys.values()) == {1} and len(keys) == 40


def test_two_concurrent_sends_by_path_share_the_open_store_and_one_is_refused(tmp_path):
    db = tmp_path / "log.duckdb"

    async def main(rx: Receiver) -> list[object]:
        plan = make_plan([f"{rx.url}/p?n={i}" for i in range(40)])
        with LogStore(db):  # a notebook holds the log open (an explorer, say)
            return await asyncio.gather(
                send(plan, str(db), per_host=2, progress=False),
                send(plan, str(db), per_host=2, progress=False),
                return_exceptions=True,
            )

    with Receiver(latency_ms=5) as rx:
        first, second = asyncio.run(main(rx))
        keys = Counter(r.headers["idempotency-key"] for r in rx.received())
    assert isinstance(second, StoreLockedError)
    assert first.delivered == 40  # type: ignore[union-attr]
    assert set(keys.values()) == {1} and len(keys) == 40
    with LogStore(db) as s:  # the held store stayed the only writer, and it is closed now
        assert s.count() == 40


def test_a_live_owners_journal_is_never_replayed_or_deleted(tmp_path):
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = Owner.current()
        from postback_lab.store._owner import _start_time

        live = Owner(sleeper.pid, _start_time(sleeper.pid), me.boot, me.host).note()
        path = write_journal(
            db, "liverun", live, [journal_line("done", "d1", 1, "liverun", outcome="delivered")]
        )
        with LogStore(db) as s:
            assert log_writer(s).recover_inflight() == 0
            assert s.count() == 0
        assert path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    with LogStore(db) as s:  # its owner is gone now: replayed once, then deleted
        assert log_writer(s).recover_inflight() == 1
        assert s.attempts()["outcome"].to_list() == ["delivered"]
    assert not path.exists()


def test_a_run_killed_before_its_first_journal_line_is_marked_crashed(tmp_path):
    db = tmp_path / "log.duckdb"
    code = textwrap.dedent(f"""
        import os, signal
        from postback_lab import LogStore
        from postback_lab.store import log_writer
        s = LogStore({str(db)!r})
        run = log_writer(s).start_run("send", 10, 0)
        log_writer(s).journal_path(run).unlink()  # killed before anything reached its journal
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    with LogStore(db) as s:
        assert s.runs()["state"].to_list() == ["running"]
        log_writer(s).recover_inflight()  # what every send and backfill does first
        assert s.runs()["state"].to_list() == ["crashed"]
        # a run of a live process stays running
        live = log_writer(s).start_run("send", 1, 0)
        log_writer(s).recover_inflight()
        states = dict(s.runs().select("run_id", "state").iter_rows())
        assert states[live] == "running"
        log_writer(s).finish_run(live, "completed", 0, 0, 0)


def test_a_damaged_journal_is_named_and_its_good_lines_recovered(tmp_path):
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    lines = [
        journal_line("done", "d1", 1, "deadrun", outcome="delivered", status_code=200),
        b"\xff\xfe not utf-8 at all\n".decode("latin-1"),
        '{"k": "done", "dispatch_id": 7}\n',
        journal_line("start", "d2", 1, "deadrun"),
        '{"k": "done", "dispatch_id": "d3", "ru',  # the torn last line of a killed writer
    ]
    path = db.with_name(f"{db.name}.inflight-deadrun.jsonl")
    with open(path, "wb") as f:
        f.write((json.dumps({"k": "owner", "note": dead_owner()}) + "\n").encode())
        for line in lines:
            f.write(line.encode("latin-1") if "\xff" in line else line.encode())
    with LogStore(db) as s, pytest.warns(JournalWarning) as caught:
        assert log_writer(s).recover_inflight() == 2
        rows = s.attempts().sort("dispatch_id").select("dispatch_id", "outcome").rows()
    assert rows == [("d1", "delivered"), ("d2", "cancelled")]
    assert [str(w.message) for w in caught] == [
        f"{path}: 2 damaged line(s) skipped (line 3, 4); the other 2 attempt record(s) "
        "were recovered"
    ]
    assert not path.exists()


def test_read_only_audit_after_a_kill_says_what_is_pending(tmp_path):
    db = tmp_path / "log.duckdb"
    LogStore(db).close()
    path = write_journal(
        db,
        "deadrun",
        dead_owner(),
        [
            journal_line("done", "d1", 1, "deadrun", outcome="delivered", status_code=200),
            journal_line("done", "d2", 1, "deadrun", outcome="failed", status_code=500),
            journal_line("start", "d3", 1, "deadrun"),
        ],
    )
    out = subprocess.run(
        [sys.executable, "-m", "postback_lab.cli", "audit", "--db", str(db)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert (
        f"note: 3 attempts of a run that stopped are pending in {path}, not in this audit "
        "yet; the next send or backfill adds them to the log"
    ) in out.stderr
    assert path.exists()  # a read-only look changes nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with LogStore(db) as s:
            log_writer(s).recover_inflight()
            assert s.count() == 3
