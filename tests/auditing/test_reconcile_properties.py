"""reconcile's per-dispatch figures equal a plain Polars computation on random logs: retries,
dry runs, dispatches outside the plan, and attempt-1 rows appended twice by hand (which
take the slower path that groups every dispatch)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from postback_lab import LogStore, build_plan
from postback_lab.auditing import reconcile
from postback_lab.store import LOG_SCHEMA

from .test_reconcile_backfill_audit import T0, _events, _row, _rules

CODES = {200: "delivered", 500: "failed", None: "timeout"}
PLAN = build_plan(_events(6), _rules("https://p.example"))

attempt_st = st.tuples(
    st.integers(0, 600),  # seconds after the dispatch is due
    st.sampled_from([200, 500, None]),
    st.booleans(),  # a dry run
)
log_st = st.lists(
    st.tuples(
        st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6", "stray1", "stray2"]),
        st.lists(attempt_st, min_size=1, max_size=3),
        st.booleans(),  # append the first attempt twice
    ),
    max_size=8,
    unique_by=lambda d: d[0],
)


def _rows(log: list) -> list[dict]:
    rows = []
    for tid, attempts, twice in log:
        base = "t1" if tid.startswith("stray") else tid
        for n, (sec, code, dry) in enumerate(sorted(attempts, key=lambda a: a[0]), start=1):
            row = _row(
                PLAN,
                base,
                attempt=n,
                fired_at=T0 + timedelta(minutes=10, seconds=sec),
                status_code=code,
                outcome="dry_run" if dry else CODES[code],
            )
            if tid != base:
                row |= {"dispatch_id": f"id-{tid}", "transaction_id": tid}
            rows.append(row)
            if twice and n == 1:
                rows.append(row)
    return rows


def _expected(rows: list[dict]) -> tuple[list[tuple], list[str]]:
    log = pl.DataFrame(rows, schema=LOG_SCHEMA).filter(pl.col("outcome") != "dry_run")
    per = (
        log.sort("fired_at", "attempt")
        .group_by("dispatch_id")
        .agg(
            pl.len().alias("attempts"),
            (pl.col("outcome") == "delivered").sum().alias("delivered_attempts"),
            pl.col("status_code").last().alias("last_status_code"),
        )
    )
    out = (
        PLAN.frame.select("dispatch_id", "transaction_id")
        .join(per, on="dispatch_id", how="left")
        .select(
            "transaction_id",
            pl.col("attempts").fill_null(0),
            pl.col("delivered_attempts").fill_null(0),
            "last_status_code",
        )
    )
    strays = log.filter(~pl.col("dispatch_id").is_in(PLAN.frame["dispatch_id"].implode()))
    return sorted(out.rows()), sorted(strays["transaction_id"].to_list())


@settings(max_examples=50, deadline=None)
@given(log=log_st)
def test_reconcile_equals_a_plain_per_dispatch_computation(log):
    rows = _rows(log)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "log.duckdb"
        with LogStore(db) as s:
            s.append(rows, check_attempts=False)  # as another tool might have written them
            rec = reconcile(PLAN, s)
    got = rec.dispatches.select(
        "transaction_id", "attempts", "delivered_attempts", "last_status_code"
    ).rows()
    per, strays = _expected(rows)
    assert sorted(got) == per
    assert sorted(rec.unexpected["transaction_id"].to_list()) == strays
    assert rec.dispatches["transaction_id"].to_list() == PLAN.frame["transaction_id"].to_list()


def test_sent_and_imported_attempts_of_one_dispatch_add_up(tmp_path):
    """An export without a status links by rule + transaction id to a dispatch the sender
    already tried: its rows count with the sent ones, the latest attempt last."""
    db = tmp_path / "log.duckdb"
    with LogStore(db) as s:
        s.append([_row(PLAN, "t2", status_code=500, outcome="failed")])
    export = tmp_path / "export.csv"
    export.write_text(
        "Firing Time,Transaction ID,Response Code,Postback Name\n"
        "2024-01-01 00:03:00,t2,,sales\n"  # a timeout after the sent attempt
    )
    from postback_lab.store import import_log

    import_log(export, db)
    rec = reconcile(PLAN, db)
    row = rec.dispatches.filter(pl.col("transaction_id") == "t2").row(0, named=True)
    assert (row["attempts"], row["delivered_attempts"], row["state"]) == (2, 0, "failed")
    assert row["last_status_code"] is None
    assert rec.unexpected.height == 0
