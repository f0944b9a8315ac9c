"""The log keeps each answer's response headers (secrets masked like the body, the first
KiB) on both engines, and the text search of ``log show``/``LogFilter``/the explorer finds
them; an older log gets the column when opened to write (migration 7)."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import polars as pl
import pytest

from postback_lab import LogStore, build_plan, read_rules
from postback_lab.auditing import LogFilter, attempt_rows
from postback_lab.receiver import Receiver
from postback_lab.sending import ENGINES, Retry, send_sync

from .conftest import make_plan


@pytest.mark.parametrize("engine", ENGINES)
def test_answers_headers_are_logged_and_searchable(engine, tmp_path):
    db = tmp_path / "log.duckdb"
    with Receiver(response_headers={"X-Partner-Ref": "conv-48151623"}) as rx:
        rx.set_script("/bad", ["503"])
        plan = make_plan([rx.url + "/ok?t=1", rx.url + "/bad?t=2"])
        send_sync(plan, db, engine=engine, retry=Retry.none(), progress=False)
    with LogStore(db) as s:
        rows = dict(s.sql("SELECT transaction_id, response_headers FROM postback_log").rows())
        assert rows == {
            "t0": "Content-Length: 2\nContent-Type: text/plain\nX-Partner-Ref: conv-48151623",
            "t1": "Content-Length: 19\nContent-Type: text/plain\nX-Partner-Ref: conv-48151623",
        }
        found = attempt_rows(s, LogFilter.of(search="CONV-4815"), limit=10)
        assert sorted(found["transaction_id"]) == ["t0", "t1"]
        assert attempt_rows(s, LogFilter.of(search="text/plain"), limit=10).height == 2
    show = ["log", "show", "--db", str(db), "--search", "48151623", "--outcome", "failed"]
    out = subprocess.run(
        [sys.executable, "-m", "postback_lab.cli", *show, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert [r["transaction_id"] for r in json.loads(out.stdout)] == ["t1"]


def test_headers_are_masked_and_cut_to_the_first_kib(tmp_path, monkeypatch):
    monkeypatch.setenv("PBL_HDR_SECRET", "s3cr3t-token")
    db = tmp_path / "log.duckdb"
    long = "y" * 3000
    with Receiver(response_headers={"X-Echo-Key": "s3cr3t-token", "X-Long": long}) as rx:
        rules = read_rules([{"name": "r", "url": rx.url + "/pb?k={env:PBL_HDR_SECRET}"}])
        events = {"transaction_id": ["t1"], "status": "approved"}
        frame = pl.DataFrame({**events, "occurred_at": "2024-01-01T00:00:00Z"})
        send_sync(build_plan(frame, rules), db, progress=False)
    with LogStore(db) as s:
        headers = s.sql("SELECT response_headers FROM postback_log").item()
    assert headers.startswith(
        "Content-Length: 2\nContent-Type: text/plain\nX-Echo-Key: {env:PBL_HDR_SECRET}\nX-Long: yyy"
    )
    assert len(headers.encode()) == 1024
    assert "s3cr3t" not in headers


def test_an_older_log_gets_the_response_headers_column(tmp_path):
    db = tmp_path / "old.duckdb"
    with LogStore(db) as s:
        s.append([dict(dispatch_id="d1", attempt=1, rule="A", outcome="delivered")])
    con = duckdb.connect(str(db))  # a schema-6 log, as written before
    con.execute("ALTER TABLE postback_log DROP COLUMN response_headers")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    con.close()
    with LogStore(db) as s:
        assert s.schema_version == 7
        assert s.sql("SELECT dispatch_id, response_headers FROM postback_log").rows() == [
            ("d1", None)
        ]


def test_a_test_fire_logs_the_answers_headers_too(tmp_path):
    from postback_lab import test_rule_sync

    db = tmp_path / "log.duckdb"
    with Receiver(response_headers={"X-Partner-Ref": "tf-1"}) as rx:
        rule = read_rules([{"name": "r", "url": rx.url + "/pb?t={transaction_id}"}])["r"]
        assert test_rule_sync(rule, log=db).ok
    with LogStore(db) as s:
        assert s.sql("SELECT outcome, response_headers FROM postback_log").rows() == [
            ("test", "Content-Length: 2\nContent-Type: text/plain\nX-Partner-Ref: tf-1")
        ]
