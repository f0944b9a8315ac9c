"""Firing rule 7 at send time: given fresh events, a dispatch of a rule with a delay is
not fired when its transaction reached another status after the planned event and at or
before the dispatch's ``due_at`` (the conversion was rejected during the fraud-check
delay). Such dispatches are skipped and counted (``SendResult.superseded``), not logged:
no request was made, and a fresh plan would not contain them."""

from __future__ import annotations

from typing import Any

import polars as pl

from ..events import Events, read_events
from ..rules import RuleSet


def superseded(frame: pl.DataFrame, events: Any, rules: RuleSet) -> pl.Series:
    """The dispatch ids of ``frame`` that ``events`` shows superseded within their delay.
    Rules known to have ``cancel_on_change: false`` are left out; a plan read from a file
    does not know its rules, so every delayed dispatch of it is checked."""
    ev = (events if isinstance(events, Events) else read_events(events)).frame
    opted_out = [r.name for r in rules if getattr(r, "cancel_on_change", True) is False]
    delayed = frame.filter(
        (pl.col("due_at") > pl.col("occurred_at")) & ~pl.col("rule").is_in(opted_out)
    ).select("dispatch_id", "transaction_id", "status", "occurred_at", "due_at")
    if delayed.height == 0:
        return pl.Series("dispatch_id", [], dtype=pl.String)
    changes = ev.select(
        "transaction_id",
        pl.col("status").alias("__status"),
        pl.col("occurred_at").alias("__at"),
    ).filter(pl.col("transaction_id").is_in(delayed["transaction_id"].unique().implode()))
    hit = delayed.join(changes, on="transaction_id").filter(
        (pl.col("__status") != pl.col("status"))
        & (pl.col("__at") > pl.col("occurred_at"))
        & (pl.col("__at") <= pl.col("due_at"))
    )
    return hit["dispatch_id"].unique(maintain_order=True)
