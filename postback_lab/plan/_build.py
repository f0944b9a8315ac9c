"""``build_plan``: events x rules -> the dispatch plan, vectorised.

Per rule: filter the (time-sorted) events by the firing conditions, keep the earliest row
per (transaction_id, status), render the URL from pre-rendered macro columns with
``concat_str``. Macro columns are rendered and encoded once for all rules. Bodies (Jinja2)
are the only per-row Python, and only for POST rules with a body.
"""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl

from .._errors import RuleValidationError, did_you_mean
from .._util import dispatch_ids  # the one dispatch key, used here and re-exported
from ..events import Events, read_events
from ..rules import BODY_ENV, Macro, Rule, RuleSet, Template, read_rules
from ._render import as_text, url_encode

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "dispatch_id": pl.String(),
    "rule": pl.String(),
    "transaction_id": pl.String(),
    "event_type": pl.String(),
    "status": pl.String(),
    "offer_id": pl.String(),
    "publisher_id": pl.String(),
    "method": pl.String(),
    "url": pl.String(),
    "body": pl.String(),
    "host": pl.String(),
    "due_at": pl.Datetime("us", "UTC"),
    # beyond the contract: what the sender needs without the rules file
    "headers": pl.String(),
    "timeout_s": pl.Float64(),
    "occurred_at": pl.Datetime("us", "UTC"),
}
CONTRACT_COLUMNS = tuple(list(PLAN_SCHEMA)[:12])
CHUNK = 8  # rules evaluated together


def as_events(events: Any) -> Events:
    """Events from anything ``read_events`` takes; an Events value passes through."""
    if isinstance(events, Events):
        return events
    return read_events(events)


def as_rules(rules: Any) -> RuleSet:
    return rules if isinstance(rules, RuleSet) else read_rules(rules)


def check_macros(rules: RuleSet, columns: list[str]) -> None:
    """Every macro of every rule names a column of the events, or a RuleValidationError."""
    problems = []
    for r in rules:
        fields = [("url", r.url.columns)]
        fields += [(f"headers.{k}", t.columns) for k, t in r.headers]
        fields.append(("body", r.body_columns))
        for field, cols in fields:
            for c in cols:
                if c not in columns:
                    problems.append(
                        f"{r.where()}, field {field!r}: unknown macro {{{c}}}"
                        f"{did_you_mean(c, columns)}"
                    )
    if problems:
        raise RuleValidationError(problems)


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
        ok = pl.col("rejection_reason").is_in(rule.rejection_reasons).fill_null(False)
        conds.append(("rejection_reason", (pl.col("status") != "rejected") | ok))
    if rule.goals is not None:
        conds.append(("goal", pl.col("goal").is_in(rule.goals).fill_null(False)))
    for c in rule.columns:
        conds.append((f"missing {{{c}}}", pl.col(c).is_not_null()))
    return conds


def fires(rule: Rule) -> pl.Expr:
    """One boolean expression: the row passes every firing condition of ``rule``."""
    return pl.all_horizontal([e for _, e in scope(rule)])


def _host(t: Template) -> str:
    head = t.parts[0] if t.parts and isinstance(t.parts[0], str) else ""
    m = re.match(r"https?://(?:[^@/?#]*@)?([^/?#]+)", head, re.I)
    return m.group(1).lower() if m else ""


def _part(p: str | Macro) -> pl.Expr:
    if isinstance(p, str):
        return pl.lit(p)
    if p.kind == "env":
        return pl.lit(str(p))  # resolved at send time, never stored
    return pl.col(("__e_" if p.kind == "encoded" else "__t_") + p.name)


def _render(t: Template, *, encode: bool) -> pl.Expr:
    parts = [
        _part(
            Macro("raw", p.name)
            if isinstance(p, Macro) and not encode and p.kind == "encoded"
            else p
        )
        for p in t.parts
    ]
    return pl.concat_str(parts) if parts else pl.lit("")


def _headers_expr(rule: Rule) -> pl.Expr:
    if not rule.headers:
        return pl.lit(None, dtype=pl.String)
    if all(not t.columns for _, t in rule.headers):
        return pl.lit(json.dumps({k: t.text for k, t in rule.headers}))
    fields = [_render(t, encode=False).alias(k) for k, t in rule.headers]
    return pl.struct(fields).struct.json_encode()


