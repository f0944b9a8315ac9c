"""Which rule an imported row belongs to when the export names none: a platform log
without a postback-name column (a multi-partner log) says it in the URL it fired (host,
path, the parameters and their fixed values) and in the row's publisher, offer and
status. A row gets a rule only when exactly one rule of the rules file fits it.
"""

from __future__ import annotations

import re

import polars as pl

from ..rules import Macro, Rule, RuleSet


def url_pattern(rule: Rule) -> str:
    """A regular expression matching the URLs ``rule`` renders: its literal text as is,
    each macro any run of characters up to the next ``&``, ``#`` or end (query values and
    path segments, percent-encoded or masked)."""
    out = ["(?i)^"]
    for part in rule.url.parts:
        if isinstance(part, Macro):
            out.append(r"[^&#]*?")
        else:
            out.append(re.escape(str(part)))
    out.append("$")
    return "".join(out)


def fits(rule: Rule) -> pl.Expr:
    """Rows (``url``, ``publisher_id``, ``offer_id``, ``status`` columns) that ``rule``
    could have fired: a missing value is no evidence against it."""
    cond = pl.col("url").str.contains(url_pattern(rule)).fill_null(True)
    if rule.publishers is not None:
        cond &= pl.col("publisher_id").is_in(list(rule.publishers)).fill_null(True)
    if rule.offers is not None:
        cond &= pl.col("offer_id").is_in(list(rule.offers)).fill_null(True)
    if rule.fire_on != "all":
        cond &= (pl.col("status") == rule.fire_on).fill_null(True)
    return cond


def match_rules(frame: pl.DataFrame, rules: RuleSet) -> pl.Series:
    """Per row of ``frame``: the one enabled rule that fits it, else null (none fits, or
    several do). Rows that name a rule keep it."""
    enabled = [r for r in rules if r.enabled]
    if frame.height == 0 or not enabled:
        return frame["rule"]
    masks = frame.select([fits(r).alias(f"__m{i}") for i, r in enumerate(enabled)]).with_columns(
        pl.sum_horizontal(pl.all()).alias("__n")
    )
    only = pl.lit(None, dtype=pl.String)
    for i, r in reversed(list(enumerate(enabled))):
        only = pl.when(pl.col(f"__m{i}")).then(pl.lit(r.name)).otherwise(only)
    chosen = masks.select(pl.when(pl.col("__n") == 1).then(only).alias("rule"))["rule"]
    has_evidence = frame.select(
        pl.any_horizontal(
            pl.col("url").is_not_null(),
            pl.col("publisher_id").is_not_null(),
            pl.col("offer_id").is_not_null(),
        )
    ).to_series()
    guessed = pl.select(
        pl.when(has_evidence).then(chosen).otherwise(pl.lit(None, dtype=pl.String))
    ).to_series()
    return frame.select(pl.coalesce(pl.col("rule"), guessed).alias("rule"))["rule"]
