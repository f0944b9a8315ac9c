"""LogStore: migrations, lock message, batched appends, and platform export import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from postback_lab import LogImportError, LogStore, StoreError, StoreLockedError
from postback_lab.store import SCHEMA_VERSION, LogReader, import_log, log_writer


def test_new_store_has_contract_tables_and_version(tmp_path):
    with LogStore(tmp_path / "log.duckdb") as s:
        assert s.schema_version == SCHEMA_VERSION
        cols = s.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'postback_log' ORDER BY ordinal_position"
        )
        assert cols["column_name"].to_list()[:17] == [
            "dispatch_id",
            "run_id",
            "attempt",
            "rule",
            "transaction_id",
            "offer_id",
            "publisher_id",
            "method",
            "url",
            "host",
            "due_at",
            "fired_at",
            "latency_ms",
            "status_code",
            "outcome",
            "error",
            "response_body",
        ]
        assert s.runs().height == 0


def test_migration_from_version_1_keeps_rows(tmp_path):
    db = tmp_path / "old.duckdb"
    from postback_lab.store._schema import MIGRATIONS

    with duckdb.connect(str(db)) as con:
        con.execute(MIGRATIONS[1])
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute(
            "INSERT INTO postback_log (dispatch_id, run_id, attempt, outcome, fired_at) "
            "VALUES ('d1', 'r1', 1, 'delivered', TIMESTAMPTZ '2024-01-01 00:00:00+00')"
        )
    with LogStore(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        rows = s.attempts()
        # v3 stores each row's dispatch key, filled in for the rows already there
        keys = s.sql("SELECT dispatch_key = md5_number('d1') AS same FROM postback_log")
    assert rows.select("dispatch_id", "source", "status").rows() == [("d1", "sent", None)]
    assert keys["same"].to_list() == [True]


def test_migration_to_v4_marks_first_attempts_of_retried_dispatches(tmp_path):
    db = tmp_path / "v3.duckdb"
    from postback_lab.store._schema import MIGRATIONS

    with duckdb.connect(str(db)) as con:
        con.execute(MIGRATIONS[1] + MIGRATIONS[2] + MIGRATIONS[3])
        con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        con.execute(
            "INSERT INTO postback_log (dispatch_id, run_id, attempt, outcome, fired_at) VALUES "
            "('d1', 'r', 1, 'failed', TIMESTAMPTZ '2024-01-01 00:00:00+00'), "
            "('d2', 'r', 1, 'delivered', TIMESTAMPTZ '2024-01-01 00:00:00+00'), "
            "('d1', 'r', 2, 'delivered', TIMESTAMPTZ '2024-01-01 00:01:00+00')"
        )
        con.execute("UPDATE postback_log SET dispatch_key = md5_number(dispatch_id)")
    with LogStore(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.retried_upto() == 2
        marks = s.sql(
            "SELECT dispatch_id, attempt, retried FROM postback_log ORDER BY rowid"
        ).rows()
        # appended unmarked: the watermark stays until marks are made
        s.append(
            [{"dispatch_id": "d2", "run_id": "r", "attempt": 2, "outcome": "failed"}],
            mark=False,
        )
        assert s.retried_upto() == 2
        log_writer(s).mark_retried()
        assert s.retried_upto() == 3
        d2 = s.sql("SELECT retried FROM postback_log WHERE dispatch_id = 'd2' AND attempt = 1")
    assert marks == [("d1", 1, True), ("d2", 1, False), ("d1", 2, False)]
    assert d2.item() is True


def test_an_older_log_opened_for_reading_is_upgraded_first(tmp_path):
    """`postback-lab audit` opens the log read-only: a v2 file still audits."""
    db = tmp_path / "v2.duckdb"
    from postback_lab.auditing import audit
    from postback_lab.store._schema import MIGRATIONS

    with duckdb.connect(str(db)) as con:
        con.execute(MIGRATIONS[1] + MIGRATIONS[2])
        con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        con.execute(
            "INSERT INTO postback_log (dispatch_id, run_id, attempt, rule, outcome, fired_at) "
            "VALUES ('d1', 'r1', 1, 'sales', 'failed', TIMESTAMPTZ '2024-01-01 00:00:00+00'),"
            " ('d1', 'r1', 2, 'sales', 'delivered', TIMESTAMPTZ '2024-01-01 00:01:00+00')"
        )
    with LogStore(db, read_only=True) as s:
        assert s.schema_version == SCHEMA_VERSION
        frame = audit(s, by="rule").frame
    assert frame.select("rule", "dispatches", "delivered", "attempts").rows() == [
        ("sales", 1, 1, 2)
    ]


def test_append_refuses_an_attempt_number_a_dispatch_already_has(tmp_path):
    """Audit and reconcile count a dispatch's rows by its attempt numbers: a repeated one
    is refused with the row named, and nothing of the batch is written."""
    db = tmp_path / "log.duckdb"
    t = datetime(2024, 1, 1, tzinfo=UTC)
    one = {"dispatch_id": "d1", "run_id": "r", "attempt": 1, "outcome": "failed", "fired_at": t}
    with LogStore(db) as s:
        s.append([one])
        with pytest.raises(StoreError) as err:
            s.append([{**one, "dispatch_id": "d2"}, {**one, "outcome": "delivered"}])
        assert str(err.value) == (
            f"{db}: row 2 of the rows to append repeats attempt 1 of dispatch 'd1', which "
            "the log already has; number attempts after LogStore.last_attempts() (or use "
            "import_log for a platform export). Nothing was appended."
        )
        with pytest.raises(StoreError, match=r"row 3 .* attempt 2 of dispatch 'd3', which this"):
            s.append([{**one, "dispatch_id": "d3", "attempt": a} for a in (1, 2, 2)])
        assert s.count() == 1
        # the next number, and rows without one, are fine
        assert s.append([{**one, "attempt": 2}, {**one, "attempt": None}]) == 2


def test_appended_rows_carry_their_dispatch_key(tmp_path):
    """The key is the dispatch id, or rule + transaction id (+ status) for imported rows
    without one, hashed with md5 as a number."""
    rows = [
        {"dispatch_id": "d1", "rule": "r", "transaction_id": "t1", "status": "approved"},
        {"dispatch_id": None, "rule": "r", "transaction_id": "t2", "status": None},
    ]
    with LogStore(tmp_path / "log.duckdb") as s:
        s.append(rows)
        got = s.sql(
            "SELECT dispatch_key = md5_number('d1'), dispatch_key = md5_number('r' || chr(31) "
            "|| 't2') FROM postback_log ORDER BY transaction_id"
        ).rows()
    assert got == [(True, False), (False, True)]


def test_second_writer_gets_one_clear_sentence(tmp_path):
    db = tmp_path / "log.duckdb"
    with LogStore(db):
        code = textwrap.dedent(f"""
            from postback_lab import LogStore, StoreError, StoreLockedError
            try:
                LogStore({str(db)!r})
            except StoreLockedError as e:
                print(e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.startswith(f"{db} is in use by another process (PID ")
    assert "wait for it to finish or close it, or pass a different --db" in out.stdout
    assert StoreLockedError.__mro__[1].__name__ == "StoreError"


def test_append_is_one_batch_and_round_trips(tmp_path):
    rows = [
        {
            "dispatch_id": f"d{i}",
            "run_id": "r",
            "attempt": 1,
            "outcome": "delivered",
            "status_code": 200,
            "fired_at": datetime(2024, 1, 1, tzinfo=UTC),
        }
        for i in range(3)
    ]
    with LogStore(tmp_path / "log.duckdb") as s:
        assert s.append(rows) == 3
        assert s.count() == 3
        assert s.delivered_ids() == {"d0", "d1", "d2"}
        assert s.last_attempts(pl.Series(["d0", "zz"])) == {"d0": 1}


EXPORT = """\
Firing Time,Transaction ID,Response Code,Error,Server Response,Postback Name,URL,Offer ID,Publisher ID,Status
2024-01-01 10:00:00,t1,200,,OK,sales,https://p.example/?c=1,001,7,approved
2024-01-01 10:05:00,t2,500,Internal Server Error,oops,sales,https://p.example/?c=2,001,7,approved
2024-01-01 10:06:00,t2,200,,OK,sales,https://p.example/?c=2,001,7,approved
2024-01-01 10:07:00,t3,,Connection timed out,,sales,https://p.example/?c=3,001,7,approved
2024-01-01 10:08:00,t9,200,,OK,,https://p.example/?c=9,001,7,
"""


@pytest.mark.parametrize("variant", ["platform", "snake"])
def test_import_recognises_header_variants(tmp_path, variant):
    text = EXPORT
    if variant == "snake":
        text = text.replace(
            "Firing Time,Transaction ID,Response Code,Error,Server Response,"
            "Postback Name,URL,Offer ID,Publisher ID,Status",
            "fired_at,transaction_id,status_code,error,response_body,rule,url,"
            "offer_id,publisher_id,status",
        )
    path = tmp_path / "export.csv"
    path.write_text(text)
    db = tmp_path / "log.duckdb"
    result = import_log(path, db)
    assert (result.rows, result.without_rule, result.without_status) == (5, 1, 1)
    again = import_log(path, db)
    assert again.already_imported and "nothing added" in str(again)
    with LogStore(db) as s:
        rows = s.attempts().sort("fired_at")
    assert rows.select("transaction_id", "attempt", "status_code", "outcome", "host").rows() == [
        ("t1", 1, 200, "delivered", "p.example"),
        ("t2", 1, 500, "failed", "p.example"),
        ("t2", 2, 200, "delivered", "p.example"),
        ("t3", 1, None, "connection_error", "p.example"),  # never connected
        ("t9", 1, 200, "delivered", "p.example"),
    ]
    assert rows["source"].unique().to_list() == ["imported"]
    assert rows["dispatch_id"].null_count() == 1  # t9 has no rule: kept, unlinked


def test_import_errors_name_file_and_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("when,who\n2024-01-01,t1\n")
    with pytest.raises(LogImportError) as err:
        import_log(path, tmp_path / "log.duckdb")
    assert str(err.value).startswith(
        f"{path}: no column for fired_at, transaction_id, status_code; columns found: when, who"
    )
    with pytest.raises(LogImportError, match="no such file"):
        import_log(tmp_path / "missing.csv", tmp_path / "log.duckdb")


def test_the_read_side_and_the_sender_writer_are_apart(tmp_path):
    """A LogStore is a LogReader (what audit, reconcile and the explorer use) plus
    ``append``, ``last_attempts`` and ``recover_inflight``; a send's internals (runs,
    journal, retried marks, the sending hold) belong to its private writer."""
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        assert isinstance(s, LogReader)
        for name in (
            "start_run",
            "finish_run",
            "journal",
            "journal_path",
            "journal_lines",
            "close_journal",
            "record_import",
            "mark_retried",
            "sending",
            "_exec",
        ):
            assert not hasattr(s, name), name
        w = log_writer(s)
        assert w is log_writer(s) and w.path == db
        run = w.start_run("send", 1, 0)
        w.finish_run(run, "completed", 0, 0, 0)
        assert s.runs()[["run_id", "state"]].rows() == [(run, "completed")]
    with LogStore(db, read_only=True) as r:  # reading the same rows through a reader
        assert r.runs()["run_id"].to_list() == [run] and r.pending() == []


def test_prune_and_snapshots_are_the_stores_work(tmp_path):
    """Deleting rows and copying a log's files are store work: auditing calls them."""
    from postback_lab import auditing, store

    assert store.prune.__module__ == "postback_lab.store._prune"
    assert store.open_for_reading.__module__ == "postback_lab.store._snapshot"
    assert auditing.prune is store.prune and auditing.open_for_reading is store.open_for_reading
    db = tmp_path / "log.duckdb"
    old = {
        "dispatch_id": "d1",
        "attempt": 1,
        "fired_at": datetime(2024, 1, 1, tzinfo=UTC),
        "outcome": "failed",
    }
    with LogStore(db) as s:
        s.append([old, {**old, "dispatch_id": "d2", "outcome": "delivered"}])
        result = store.prune(s, "2024-06-01")
        assert (result.deleted, result.kept_delivered) == (1, 1)
        assert s.attempts()["dispatch_id"].to_list() == ["d2"]
        assert store.pruned_before(s) == datetime(2024, 6, 1, tzinfo=UTC)
    copy = store.snapshot(db)
    try:
        assert copy.path != db and copy.read_only and copy.count() == 1
    finally:
        copy.close()
