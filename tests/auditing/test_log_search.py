"""Log search over a real DuckDB log: exclusions of any filter (``--not-rule``, …), the
conversion status, and text search that also covers response bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import postback_lab as pbl
from postback_lab.auditing import LogFilter, attempt_rows

T = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _log(path):
    rows = [
        dict(
            dispatch_id="d1",
            attempt=1,
            rule="A",
            transaction_id="t1",
            host="a.test",
            fired_at=T,
            status_code=200,
            outcome="delivered",
            status="approved",
            response_body="ok",
        ),
        dict(
            dispatch_id="d2",
            attempt=1,
            rule="A",
            transaction_id="t2",
            host="b.test",
            fired_at=T,
            status_code=500,
            outcome="failed",
            status="rejected",
            response_body="upstream quota exceeded",
        ),
        dict(
            dispatch_id="d3",
            attempt=1,
            rule="B",
            transaction_id="t3",
            host="a.test",
            fired_at=T,
            status_code=404,
            outcome="failed",
            status="approved",
            response_body="no such click",
        ),
    ]
    with pbl.LogStore(path) as s:
        s.append(rows)


def test_exclusions_status_and_body_search(tmp_path):
    db = tmp_path / "log.duckdb"
    _log(db)
    with pbl.LogStore(db) as s:

        def ids(**kw):
            return sorted(attempt_rows(s, LogFilter.of(**kw), limit=10)["transaction_id"])

        assert ids(not_rule="A") == ["t3"]
        assert ids(not_host=["a.test"]) == ["t2"]
        assert ids(not_status_code=[200, 404]) == ["t2"]
        assert ids(status="approved", not_outcome="delivered") == ["t3"]
        assert ids(search="QUOTA") == ["t2"]


def test_log_show_cli_exclusions_as_json(tmp_path):
    db = tmp_path / "log.duckdb"
    _log(db)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "postback_lab.cli",
            "log",
            "show",
            "--db",
            str(db),
            "--not-rule",
            "B",
            "--search",
            "exceeded",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert [r["transaction_id"] for r in json.loads(out.stdout)] == ["t2"]