def _bodies(rule: Rule, rows: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Render the Jinja2 body per row; returns (body, ok) where ok is False for rows whose
    body is not valid JSON (they are not fired and explain counts them)."""
    assert rule.body is not None
    template = BODY_ENV.from_string(rule.body)
    cols = [f"__t_{c}" for c in rule.body_columns]
    is_json = rule.body.lstrip().startswith(("{", "["))
    out, ok = [], []
    for values in rows.select(cols).iter_rows() if cols else ([()] * rows.height):
        text = template.render(dict(zip(rule.body_columns, values, strict=True)))
        good = True
        if is_json:
            try:
                json.loads(text)
            except json.JSONDecodeError:
                good = False
        out.append(text)
        ok.append(good)
    return pl.Series("body", out, dtype=pl.String), pl.Series("ok", ok, dtype=pl.Boolean)


def build_frame(events: Events, rules: RuleSet) -> tuple[pl.DataFrame, dict[str, int]]:
    """The plan frame and, per rule, how many rows were dropped for an invalid body."""
    frame = events.frame
    check_macros(rules, frame.columns)
    needed: dict[str, bool] = {}  # column -> needs an encoded form
    for r in rules:
        if not r.enabled:
            continue
        for p in r.url.parts:
            if isinstance(p, Macro) and p.kind != "env":
                needed[p.name] = needed.get(p.name, False) or p.kind == "encoded"
        for c in (*[c for _, t in r.headers for c in t.columns], *r.body_columns):
            needed.setdefault(c, False)
    rendered = []
    for col, enc in needed.items():
        text = as_text(frame[col])
        rendered.append(text.alias(f"__t_{col}"))
        if enc:
            rendered.append(url_encode(text).alias(f"__e_{col}"))
    keys = ["transaction_id", "status"]
    # only (transaction_id, status) groups with several rows need a dedupe per rule
    base = frame.with_columns(*rendered, (pl.len().over(keys) > 1).alias("__dup")).lazy()

    enabled = [r for r in rules if r.enabled]
    queries = []
    for r in enabled:
        matched = base.filter(fires(r))
        rows = pl.concat(
            [
                matched.filter(~pl.col("__dup")),
                matched.filter(pl.col("__dup"))
                .sort("occurred_at", maintain_order=True)
                .unique(keys, keep="first", maintain_order=True),
            ]
        )
        out = rows.select(
            pl.lit(r.name).alias("rule"),
            "transaction_id",
            "event_type",
            "status",
            "offer_id",
            "publisher_id",
            pl.lit(r.method).alias("method"),
            _render(r.url, encode=True).alias("url"),
            pl.lit(None, dtype=pl.String).alias("body"),
            pl.lit(_host(r.url)).alias("host"),
            (pl.col("occurred_at") + pl.lit(r.delay)).alias("due_at"),
            _headers_expr(r).alias("headers"),
            pl.lit(r.timeout, dtype=pl.Float64).alias("timeout_s"),
            "occurred_at",
            *[pl.col(f"__t_{c}") for c in r.body_columns],
        )
        queries.append(out)
    parts: list[pl.DataFrame] = []
    body_errors: dict[str, int] = {}
    # rules are evaluated CHUNK at a time (in parallel within a chunk) and each chunk gets
    # its ids at once, so the transient memory is one chunk's, not the whole plan's
    for start in range(0, len(queries), CHUNK):
        chunk_rules = enabled[start : start + CHUNK]
        done = []
        for r, got in zip(chunk_rules, pl.collect_all(queries[start : start + CHUNK]), strict=True):
            if got.height == 0:
                continue
            if r.body is not None:
                body, ok = _bodies(r, got)
                got = got.with_columns(body).filter(ok)
                if (bad := int((~ok).sum())) > 0:
                    body_errors[r.name] = bad
            done.append(got.select(list(PLAN_SCHEMA)[1:]))
        if done:
            parts.append(with_dispatch_ids(pl.concat(done, how="vertical", rechunk=False)))
    if not parts:
        return empty_plan_frame(), body_errors
    return pl.concat(parts, how="vertical", rechunk=False), body_errors


def with_dispatch_ids(plan: pl.DataFrame) -> pl.DataFrame:
    """Add ``dispatch_id`` and order and type the columns as PLAN_SCHEMA."""
    plan = plan.select(dispatch_ids(plan), *list(PLAN_SCHEMA)[1:])
    if plan.schema != PLAN_SCHEMA:
        plan = plan.cast(PLAN_SCHEMA)  # type: ignore[arg-type]
    return plan


def empty_plan_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=PLAN_SCHEMA)
