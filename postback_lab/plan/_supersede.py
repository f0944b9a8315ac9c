"""Firing rule 7: a row of a rule with a delay fires only if its transaction reached no
other status after it and at or before its ``due_at``.

What every delay rule needs is, per event row, the time its transaction next reached a
different status (``occurred_at`` < t, the earliest such t; null when it never did).
It is computed once per events frame, vectorised: one sort by (transaction_id,
occurred_at), then NumPy passes over the sorted arrays, never a Python loop per row.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from ..rules import Rule

#: the column holding each row's next different-status time (while a plan is built)
NEXT_CHANGE = "__next_change"


def cancels(rule: Rule) -> bool:
    """Whether firing rule 7 applies to ``rule`` (it has a delay and did not opt out)."""
    return rule.delay.total_seconds() > 0 and rule.cancel_on_change


def needs_next_change(rules: Iterable[Rule]) -> bool:
    """Whether some enabled rule needs each row's next different-status time."""
    return any(r.enabled and cancels(r) for r in rules)


def not_superseded(rule: Rule) -> pl.Expr:
    """True where the row passes rule 7: no other status reached in (occurred_at, due_at]."""
    change = pl.col(NEXT_CHANGE)
    return change.is_null() | (change > pl.col("occurred_at") + pl.lit(rule.delay))


def with_next_change(frame: pl.DataFrame, rules: Iterable[Rule]) -> pl.DataFrame:
    """``frame`` with the NEXT_CHANGE column when some enabled rule needs it (else as is)."""
    if NEXT_CHANGE in frame.columns or not needs_next_change(rules):
        return frame
    return frame.with_columns(next_change(frame)[0])


def next_change(frame: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Per row of ``frame`` (in its order): when its transaction next reached another
    status, strictly after the row's ``occurred_at``, and which status that was (both
    null when it never did).

    Sorted by (transaction_id, occurred_at), the answer for a row is the first row after
    its block of equal times whose status differs: the row right after the block when its
    status differs, else the row after that run of equal statuses. Both are found with
    running minima over the sorted positions.
    """
    n = frame.height
    times = pl.Series(NEXT_CHANGE, [None] * n, dtype=pl.Datetime("us", "UTC"))
    statuses = pl.Series("__next_status", [None] * n, dtype=pl.String)
    if n < 2:
        return times, statuses
    keys = frame.select(
        pl.col("transaction_id"),
        pl.col("status"),
        pl.col("occurred_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
    ).with_row_index("__row")
    order = keys.sort(["transaction_id", "occurred_at"], maintain_order=True, multithreaded=True)
    status_codes = order.select(pl.col("status").rank("dense").cast(pl.Int64)).to_series()
    edges = order.select(
        (pl.col("transaction_id") != pl.col("transaction_id").shift(-1))
        .fill_null(True)
        .alias("group_end"),
        (pl.col("occurred_at") != pl.col("occurred_at").shift(-1)).fill_null(True).alias("t_end"),
    )
    group_end = edges["group_end"].to_numpy()
    time_end = group_end | edges["t_end"].to_numpy()
    code = status_codes.fill_null(0).to_numpy()
    run_end = group_end.copy()
    run_end[:-1] |= code[:-1] != code[1:]

    positions = np.arange(n + 1, dtype=np.int64)
    sentinel = np.int64(n)

    def next_end(ends: np.ndarray) -> np.ndarray:
        """For each position, the first position at or after it where ``ends`` holds
        (``n`` past the last), with one extra slot at ``n``."""
        marks = np.where(np.append(ends, True), positions, sentinel)
        out: np.ndarray = np.minimum.accumulate(marks[::-1])[::-1]
        return out

    block_last = next_end(time_end)[:n]
    group_last = next_end(group_end)[:n]
    run_last = next_end(run_end)
    after = block_last + 1  # first row with a later time (maybe another transaction)
    code_at = np.append(code, -1)
    same = code_at[after] == code
    first_other = np.where(same, run_last[np.minimum(after, sentinel)] + 1, after)
    found = first_other <= group_last
    rows = order["__row"].to_numpy()
    hit_rows = rows[found]
    at = first_other[found]
    t = order["occurred_at"].gather(pl.Series(at, dtype=pl.Int64))
    s = order["status"].gather(pl.Series(at, dtype=pl.Int64))
    index = pl.Series(hit_rows, dtype=pl.Int64)
    times = times.scatter(index, t)
    statuses = statuses.scatter(index, s)
    return times, statuses
