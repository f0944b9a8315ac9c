"""DuckDB errors stop at the store: a bad SQL condition a user typed is a StoreError that
names it, checked on its own before it is spliced into a larger query; any other failed
query is a StoreError too, raised from DuckDB's."""

from __future__ import annotations

import duckdb
import pytest

import postback_lab as pbl
from postback_lab import StoreError
from postback_lab.store import LogStore


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "log.duckdb"
    LogStore(path).close()
    return path


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("bad ((", 'Parser Error: syntax error at or near ")"'),
        ("nope = 1", 'Binder Error: Referenced column "nope" not found in FROM clause!'),
        ("1=1); DROP TABLE runs; --", "more than one statement"),
    ],
)
def test_a_bad_audit_condition_is_a_store_error_naming_it(db, where, why):
    with pytest.raises(StoreError) as caught:
        pbl.audit(db, where=where)
    assert (
        str(caught.value) == f"where={where!r} is not a SQL condition on the log's columns ({why})"
    )
    with LogStore(db, read_only=True) as store:  # nothing ran: runs is still there
        assert store.sql("SELECT count(*) AS n FROM runs")["n"].to_list() == [0]


def test_a_good_condition_runs(db):
    assert pbl.audit(db, where="outcome = 'delivered'").table().height == 0


def test_attempts_checks_its_condition_with_its_parameters(db):
    with LogStore(db, read_only=True) as store:
        assert store.attempts("rule = ?", ["a"]).height == 0
        with pytest.raises(StoreError, match=r"^where='rule = \?\? \?' is not a SQL condition"):
            store.attempts("rule = ?? ?", ["a"])


def test_any_failed_query_is_a_store_error_from_duckdbs(db):
    with LogStore(db, read_only=True) as store, pytest.raises(StoreError) as caught:
        store.sql("SELECT no_such_column FROM postback_log")
    assert str(caught.value).startswith(f"{db}: a query failed (Binder Error: ")
    assert isinstance(caught.value.__cause__, duckdb.BinderException)
