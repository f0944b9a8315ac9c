"""Which dispatch of a plan a logged attempt belongs to: the one linking rule that
reconcile, ``send`` and ``backfill`` share, so what reconcile calls delivered is exactly
what a send skips.

Rows the sender wrote carry their dispatch id. Imported rows (a platform's own log) belong
to the plan dispatch with the same rule, transaction id and, when the export has it, the
conversion's status. Rule names compare ignoring case and repeated or surrounding spaces
(an exact name wins when two rules differ only so). Without a status, a row belongs to the
dispatch of that rule and transaction due most recently before it fired (else the next one
due). Imported rows of the plan's transactions that belong to none of its dispatches are
reported: they may be deliveries that the plan will send again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from .._errors import closest
from ..events import normalise_status
from ._schema import NOT_ATTEMPTS


class _Log(Protocol):
    """What linking needs of a LogStore (which calls into this module)."""

    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame: ...

    def attempts(self, where: str = "", params: list[Any] | None = None) -> pl.DataFrame: ...


#: log rows that need linking: imported ones, and any row without a dispatch id
LOOSE = f"(source = 'imported' OR dispatch_id IS NULL) AND {NOT_ATTEMPTS}"
#: log rows that carry the dispatch they belong to (written by the sender)
DIRECT = "source IS DISTINCT FROM 'imported' AND dispatch_id IS NOT NULL"
EXAMPLES = 5


def rule_key(expr: pl.Expr) -> pl.Expr:
    """A rule name as linking compares it: case, surrounding and repeated spaces ignored."""
    return expr.str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase()


def resolve_rules(names: Iterable[str | None], known: Iterable[str]) -> dict[str, str]:
    """Each of ``names`` -> the rule of ``known`` it means: the same name, else the one
    known rule equal to it but for case and spaces. Names matching none (or several
    equally) are left out."""
    known = [k for k in dict.fromkeys(known) if k is not None]
    wanted = [n for n in dict.fromkeys(names) if n is not None]
    if not wanted or not known:
        return {}
    keys = pl.Series(known, dtype=pl.String).to_frame("rule").select(rule_key(pl.col("rule")))
    by_key: dict[str, list[str]] = {}
    for k, name in zip(keys["rule"], known, strict=True):
        by_key.setdefault(k, []).append(name)
    asked = pl.Series(wanted, dtype=pl.String).to_frame("rule").select(rule_key(pl.col("rule")))
    exact = set(known)
    out: dict[str, str] = {}
    for name, k in zip(wanted, asked["rule"], strict=True):
        if name in exact:
            out[name] = name
        elif len(by_key.get(k, ())) == 1:
            out[name] = by_key[k][0]
    return out


def link(plan: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (log rows) with ``dispatch_id`` set to the plan dispatch each imported row
    belongs to (null: none); in their order."""
    if rows.height == 0:
        return rows
    rows = rows.with_row_index("__i")
    resolved = resolve_rules(rows["rule"].unique().to_list(), plan["rule"].unique().to_list())
    raw = pl.col("status")
    rows = rows.with_columns(
        pl.col("rule").replace_strict(resolved, default=None, return_dtype=pl.String).alias("__r"),
        # logs imported before statuses were normalised may say "Approved"
        pl.coalesce(normalise_status(raw, pl.String()), raw).alias("__s"),
    )
    keys = (
        plan.select(
            pl.col("rule").alias("__r"),
            "transaction_id",
            pl.col("status").alias("__s"),
            pl.col("due_at").alias("__due"),
            pl.col("dispatch_id").alias("__d"),
        )
        .join(rows.select("transaction_id").unique(), on="transaction_id", how="semi")
        .unique("__d")
        .sort("__due")
    )
    named = pl.col("__r").is_not_null()
    with_status = rows.filter(named & pl.col("__s").is_not_null())
    with_status = with_status.join(
        keys.drop("__due"), on=["__r", "transaction_id", "__s"], how="left"
    )
    loose = rows.filter(named & pl.col("__s").is_null()).sort("fired_at")
    if loose.height:

        def asof(frame: pl.DataFrame, strategy: str) -> pl.DataFrame:
            return frame.join_asof(
                keys.drop("__s"),
                left_on="fired_at",
                right_on="__due",
                by=["__r", "transaction_id"],
                strategy=strategy,  # type: ignore[arg-type]
                check_sortedness=False,
            )  # both sides are sorted above

        back = asof(loose, "backward")
        found = back.filter(pl.col("__d").is_not_null())
        rest = asof(back.filter(pl.col("__d").is_null()).drop("__d", "__due"), "forward")
        loose = pl.concat([found, rest]).drop("__due")
    else:
        loose = loose.with_columns(pl.lit(None, dtype=pl.String).alias("__d"))
    nameless = rows.filter(~named).with_columns(pl.lit(None, dtype=pl.String).alias("__d"))
    cols = [*rows.columns, "__d"]
    out = pl.concat([f.select(cols) for f in (with_status, loose, nameless)]).sort("__i")
    return out.with_columns(pl.col("__d").alias("dispatch_id")).drop("__i", "__r", "__s", "__d")


