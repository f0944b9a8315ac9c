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
from ..rules import (
    Macro,
    Rule,
    RuleSet,
    Template,
    body_environment,
    body_with_env_markers,
    env_names,
    env_spans,
    foreign_hint,
    read_rules,
)
from ._render import macro_text
from ._supersede import cancels, not_superseded, with_next_change

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
    # where the rule's own {env:NAME} macros stand (JSON [[field, offset, name], ...]), so
    # only they are filled in when sending, never text that came from event data
    "env_at": pl.String(),
    # the rule's success check (JSON, see rules' Success), or null: any 2xx
    "success": pl.String(),
    # the environment variable of the rule's signing secret (Standard Webhooks), or null
    "sign_env": pl.String(),
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
                    hint = foreign_hint("{" + c + "}")
                    problems.append(
                        f"{r.where()}, field {field!r}: unknown macro {{{c}}}"
                        + (f": {hint}" if hint else did_you_mean(c, columns))
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


def _host(t: Template) -> str:
    head = t.parts[0] if t.parts and isinstance(t.parts[0], str) else ""
    m = re.match(r"https?://(?:[^@/?#]*@)?([^/?#]+)", head, re.I)
    return m.group(1).lower() if m else ""


def _column(m: Macro) -> str:
    """The pre-rendered column of a macro: its text after filters, encoded or raw."""
    return ("__e_" if m.kind == "encoded" else "__t_") + m.key


def _as_raw(p: str | Macro) -> str | Macro:
    return Macro("raw", p.name, p.filters) if isinstance(p, Macro) and p.kind == "encoded" else p


def _part(p: str | Macro) -> pl.Expr:
    if isinstance(p, str):
        return pl.lit(p)
    if p.kind == "env":
        return pl.lit(str(p))  # resolved at send time, never stored
    return pl.col(_column(p))


def _parts(rule: Rule) -> list[tuple[str, tuple[str | Macro, ...]]]:
    """Each templated field of a rule as it renders: the URL encoded, headers raw."""
    out = [("url", rule.url.parts)]
    out += [(f"header:{k}", tuple(_as_raw(p) for p in t.parts)) for k, t in rule.headers]
    return out


def _render(parts: tuple[str | Macro, ...]) -> pl.Expr:
    return pl.concat_str([_part(p) for p in parts]) if parts else pl.lit("")


def _length(p: str | Macro) -> pl.Expr:
    if isinstance(p, str):
        return pl.lit(len(p), dtype=pl.UInt32)
    if p.kind == "env":
        return pl.lit(len(str(p)), dtype=pl.UInt32)
    return pl.col(_column(p)).str.len_chars()


def _env_entries(rule: Rule) -> pl.Expr | None:
    """``["url",12,"TOKEN"],…``: where the URL's and headers' own ``{env:NAME}`` macros
    stand in the rendered text (offsets in characters), or None when they have none."""
    entries: list[pl.Expr] = []
    for field, parts in _parts(rule):
        for i, p in enumerate(parts):
            if isinstance(p, Macro) and p.kind == "env":
                offset = pl.sum_horizontal([_length(q) for q in parts[:i]]) if i else pl.lit(0)
                entries.append(
                    pl.format(
                        "[" + json.dumps(field) + ",{}," + json.dumps(p.name) + "]",
                        offset.cast(pl.UInt32),
                    )
                )
    return pl.concat_str(entries, separator=",") if entries else None


def _headers_expr(rule: Rule) -> pl.Expr:
    if not rule.headers:
        return pl.lit(None, dtype=pl.String)
    if all(not t.columns for _, t in rule.headers):
        return pl.lit(json.dumps({k: t.text for k, t in rule.headers}))
    fields = [_render(parts).alias(f[len("header:") :]) for f, parts in _parts(rule)[1:]]
    return pl.struct(fields).struct.json_encode()


def _bodies(rule: Rule, rows: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Render the Jinja2 body per row (values JSON-escaped in a JSON body); returns
    (body, ok, env entries) where ok is False for rows whose body is not valid JSON (they
    are not fired and explain counts them) and the entries say where the body's own
    ``{env:NAME}`` macros stand."""
    assert rule.body is not None
    marked, nonce = body_with_env_markers(rule.body)
    has_env = bool(env_names(rule.body))
    template = body_environment(rule.body).from_string(marked)
    cols = [f"__t_{c}" for c in rule.body_columns]
    is_json = rule.body.lstrip().startswith(("{", "["))
    out, ok, where = [], [], []
    for values in rows.select(cols).iter_rows() if cols else ([()] * rows.height):
        text = template.render(dict(zip(rule.body_columns, values, strict=True)))
        spans: list[tuple[int, str]] = []
        if has_env:
            text, spans = env_spans(text, nonce)
        good = True
        if is_json:
            try:
                json.loads(text)
            except json.JSONDecodeError:
                good = False
        out.append(text)
        ok.append(good)
        where.append(",".join(f'["body",{o},{json.dumps(n)}]' for o, n in spans) or None)
    return (
        pl.Series("body", out, dtype=pl.String),
        pl.Series("ok", ok, dtype=pl.Boolean),
        pl.Series("__env_body", where, dtype=pl.String),
    )


def build_frame(events: Events, rules: RuleSet) -> tuple[pl.DataFrame, dict[str, int]]:
    """The plan frame and, per rule, how many rows were dropped for an invalid body."""
    frame = events.frame
    check_macros(rules, frame.columns)
    frame = with_next_change(frame, rules)
    needed: dict[str, Macro] = {}  # pre-rendered column -> its macro
    for r in rules:
        if not r.enabled:
            continue
        for _, field_parts in _parts(r):
            for p in field_parts:
                if isinstance(p, Macro) and p.kind != "env":
                    needed.setdefault(_column(p), p)
        for c in r.body_columns:
            needed.setdefault(_column(Macro("raw", c)), Macro("raw", c))
    rendered = [macro_text(frame[m.name], m).alias(col) for col, m in needed.items()]
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
            _render(r.url.parts).alias("url"),
            pl.lit(None, dtype=pl.String).alias("body"),
            pl.lit(_host(r.url)).alias("host"),
            (pl.col("occurred_at") + pl.lit(r.delay)).alias("due_at"),
            _headers_expr(r).alias("headers"),
            pl.lit(r.timeout, dtype=pl.Float64).alias("timeout_s"),
            "occurred_at",
            (
                pl.lit(None, dtype=pl.String) if (entries := _env_entries(r)) is None else entries
            ).alias("env_at"),
            pl.lit(r.success.to_json() if r.success else None, dtype=pl.String).alias("success"),
            pl.lit(r.sign, dtype=pl.String).alias("sign_env"),
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
                body, ok, env_body = _bodies(r, got)
                got = got.with_columns(
                    body,
                    pl.concat_str(
                        [pl.col("env_at"), env_body], separator=",", ignore_nulls=True
                    ).alias("env_at"),
                ).filter(ok)
                if (bad := int((~ok).sum())) > 0:
                    body_errors[r.name] = bad
            got = got.with_columns(
                pl.when(pl.col("env_at").is_not_null())
                .then(pl.concat_str(pl.lit("["), pl.col("env_at"), pl.lit("]")))
                .alias("env_at")
            )
            done.append(got.select(list(PLAN_SCHEMA)[1:]))
        if done:
            parts.append(with_dispatch_ids(pl.concat(done, how="vertical", rechunk=False)))
    if not parts:
        return empty_plan_frame(), body_errors
    return pl.concat(parts, how="vertical", rechunk=False), body_errors


def with_dispatch_ids(plan: pl.DataFrame) -> pl.DataFrame:
    """Add ``dispatch_id`` and order and type the columns as PLAN_SCHEMA (a frame built by
    hand without ``env_at`` gets it from its text)."""
    if "env_at" not in plan.columns:
        plan = plan.with_columns(env_at_of_text(plan))
    plan = plan.with_columns(
        pl.lit(None, dtype=dt).alias(c) for c, dt in PLAN_SCHEMA.items() if c not in plan.columns
    )
    plan = plan.select(dispatch_ids(plan), *list(PLAN_SCHEMA)[1:])
    if plan.schema != PLAN_SCHEMA:
        plan = plan.cast(PLAN_SCHEMA)  # type: ignore[arg-type]
    return plan


def empty_plan_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=PLAN_SCHEMA)


def mentions_env(frame: pl.DataFrame) -> bool:
    cols = [c for c in ("url", "headers", "body") if c in frame.columns]
    return bool(
        frame.select(pl.any_horizontal(pl.col(c).str.contains("{env:", literal=True) for c in cols))
        .to_series()
        .any()
    )


def env_at_of_text(frame: pl.DataFrame) -> pl.Series:
    """For a plan frame written by hand: every ``{env:NAME}`` in its text is a secret."""
    pattern = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
    out: list[str | None] = []
    cols = [c if c in frame.columns else None for c in ("url", "headers", "body")]
    for url, headers, body in frame.select(
        [pl.col(c) if c else pl.lit(None, dtype=pl.String) for c in cols]
    ).iter_rows():
        entries = [["url", m.start(), m.group(1)] for m in pattern.finditer(url or "")]
        for key, value in json.loads(headers or "{}").items():
            entries += [[f"header:{key}", m.start(), m.group(1)] for m in pattern.finditer(value)]
        entries += [["body", m.start(), m.group(1)] for m in pattern.finditer(body or "")]
        out.append(json.dumps(entries) if entries else None)
    return pl.Series("env_at", out, dtype=pl.String)
