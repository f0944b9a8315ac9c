"""A log held open for writing by another process (a second notebook, a send in a
terminal) can still be audited, explored and shown: readers take a snapshot copy and say
so, instead of a 25-line lock traceback."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import postback_lab as pbl
from postback_lab.cli import main

T0 = datetime(2024, 1, 1, tzinfo=UTC)

HOLD = """
import sys
from datetime import datetime, UTC
import postback_lab as pbl
log = pbl.LogStore(sys.argv[1])
log.append([{"dispatch_id": "late", "run_id": "w", "attempt": 1, "rule": "sales",
             "transaction_id": "t-late", "fired_at": datetime(2024, 1, 1, 5, tzinfo=UTC),
             "outcome": "delivered", "status_code": 200}])
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def held(tmp_path):
    db = tmp_path / "log.duckdb"
    with pbl.LogStore(db) as s:
        s.append(
            [
                {
                    "dispatch_id": f"d{i}",
                    "run_id": "r",
                    "attempt": 1,
                    "rule": "sales",
                    "transaction_id": f"t{i}",
                    "fired_at": T0 + timedelta(hours=i),
                    "status_code": 500 if i == 0 else 200,
                    "outcome": "failed" if i == 0 else "delivered",
                }
                for i in range(4)
            ]
        )
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        yield db
    finally:
        writer.stdin.close()
        writer.wait(30)
        writer.stdout.close()


def test_audit_explore_and_show_read_a_snapshot(held, capsys):
    report = pbl.audit(held, by=["rule"])
    # the writer's newest row (still in its write-ahead log) is in the copy
    assert report.frame.select("dispatches", "delivered").row(0) == (5, 4)
    assert "another process is writing" in report.summary()
    ex = pbl.explore(held)
    assert ex.note and "snapshot" in ex.note and ex.total() == 5
    ex.close()
    assert main(["log", "show", "--db", str(held)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "5 of 5 attempts shown, newest first"
    assert err.startswith("note: another process is writing")
    assert main(["audit", "--db", str(held), "--fail-below", "0.5"]) == 0


def test_writing_it_stays_one_clear_sentence(held, capsys):
    assert main(["log", "prune", "--db", str(held), "--before", "2024-01-02"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by another process" in err
