"""The firing conditions of a rule as Polars expressions, each named by the reason an
event that fails it is not fired (the order is the order ``explain`` checks them)."""

from __future__ import annotations

import polars as pl

from ..rules import Rule
from ._supersede import cancels, not_superseded

#: conditions that look only at a row's signature columns (see ``_rows.SIGNATURE``)
STATIC = ("disabled", "type", "offer", "publisher", "status", "rejection_reason", "goal")


def scope(rule: Rule) -> list[tuple[str, pl.Expr]]:
    """The firing conditions of a rule, in order, each named by the reason an event fails
    it (used by the plan and by explain)."""
    conds: list[tuple[str, pl.Expr]] = [
        ("disabled", pl.lit(rule.enabled)),
        ("type", pl.col("event_type") == rule.type),
    ]
    if rule.offers is not None:
        conds.append(("offer", pl.col("offer_id").is_in(rule.offers).fill_null(False)))
    if rule.publishers is not None:
        conds.append(("publisher", pl.col("publisher_id").is_in(rule.publishers).fill_null(False)))
    if rule.fire_on != "all":
        conds.append(("status", pl.col("status") == rule.fire_on))
    if rule.rejection_reasons is not None:
        ok = one_of("rejection_reason", rule.rejection_reasons)
        conds.append(("rejection_reason", (pl.col("status") != "rejected") | ok))
    if rule.goals is not None:
        conds.append(("goal", one_of("goal", rule.goals)))
    for c in rule.required_columns:
        conds.append((f"missing {{{c}}}", pl.col(c).is_not_null()))
    if cancels(rule):  # needs the frame's next-change column (with_next_change)
        conds.append(("superseded", not_superseded(rule)))
    return conds


def one_of(column: str, values: tuple[str, ...]) -> pl.Expr:
    """The column's value is one of ``values``, ignoring case (rejection reasons and goals
    are spelt differently by every platform); false for null."""
    folded = pl.Series(values, dtype=pl.String).str.to_lowercase().unique(maintain_order=True)
    return pl.col(column).str.to_lowercase().is_in(folded.implode()).fill_null(False)


def fires(rule: Rule) -> pl.Expr:
    """One boolean expression: the row passes every firing condition of ``rule``."""
    return pl.all_horizontal([e for _, e in scope(rule)])
