"""Firing rule 7: a row of a rule with a delay fires only if its transaction reached no
other status after it and at or before its ``due_at``.

What every delay rule needs is, per event row, the time its transaction next reached a
different status (``occurred_at`` < t, the earliest such t; null when it never did).
It is computed once per events frame, vectorised (``_rows.next_change``).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ..rules import Rule
from ._rows import next_change

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
    return frame.with_columns(next_change(frame, with_status=False)[0])
