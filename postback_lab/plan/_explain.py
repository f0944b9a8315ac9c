"""Why did (or didn't) a postback fire? Per-rule exclusion counts and per-transaction verdicts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jinja2
import polars as pl

from .._util import first_of, format_duration, render
from ..events import Events
from ..rules import BODY_ENV, Rule, RuleSet
from ._render import as_text
from ._rows import next_change
from ._scope import scope
from ._supersede import NEXT_CHANGE, with_next_change

#: reason codes in the order they are checked, as shown to users
REASONS = {
    "disabled": "rule disabled",
    "type": "wrong event type",
    "offer": "offer out of scope",
    "publisher": "publisher out of scope",
    "status": "status",
    "rejection_reason": "rejection reason",
    "goal": "goal",
    "missing": "missing macro value",
    "superseded": "superseded within the delay",
    "duplicate": "duplicate",
    "invalid_body": "invalid body",
    "fired": "fired",
}


def _code(name: str) -> str:
    return "missing" if name.startswith("missing ") else name


def _reason_expr(conds: list[tuple[str, pl.Expr]], detailed: bool) -> pl.Expr:
    """The name of the first condition a row fails (its code unless ``detailed``), null
    for a row that passes them all."""
    cases = [(~cond, pl.lit(name if detailed else _code(name))) for name, cond in conds]
    return first_of(cases, pl.lit(None, dtype=pl.String))


@dataclass(frozen=True)
class Explanation:
    """Per rule, how many events each reason excluded; ``fired`` is the plan's row count."""

    frame: pl.DataFrame  # long: rule, reason, events

    def to_polars(self, *, labels: bool = False) -> pl.DataFrame:
        """Wide: one row per rule, one column per reason code (``type``, ``offer``, …,
        ``fired``). With ``labels=True``, the table as shown: ``rule``, ``fired``, then one
        column per reason headed by what it counts (``excluded: wrong event type``, …)."""
        cols = list(REASONS)
        wide = self.frame.pivot(
            on="reason", index="rule", values="events", aggregate_function="sum"
        )
        for c in cols:
            if c not in wide.columns:
                wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(c))
        order = pl.DataFrame({"rule": self.frame["rule"].unique(maintain_order=True)})
        wide = order.join(wide, on="rule", how="left").select("rule", *cols).fill_null(0)
        if not labels:
            return wide
        return wide.select(
            "rule",
            "fired",
            *[pl.col(c).alias(f"excluded: {REASONS[c]}") for c in cols if c != "fired"],
        )

    def __str__(self) -> str:
        wide = self.to_polars()
        lines = []
        for row in wide.iter_rows(named=True):
            excluded = ", ".join(
                f"{REASONS[k]} {row[k]:,}" for k in REASONS if k != "fired" and row[k]
            )
            lines.append(f"{row['rule']}: fired {row['fired']:,}; excluded: {excluded or 'none'}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return render(
            "Why events did or did not fire, per rule",
            f"{self.frame['rule'].n_unique()} rules",
            [("Postbacks fired and events excluded, per rule", self.to_polars(labels=True))],
        )


@dataclass(frozen=True)
class TransactionExplanation:
    """Every rule's verdict for the rows of one transaction."""

    transaction_id: str
    frame: pl.DataFrame  # rule, status, occurred_at, verdict, dispatch_id
    #: quarantined input rows that mention the id (line, reason), when no row was readable
    quarantined: pl.DataFrame | None = None

    def to_polars(self) -> pl.DataFrame:
        return self.frame

    def __str__(self) -> str:
        if self.frame.height == 0:
            q = self.quarantined
            if q is None or q.height == 0:
                return f"transaction {self.transaction_id!r}: no events with this id"
            why = "; ".join(f"line {line}: {reason}" for line, reason in q.head(5).iter_rows())
            return (
                f"transaction {self.transaction_id!r}: no readable events; quarantined "
                f"when read ({why}; see events.quarantine)"
            )
        lines = [f"transaction {self.transaction_id!r}:"]
        for r in self.frame.iter_rows(named=True):
            lines.append(
                f"  {r['rule']} [{r['status']} at {r['occurred_at']:%Y-%m-%d %H:%M:%S}]: "
                f"{r['verdict']}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return render(
            f"Verdicts for transaction {self.transaction_id}",
            f"{self.frame.height} verdicts",
            [("Verdicts", self.frame)],
        )


def explain_rules(
    events: Events, rules: RuleSet, plan: pl.DataFrame, body_errors: dict[str, int]
) -> Explanation:
    """Per rule, how many events each reason excluded (rows that pass every condition but
    are not in the plan are duplicates, or had a body that is not valid JSON)."""
    frame = with_next_change(events.frame, rules)
    rows = []
    for r in rules:
        reasons = frame.select(_reason_expr(scope(r), detailed=False).alias("reason"))
        counts = dict(reasons.group_by("reason").len().iter_rows())
        passed = counts.pop(None, 0)
        fired = int(plan.filter(pl.col("rule") == r.name).height)
        bad_body = body_errors.get(r.name, 0)
        counts["duplicate"] = passed - fired - bad_body
        counts["invalid_body"] = bad_body
        counts["fired"] = fired
        rows += [{"rule": r.name, "reason": k, "events": int(v)} for k, v in counts.items()]
    schema: dict[str, pl.DataType] = {
        "rule": pl.String(),
        "reason": pl.String(),
        "events": pl.Int64(),
    }
    return Explanation(pl.DataFrame(rows, schema=schema))


