"""Which dispatch of a plan a logged attempt belongs to: the one linking rule that
reconcile, ``send`` and ``backfill`` share, so what reconcile calls delivered is exactly
what a send skips.

Rows the sender wrote carry their dispatch id. Imported rows (a platform's own log) belong
to the plan dispatch with the same rule, conversion id (else, for a log that names only
the click, the same click id, which the plan carries from the events) and, when the export
has it, the conversion's status. Rule names compare ignoring case and repeated or surrounding spaces
(an exact name wins when two rules differ only so). Without a status, a row belongs to the
dispatch of that rule and transaction due most recently before it fired (else the next one
due). Imported rows that could belong to the plan (its rules, or no rule; fired after its
first conversion) but link to none of its dispatches are reported: they may be deliveries
that the plan would send again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import polars as pl

from .._errors import StoreError, closest
from ..events import normalise_status
from ._schema import LOG_COLUMNS, LOG_SCHEMA, NOT_ATTEMPTS


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
    belongs to (null: none); in their order.

    A row links by the conversion id when it has one (its ``transaction_id`` is a plan
    transaction, or it names no click), else by its ``click_id`` through the plan's click
    ids (the events'); then by rule, and status when the row has one. When several
    dispatches fit (a click with several conversions, a row without a status), the one due
    most recently before the row fired wins, else the next one due. A row naming no rule
    links only where one rule of the plan fits its id (and status)."""
    if rows.height == 0:
        return rows
    rows = rows.with_row_index("__i")
    if "click_id" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("click_id"))
    resolved = resolve_rules(rows["rule"].unique().to_list(), plan["rule"].unique().to_list())
    raw = pl.col("status")
    # the rows' ids that are conversions of the plan (a semi join: the plan may be 10M rows)
    tids = plan.select("transaction_id").join(
        rows.select(pl.col("transaction_id").unique()), on="transaction_id", how="semi"
    )
    click_only = pl.col("click_id").is_not_null() & (
        pl.col("transaction_id").is_null() | (pl.col("transaction_id") == pl.col("click_id"))
    )
    rows = rows.with_columns(
        pl.col("rule").replace_strict(resolved, default=None, return_dtype=pl.String).alias("__r"),
        # logs imported before statuses were normalised may say "Approved"
        pl.coalesce(normalise_status(raw, pl.String()), raw).alias("__s"),
        (
            click_only
            & ~pl.col("transaction_id").is_in(tids["transaction_id"].implode()).fill_null(False)
        ).alias("__by_click"),
    ).with_columns(
        pl.when(pl.col("__by_click"))
        .then(pl.col("click_id"))
        .otherwise(pl.col("transaction_id"))
        .alias("__id")
    )
    plan_clicks = (
        plan["click_id"]
        if "click_id" in plan.columns
        else pl.Series([None] * plan.height, dtype=pl.String)
    )
    base = plan.select(
        pl.col("rule").alias("__r"),
        pl.col("status").alias("__s"),
        pl.col("due_at").alias("__due"),
        pl.col("dispatch_id").alias("__d"),
        "transaction_id",
    ).with_columns(plan_clicks.alias("__click"))
    wanted = rows.select("__id").unique()
    by_tid = (
        base.rename({"transaction_id": "__id"})
        .drop("__click")
        .join(wanted, on="__id", how="semi")
        .with_columns(pl.lit(False).alias("__by_click"))
    )
    by_click = (
        base.drop("transaction_id")
        .rename({"__click": "__id"})
        .filter(pl.col("__id").is_not_null())
        .join(wanted, on="__id", how="semi")
        .with_columns(pl.lit(True).alias("__by_click"))
    )
    keys = pl.concat([by_tid, by_click.select(by_tid.columns)]).unique(["__d", "__by_click"])
    keys = keys.sort("__due")
    named = pl.col("rule").is_not_null()  # a name the plan lacks links nowhere (__r null)
    with_status = pl.col("__s").is_not_null()
    parts = [
        _nearest(rows.filter(named & with_status), keys, ["__by_click", "__r", "__id", "__s"]),
        _nearest(rows.filter(named & ~with_status), keys, ["__by_click", "__r", "__id"]),
    ]
    # a row naming no rule: linked where exactly one rule of the plan fits its id (+ status)
    for cond, by in (
        (with_status, ["__by_click", "__id", "__s"]),
        (~with_status, ["__by_click", "__id"]),
    ):
        one = keys.filter(pl.col("__r").n_unique().over(by) == 1)
        found = _nearest(rows.filter(~named & cond), one.drop("__r"), by)
        parts.append(found)
    cols = [*rows.columns, "__d"]
    out = pl.concat([f.select(cols) for f in parts]).sort("__i")
    return out.with_columns(pl.col("__d").alias("dispatch_id")).drop(
        "__i", "__r", "__s", "__d", "__id", "__by_click"
    )


