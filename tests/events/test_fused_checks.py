"""The reader flags rows in its scan and words the reasons for the flagged rows only: every
problem still gets its exact reason, the first one a row has, and good rows stay in order."""

from __future__ import annotations

import polars as pl

import postback_lab as pbl

ROWS = [
    # transaction_id, occurred_at, status, event_type, payout, sub1
    ("T1", "2026-11-01 10:00:00", "approved", "conversion", "1.5", "a"),
    (None, "2026-11-01 10:00:00", "approved", "conversion", "1.5", "a"),
    ("T3", None, "approved", "conversion", "1.5", "a"),
    ("T4", "   ", "approved", "conversion", "1.5", "a"),
    ("T5", "yesterday", "approved", "conversion", "1.5", "a"),
    ("T6", "2026-11-01 10:00:00", "approved", "conversion", "1.5", "x\x00y"),
    ("T7", "2026-11-01 10:00:00", "approved", "wibble", "1.5", "a"),
    ("T8", "2026-11-01 10:00:00", "frobbed", "conversion", "1.5", "a"),
    ("T9", "2026-11-01 10:00:00", "  ", "conversion", "1.5", "a"),
    ("T10", "2026-11-01 10:00:00", "approved", "conversion", "abc", "a"),
    ("T11", "2026-11-01 10:00:00", "approved", "conversion", "  ", "a"),
    ("T12", "2026-11-01 10:00:00", "approved", "conversion", None, "a"),
    ("T13", "2026-11-01 10:00:00", "Test", "conversion", "1.5", "a"),
    ("T14", "2026-11-01 10:00:00", None, "click", None, "a"),
    ("T15", "bad", "frobbed", "wibble", "abc", "a"),
]
COLUMNS = ["transaction_id", "occurred_at", "status", "event_type", "payout", "sub1"]


def frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=dict.fromkeys(COLUMNS, pl.String()), orient="row")


def test_every_problem_gets_its_exact_reason_and_good_rows_keep_their_order():
    events = pbl.read_events(frame(), ignore_status=["test"])
    assert events.frame["transaction_id"].to_list() == ["T1", "T11", "T12", "T14"]
    assert events.frame["payout"].to_list() == [1.5, None, None, None]
    assert events.quarantine.select("line", "reason").rows() == [  # lines count from 1
        (2, "missing transaction_id"),
        (3, "missing occurred_at"),
        (4, "missing occurred_at"),
        (5, "bad timestamp 'yesterday'"),
        (6, "NUL byte in sub1"),
        (7, "unknown event_type 'wibble' (valid: impression, click, conversion, event)"),
        (8, "unknown status 'frobbed' (valid: approved, rejected, pending)"),
        (9, "missing status"),
        (10, "bad payout 'abc'"),
        (15, "bad timestamp 'bad'"),  # the first of its problems
    ]
    assert any("1 row with an ignored status (test) left out" in n for n in events.notes)
    raw = events.quarantine.filter(pl.col("line") == 10)["raw"].item()
    assert '"payout":"abc"' in raw and '"transaction_id":"T10"' in raw


def test_a_row_without_a_time_is_quarantined_not_planned_with_no_time(tmp_path):
    """A blank or missing time was let through with a null ``occurred_at`` (its reason
    came out null), from CSV as from frames."""
    path = tmp_path / "events.csv"
    frame().head(4).write_csv(path)
    events = pbl.read_events(str(path))
    assert events.frame["occurred_at"].null_count() == 0
    assert events.quarantine.select("line", "reason").rows() == [
        (3, "missing transaction_id"),
        (4, "missing occurred_at"),
        (5, "missing occurred_at"),
    ]


def test_typed_columns_are_checked_without_text():
    typed = (
        frame()
        .head(1)
        .with_columns(
            pl.col("occurred_at").str.to_datetime(time_zone="UTC"),
            pl.col("payout").cast(pl.Float64),
        )
    )
    more = pl.concat(
        [
            typed,
            typed.with_columns(
                pl.lit(None, pl.Datetime("us", "UTC")).alias("occurred_at"),
                pl.lit(None, pl.Float64).alias("payout"),
                pl.lit("T2").alias("transaction_id"),
            ),
        ]
    )
    events = pbl.read_events(more)
    assert events.frame["transaction_id"].to_list() == ["T1"]
    assert events.quarantine.select("line", "reason").rows() == [(2, "missing occurred_at")]