_VERDICT_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "status": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
    "verdict": pl.String(),
    "dispatch_id": pl.String(),
}


def _quarantined(events: Events, transaction_id: str) -> pl.DataFrame | None:
    """Quarantined rows whose raw text holds ``transaction_id`` as a whole field."""
    q = events.quarantine
    if q is None or q.height == 0 or "raw" not in q.columns or not transaction_id:
        return None
    pattern = r"(^|[^\w-])" + re.escape(transaction_id) + r"($|[^\w-])"
    return q.filter(pl.col("raw").cast(pl.String).str.contains(pattern)).select("line", "reason")


def explain_transaction(
    events: Events, rules: RuleSet, plan: pl.DataFrame, transaction_id: str
) -> TransactionExplanation:
    """Every rule's verdict for each row of one transaction, with the reason."""
    rows = events.frame.filter(pl.col("transaction_id") == str(transaction_id))
    if rows.height == 0:
        return TransactionExplanation(
            str(transaction_id),
            pl.DataFrame(schema=_VERDICT_SCHEMA),
            _quarantined(events, str(transaction_id)),
        )
    rows = rows.sort("occurred_at", maintain_order=True)
    change_at, change_to = next_change(rows)
    rows = rows.with_columns(change_at, change_to.alias("__next_status"))
    out = []
    for r in rules:
        bodies = _bodies(r, rows)
        detail = rows.select(
            pl.lit(r.name).alias("rule"),
            "status",
            "occurred_at",
            _reason_expr(scope(r), detailed=True).alias("why"),
            *[
                pl.col(c).cast(pl.String).alias(f"__{c}")
                for c in ("event_type", "offer_id", "publisher_id", "rejection_reason", "goal")
            ],
            pl.col(NEXT_CHANGE).alias("__next_change"),
            "__next_status",
        )
        fired = plan.filter(
            pl.col("rule") == r.name, pl.col("transaction_id") == str(transaction_id)
        )
        fired_at = {
            (s, t): d
            for s, t, d in fired.select("status", "occurred_at", "dispatch_id").iter_rows()
        }
        firsts: set[str] = set()  # statuses whose earliest passing row was seen
        for row, body in zip(detail.iter_rows(named=True), bodies, strict=True):
            dispatch = fired_at.get((row["status"], row["occurred_at"]))
            later = row["why"] is None and row["status"] in firsts
            if row["why"] is None:
                firsts.add(row["status"])
            verdict = _verdict(r, row, dispatch, None if later else body)
            out.append(
                {
                    "rule": r.name,
                    "status": row["status"],
                    "occurred_at": row["occurred_at"],
                    "verdict": verdict,
                    "dispatch_id": dispatch,
                }
            )
    return TransactionExplanation(str(transaction_id), pl.DataFrame(out, schema=_VERDICT_SCHEMA))


def _bodies(rule: Rule, rows: pl.DataFrame) -> list[str | None]:
    """Per row, why the rule's body cannot be sent (not valid JSON once rendered, as the
    plan checks it), or None."""
    if rule.body is None or not rule.body.lstrip().startswith(("{", "[")):
        return [None] * rows.height
    template = BODY_ENV.from_string(rule.body)
    texts = rows.select(
        *[as_text(rows[c]).alias(c) for c in rule.body_columns if c in rows.columns]
    )
    out: list[str | None] = []
    for values in texts.iter_rows(named=True) if texts.width else [{}] * rows.height:
        try:
            json.loads(template.render(values))
        except json.JSONDecodeError as exc:
            out.append(f"{exc.msg} at character {exc.pos + 1}")
        except jinja2.TemplateError as exc:
            out.append(str(exc))
        else:
            out.append(None)
    return out


def _verdict(rule: Rule, row: dict[str, Any], dispatch: str | None, body: str | None) -> str:
    """One row's verdict for one rule, in words."""
    why = row["why"]
    if why is None:
        if dispatch:
            return f"fires (dispatch {dispatch})"
        if body is not None:
            return f"not fired: invalid body, the rendered body is not valid JSON ({body})"
        return "duplicate: an earlier row with this status already fires this rule"
    if why == "disabled":
        return "not fired: the rule is disabled"
    if why == "type":
        return f"not fired: event type is {row['__event_type']!r}, the rule wants {rule.type!r}"
    if why == "offer":
        return f"not fired: offer {row['__offer_id']!r} is not in {list(rule.offers or ())}"
    if why == "publisher":
        return (
            f"not fired: publisher {row['__publisher_id']!r} is not in "
            f"{list(rule.publishers or ())}"
        )
    if why == "status":
        return f"not fired: status is {row['status']!r}, the rule fires on {rule.fire_on!r}"
    if why == "rejection_reason":
        return (
            f"not fired: rejection reason {row['__rejection_reason']!r} is not in "
            f"{list(rule.rejection_reasons or ())}"
        )
    if why == "goal":
        return f"not fired: goal {row['__goal']!r} is not in {list(rule.goals or ())}"
    if why == "superseded":
        due = row["occurred_at"] + rule.delay
        return (
            f"not fired: superseded within the delay: the transaction reached "
            f"{row['__next_status']!r} at {row['__next_change']:%Y-%m-%d %H:%M:%S}, before "
            f"the postback was due at {due:%Y-%m-%d %H:%M:%S} ({format_duration(rule.delay)} "
            "delay; cancel_on_change: false fires it anyway)"
        )
    return f"not fired: {why} has no value in this row"
