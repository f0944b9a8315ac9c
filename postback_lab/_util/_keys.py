"""The dispatch key, defined once: md5 of (rule, transaction_id, status).

The same postback always gets the same ``dispatch_id`` whatever the row order or the run,
so a rule fires at most once per status a conversion reaches and a re-run or a backfill
can tell what was already delivered. The log also stores each row's key as a 128-bit
number (``DISPATCH_KEY``): counting and joining on a number instead of a 32-character
string takes a quarter off an audit of 10M rows.
"""

from __future__ import annotations

import polars as pl

from ._duckdb import query

#: the text hashed into a dispatch id (unit separator between the parts)
KEY_TEXT = "concat_ws(chr(31), rule, transaction_id, status)"

#: SQL: the dispatch id of a row with ``rule``, ``transaction_id`` and ``status`` columns
DISPATCH_ID = (
    "CASE WHEN rule IS NULL OR transaction_id IS NULL OR status IS NULL "
    f"THEN NULL ELSE md5({KEY_TEXT}) END"
)

#: SQL: the dispatch a log row belongs to; imported rows of exports without a conversion
#: status have no dispatch id and are keyed by rule + transaction id (+ status) instead
ATTEMPT_KEY = f"coalesce(dispatch_id, {KEY_TEXT})"

#: SQL: ``ATTEMPT_KEY`` as the 128-bit number stored with each log row (``dispatch_key``)
DISPATCH_KEY = f"md5_number({ATTEMPT_KEY})"


def dispatch_ids(frame: pl.DataFrame) -> pl.Series:
    """``dispatch_id`` per row of a frame with ``rule``, ``transaction_id`` and ``status``
    (null where one of them is null), computed by DuckDB (Polars has no md5)."""
    keys = frame.select("rule", "transaction_id", "status")
    return query(f"SELECT {DISPATCH_ID} AS dispatch_id FROM k", k=keys)["dispatch_id"]
