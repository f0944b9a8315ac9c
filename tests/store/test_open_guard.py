"""Opening a log to write guards the file: a DuckDB file that is not a postback_lab log
(a user's analytics file passed by mistake) is refused and left byte for byte as it was;
a migration that fails or is refused is a StoreError naming the file, and the half-opened
store closes its connection and lets go of the file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

import postback_lab as pbl
from postback_lab import LogStore, StoreError
from postback_lab.cli import main
from postback_lab.store import SCHEMA_VERSION, open_log
from postback_lab.store._log import _writer_of
from postback_lab.store._schema import MIGRATIONS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _files(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` and a hash of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _analytics(path: Path) -> Path:
    """A user's DuckDB file: two tables with rows, no postback_lab schema."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE users (id INTEGER, name VARCHAR)")
        con.execute("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
        con.execute("CREATE TABLE sales AS SELECT 1 AS id, 9.5 AS amount")
    return path


def _not_a_log(path: Path, *, to_write: bool = True) -> str:
    return f"{path}: not a postback_lab attempt log (it has tables: sales, users); " + (
        "pass a log file or a new path" if to_write else "pass a log file"
    )


def _closed_and_released(path: Path) -> None:
    """No store of this process holds ``path``: no writer registered, no connection open
    (DuckDB refuses a read-only connection to a file this process has open to write)."""
    assert _writer_of(path) is None
    duckdb.connect(str(path), read_only=True).close()


def _plan() -> pbl.Plan:
    events = pl.DataFrame({"transaction_id": ["t1"], "status": "approved", "occurred_at": [T0]})
    return pbl.build_plan(
        events, pbl.read_rules([{"name": "r", "url": "https://p.example/?t={transaction_id}"}])
    )


def _rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text("postbacks:\n  - name: r\n    url: https://p.example/?t={transaction_id}\n")
    return rules


def _events(tmp_path: Path) -> Path:
    events = tmp_path / "events.csv"
    events.write_text("transaction_id,status,occurred_at\nt1,approved,2024-01-01T00:00:00Z\n")
    return events


# -- 1. a DuckDB file that is not a log ------------------------------------------------
def test_opening_a_file_that_is_not_a_log_to_write_refuses_it_untouched(tmp_path):
    db = _analytics(tmp_path / "analytics.duckdb")
    before = _files(tmp_path)
    for open_it in (
        lambda: LogStore(db),
        lambda: LogStore(str(db)),
        lambda: open_log(db, "update"),
        lambda: open_log(db, "create"),
    ):
        with pytest.raises(StoreError) as err:
            open_it()
        assert str(err.value) == _not_a_log(db)
        _closed_and_released(db)
    with pytest.raises(StoreError) as err:
        pbl.send_sync(_plan(), db, dry_run=True, progress=False)
    assert str(err.value) == _not_a_log(db)
    assert _files(tmp_path) == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SHOW TABLES").fetchall() == [("sales",), ("users",)]
        assert con.sql("SELECT * FROM users ORDER BY id").fetchall() == [(1, "ann"), (2, "bob")]


def test_reading_a_file_that_is_not_a_log_says_the_same(tmp_path):
    db = _analytics(tmp_path / "analytics.duckdb")
    before = _files(tmp_path)
    for read in (
        lambda: LogStore(db, read_only=True),
        lambda: open_log(db, "read"),
        lambda: pbl.audit(db),
    ):
        with pytest.raises(StoreError) as err:
            read()
        assert str(err.value) == _not_a_log(db, to_write=False)
    assert _files(tmp_path) == before


def test_a_user_table_named_meta_is_not_taken_for_a_log(tmp_path):
    """A ``meta`` table of another shape (no key/value columns), or one with other rows,
    is the user's: listed with the rest, not migrated."""
    odd = tmp_path / "odd.duckdb"
    with duckdb.connect(str(odd)) as con:
        con.execute("CREATE TABLE meta (id INTEGER); INSERT INTO meta VALUES (1)")
    kv = tmp_path / "kv.duckdb"
    with duckdb.connect(str(kv)) as con:
        con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('owner', 'finance')")
        con.execute("CREATE SCHEMA crm; CREATE VIEW crm.leads AS SELECT 1 AS id")
    before = _files(tmp_path)
    with pytest.raises(StoreError) as err:
        LogStore(odd)
    assert str(err.value) == (
        f"{odd}: not a postback_lab attempt log (it has tables: meta); "
        "pass a log file or a new path"
    )
    with pytest.raises(StoreError) as err:
        LogStore(kv)
    assert str(err.value) == (
        f"{kv}: not a postback_lab attempt log (it has tables: crm.leads, meta); "
        "pass a log file or a new path"
    )
    assert _files(tmp_path) == before


def test_an_empty_duckdb_file_or_a_new_path_becomes_a_log(tmp_path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(StoreError) as err:
        LogStore(empty, read_only=True)
    assert str(err.value) == f"{empty}: not a postback_lab attempt log (it has no tables); " + (
        "pass a log file"
    )
    with LogStore(empty) as s:
        assert s.schema_version == SCHEMA_VERSION
    store, opened = open_log(tmp_path / "new.duckdb", "create")
    with store:
        assert opened and store.schema_version == SCHEMA_VERSION


def test_cli_writers_refuse_a_file_that_is_not_a_log_in_one_sentence(tmp_path, capsys):
    db = _analytics(tmp_path / "analytics.duckdb")
    rules, events = _rules(tmp_path), _events(tmp_path)
    plan = tmp_path / "plan.parquet"
    assert main(["plan", str(events), "--rules", str(rules), "-o", str(plan)]) == 0
    export = tmp_path / "export.csv"
    export.write_text("Firing Time,Transaction ID,Response Code\n2024-01-01 00:00:00,t1,200\n")
    capsys.readouterr()
    before = _files(tmp_path)
    for args in (
        ["send", str(plan), "--db", str(db), "--dry-run", "--no-progress"],
        ["backfill", str(events), "--rules", str(rules), "--db", str(db), "--dry-run"],
        ["import-log", str(export), "--db", str(db), "--rule", "r"],
        ["import-log", "--undo", "run0", "--db", str(db)],
        ["hosts", "pause", "p.example", "--db", str(db)],
        ["log", "prune", "--db", str(db), "--before", "2024-01-01"],
        ["audit", "--db", str(db)],
    ):
        assert main(args) == 2, args
        out = capsys.readouterr()
        sentence = _not_a_log(db, to_write=args[0] != "audit")
        assert out.err == f"postback-lab: error: {sentence}\n", args
    assert _files(tmp_path) == before


def test_cli_backfill_into_a_file_that_is_not_a_log_exits_2_without_traceback(tmp_path, run_cli):
    db = _analytics(tmp_path / "analytics.duckdb")
    rules, events = _rules(tmp_path), _events(tmp_path)
    before = _files(tmp_path)
    got = run_cli("backfill", events, "--rules", rules, "--db", db, "--no-progress")
    assert (got.returncode, got.stdout) == (2, "")
    assert got.stderr == f"postback-lab: error: {_not_a_log(db)}\n"
    assert _files(tmp_path) == before


# -- 2. a migration refused or failing ---------------------------------------------------
def _newer(tmp_path: Path) -> Path:
    db = tmp_path / "newer.duckdb"
    LogStore(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    return db


def test_a_newer_log_opened_to_write_is_refused_and_let_go(tmp_path):
    db = _newer(tmp_path)
    newer = f"{db}: written by a newer postback_lab (schema 99 > {SCHEMA_VERSION}); " + (
        "upgrade postback_lab"
    )
    before = _files(tmp_path)
    for _ in range(2):  # the second open says the same, not "already open for writing"
        with pytest.raises(StoreError) as err:
            LogStore(db)
        assert str(err.value) == newer
        _closed_and_released(db)
    with pytest.raises(StoreError) as err:
        open_log(db, "update")
    assert str(err.value) == newer
    with pytest.raises(StoreError) as err:
        LogStore(db, read_only=True)
    assert str(err.value) == newer
    _closed_and_released(db)
    assert _files(tmp_path) == before


def test_cli_send_into_a_newer_log_exits_2(tmp_path, capsys):
    db = _newer(tmp_path)
    plan = tmp_path / "plan.parquet"
    assert (
        main(["plan", str(_events(tmp_path)), "--rules", str(_rules(tmp_path)), "-o", str(plan)])
        == 0
    )
    capsys.readouterr()
    assert main(["send", str(plan), "--db", str(db), "--dry-run", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"postback-lab: error: {db}: written by a newer postback_lab (schema 99 > "
        f"{SCHEMA_VERSION}); upgrade postback_lab\n"
    )


def _v6_log(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("".join(MIGRATIONS[v] for v in range(1, 7)))
        con.execute("INSERT INTO meta VALUES ('schema_version', '6')")
        con.execute(
            "INSERT INTO postback_log (dispatch_id, run_id, attempt, outcome, fired_at) "
            "VALUES ('d1', 'r1', 1, 'delivered', TIMESTAMPTZ '2024-01-01 00:00:00+00')"
        )
    return path


def test_a_migration_step_that_fails_is_a_store_error_and_the_store_lets_go(tmp_path, monkeypatch):
    assert SCHEMA_VERSION == 7  # the step made to fail is the last one
    db = _v6_log(tmp_path / "v6.duckdb")
    monkeypatch.setitem(MIGRATIONS, 7, "ALTER TABLE no_such_table ADD COLUMN x INTEGER")
    for _ in range(2):
        with pytest.raises(StoreError) as err:
            LogStore(db)
        message = str(err.value)
        assert message.startswith(f"{db}: upgrading the log from schema 6 to 7 failed (")
        assert message.endswith("); it stays at schema 6"), message
        assert "no_such_table" in message
        assert isinstance(err.value.__cause__, duckdb.Error)
        _closed_and_released(db)
    with duckdb.connect(str(db), read_only=True) as con:  # rolled back: still version 6
        assert con.sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("6",)]
    monkeypatch.undo()
    with LogStore(db) as s:  # the real migration still works and keeps the rows
        assert s.schema_version == SCHEMA_VERSION
        assert s.attempts().select("dispatch_id", "outcome").rows() == [("d1", "delivered")]


def test_a_duckdb_error_while_checking_the_file_is_a_store_error(tmp_path, monkeypatch):
    """Any DuckDB error while a store opens (here: listing the file's tables) becomes a
    StoreError naming the file; none escapes raw, and the store lets go of the file."""
    from postback_lab.store import _migrate

    db = tmp_path / "log.duckdb"
    duckdb.connect(str(db)).close()

    def broken(con: duckdb.DuckDBPyConnection) -> list[str]:
        raise duckdb.IOException("IO Error: disk went away")

    monkeypatch.setattr(_migrate, "_tables", broken)
    with pytest.raises(StoreError) as err:
        LogStore(db)
    assert str(err.value) == f"{db}: cannot open the log (IO Error: disk went away)"
    _closed_and_released(db)
    monkeypatch.undo()
    with LogStore(db) as s:
        assert s.count() == 0


def test_an_interrupted_migration_rolls_back_and_lets_go(tmp_path, monkeypatch):
    """Ctrl-C inside a migration step: the step is rolled back, the interruption goes on,
    and the store holds nothing."""
    from postback_lab.store import _migrate

    db = _v6_log(tmp_path / "v6.duckdb")
    real = _migrate.MIGRATIONS

    class Interrupting(dict[int, str]):
        def __getitem__(self, version: int) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr(_migrate, "MIGRATIONS", Interrupting(real))
    with pytest.raises(KeyboardInterrupt):
        LogStore(db)
    _closed_and_released(db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("6",)]


def test_a_damaged_log_is_a_store_error_for_writing_and_reading(tmp_path):
    """A log whose tables do not match its version (here: schema 2 without postback_log)
    fails its migration: the writer and the reader both name the file and the step, and
    the file is left as it was."""
    db = tmp_path / "damaged.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(MIGRATIONS[1] + MIGRATIONS[2])
        con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        con.execute("DROP TABLE postback_log")
    before = _files(tmp_path)
    for read_only in (False, True):
        with pytest.raises(StoreError) as err:
            LogStore(db, read_only=read_only)
        message = str(err.value)
        assert message.startswith(
            f"{db}: upgrading the log from schema 2 to {SCHEMA_VERSION} failed (Catalog Error: "
        )
        assert message.endswith("); it stays at schema 2") and "postback_log" in message
        _closed_and_released(db)
    assert _files(tmp_path) == before