@dataclass(frozen=True)
class Links:
    """The log's imported (and id-less) attempts, linked to the dispatches of a plan."""

    #: the loose log rows, ``dispatch_id`` = the plan dispatch each belongs to (null: none)
    rows: pl.DataFrame
    #: rows of the plan's transactions that belong to none of its dispatches
    unlinked: pl.DataFrame
    #: the plan's rule names, for hints
    rules: tuple[str, ...] = ()

    def delivered(self) -> set[str]:
        """Plan dispatch ids that a linked row shows delivered."""
        hit = self.rows.filter(
            pl.col("dispatch_id").is_not_null() & (pl.col("outcome") == "delivered")
        )
        return set(hit["dispatch_id"].to_list())

    def warning(self) -> str | None:
        """One paragraph on the unlinked rows (count and the first examples), or None."""
        n = self.unlinked.height
        if n == 0:
            return None
        lines = [
            f"warning: {n:,} imported attempt{'s' if n != 1 else ''} of this plan's "
            "transactions match none of its dispatches (by rule, transaction id and status) "
            "and do not count as delivered; check the rule names and statuses of the import:"
        ]
        for r in self.unlinked.head(EXAMPLES).iter_rows(named=True):
            lines.append("  " + describe(r, self.rules))
        if n > EXAMPLES:
            lines.append(f"  ... and {n - EXAMPLES:,} more")
        return "\n".join(lines)


def describe(row: dict[str, object], rules: Iterable[str] = ()) -> str:
    """One imported row for a message: rule, transaction, status, time and code."""
    rule = row.get("rule")
    if rule is None:
        who = "no rule"
    else:
        rules = list(rules)
        near = None if resolve_rules([str(rule)], rules) else closest(str(rule), rules)
        who = f"rule {rule!r}" + (f" (closest rule in the plan: {near!r})" if near else "")
    status = row.get("status")
    code = row.get("status_code")
    fired = row.get("fired_at")
    when = f"{fired:%Y-%m-%d %H:%M:%S}" if hasattr(fired, "strftime") else "?"
    return (
        f"{who}, transaction {row.get('transaction_id')!r}"
        + (f", status {status!r}" if status else "")
        + f", fired {when}, code {code if code is not None else 'none'}"
    )


def links(store: _Log, plan: pl.DataFrame) -> Links:
    """The log's loose rows (imported, or without a dispatch id) linked to ``plan``."""
    rows = link(plan, store.attempts(LOOSE))
    unlinked = rows.filter(pl.col("dispatch_id").is_null())
    if unlinked.height:
        unlinked = unlinked.join(plan.select("transaction_id"), on="transaction_id", how="semi")
    rules = tuple(plan["rule"].unique().sort().to_list()) if unlinked.height else ()
    return Links(rows, unlinked, rules)


def delivered_ids(store: _Log, plan: pl.DataFrame, *, warn: bool = True) -> set[str]:
    """The dispatch ids of ``plan`` that the log shows delivered, by the linking rule of
    reconcile. ``warn``: print a warning line on stderr about imported rows of the plan's
    transactions that link to none of its dispatches."""
    ids = plan.select(pl.col("dispatch_id").unique())
    direct = store.sql(
        f"SELECT DISTINCT dispatch_id FROM postback_log SEMI JOIN ids USING (dispatch_id) "
        f"WHERE outcome = 'delivered' AND {DIRECT}",
        ids=ids,
    )
    found = set(direct["dispatch_id"].to_list())
    linked = links(store, plan)
    if warn and (text := linked.warning()):
        print(text, file=sys.stderr)
    return found | linked.delivered()