def _nearest(rows: pl.DataFrame, keys: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Each row with ``__d``: the dispatch of ``keys`` with the same ``by`` values due most
    recently at or before the row fired, else the next one due (null: none)."""
    if rows.height == 0:
        return rows.with_columns(pl.lit(None, dtype=pl.String).alias("__d"))
    rows = rows.sort("fired_at")
    right = keys.select(*by, "__due", "__d")

    def asof(frame: pl.DataFrame, strategy: str) -> pl.DataFrame:
        return frame.join_asof(
            right,
            left_on="fired_at",
            right_on="__due",
            by=by,
            strategy=strategy,  # type: ignore[arg-type]
            check_sortedness=False,
        )  # both sides are sorted

    back = asof(rows, "backward")
    found = back.filter(pl.col("__d").is_not_null())
    rest = asof(back.filter(pl.col("__d").is_null()).drop("__d", "__due"), "forward")
    return pl.concat([found, rest.select(found.columns)]).drop("__due")


@dataclass(frozen=True)
class Links:
    """The log's imported (and id-less) attempts, linked to the dispatches of a plan."""

    #: the loose log rows, ``dispatch_id`` = the plan dispatch each belongs to (null: none)
    rows: pl.DataFrame
    #: imported rows that belong to none of the plan's dispatches but could: they name one
    #: of its rules (or none) and fired after its first conversion occurred
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
            f"warning: {n:,} imported attempt{'s' if n != 1 else ''} of this plan's rules "
            "match none of its dispatches (by conversion id, else click id, rule and status) "
            "and do not count as delivered; check the ids, rule names and statuses of the "
            "import:"
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
    click = row.get("click_id")
    ids = (
        f"click {click!r}"
        if click is not None and click == row.get("transaction_id")
        else f"transaction {row.get('transaction_id')!r}"
        + (f" (click {click!r})" if click is not None else "")
    )
    return (
        f"{who}, {ids}"
        + (f", status {status!r}" if status else "")
        + f", fired {when}, code {code if code is not None else 'none'}"
    )


def loose_rows(store: _Log) -> pl.DataFrame:
    """The log's rows that need linking (``LOOSE``), with the click id an import named."""
    cols = ", ".join(LOG_COLUMNS)
    query = f"SELECT {cols}, click_id FROM postback_log WHERE {LOOSE} ORDER BY fired_at, attempt"
    try:
        frame = store.sql(query)
    except (duckdb.Error, StoreError):  # a log without the column (a Delta log's view)
        frame = store.sql(query.replace(", click_id", ", NULL::VARCHAR AS click_id", 1))
    types = pl.Schema({**LOG_SCHEMA, "click_id": pl.String()})
    return frame.cast(types)


def unlinked_rows(rows: pl.DataFrame, plan: pl.DataFrame) -> pl.DataFrame:
    """Linked loose ``rows`` that belong to no dispatch of ``plan`` but could: imported
    rows that fired after its first conversion occurred (a postback cannot be delivered
    before that) and name one of its rules, or no rule, or one of its conversion or click
    ids (a misspelt rule name)."""
    if rows.height == 0 or plan.height == 0:
        return rows.clear()
    start = plan["occurred_at"].min() if "occurred_at" in plan.columns else None
    if start is None:
        start = plan["due_at"].min()
    cand = rows.filter(pl.col("dispatch_id").is_null() & (pl.col("source") == "imported"))
    if start is not None:
        cand = cand.filter(pl.col("fired_at") >= start)
    if cand.height == 0:
        return cand
    rules = plan.select(rule_key(pl.col("rule")).unique())["rule"].implode()
    ids = plan.select("transaction_id").join(
        cand.select(pl.col("transaction_id").unique()), on="transaction_id", how="semi"
    )
    ours = rule_key(pl.col("rule")).is_in(rules).fill_null(True) | pl.col("transaction_id").is_in(
        ids["transaction_id"].implode()
    ).fill_null(False)
    if "click_id" in plan.columns and "click_id" in cand.columns:
        clicks = plan.select("click_id").join(
            cand.select(pl.col("click_id").drop_nulls().unique()), on="click_id", how="semi"
        )
        ours |= pl.col("click_id").is_in(clicks["click_id"].implode()).fill_null(False)
    return cand.filter(ours)


def links(store: _Log, plan: pl.DataFrame) -> Links:
    """The log's loose rows (imported, or without a dispatch id) linked to ``plan``."""
    rows = link(plan, loose_rows(store))
    unlinked = unlinked_rows(rows, plan)
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
