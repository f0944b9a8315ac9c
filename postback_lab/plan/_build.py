"""``build_plan``: events x rules -> the dispatch plan, vectorised.

Per rule: the rows that fire it (``_evaluate``: scope per signature, then macro values,
rule 7 and the dedupe on the gathered rows), then its URL rendered from those rows'
macro texts with ``concat_str`` and its dispatch ids, one rule at a time so a caller can
write each rule's rows as they come. Macro texts are rendered only for rows that fire,
once for all rules firing the same rows. Bodies (Jinja2) are the only per-row Python,
and only for POST rules with a body. How one rule's URL, headers and body render is
``_exprs``; this module orchestrates.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

import polars as pl

from .._errors import RuleValidationError, did_you_mean
from .._util import (
    DISPATCH_ID,
    dispatch_ids,  # the one dispatch key, used here and re-exported
    query,
)
from ..events import Events, read_events
from ..rules import (
    Rule,
    RuleSet,
    foreign_hint,
    read_rules,
)
from ._counts import ALWAYS, Counts
from ._evaluate import Evaluator, Selection
from ._exprs import (
    env_entries,
    field_parts,
    headers_expr,
    host_of,
    macros_of,
    render_bodies,
    render_parts,
)
from ._render import macro_text
from ._scope import fires as fires  # kept importable from here
from ._scope import one_of as one_of
from ._scope import scope as scope

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
    # the event's click id: an imported platform log that names only the click links by it
    "click_id": pl.String(),
    # the rule's cancel_on_change (firing rule 7), for the send-time re-check; null in a
    # plan written before it: re-checked
    "cancel_on_change": pl.Boolean(),
}
CONTRACT_COLUMNS = tuple(list(PLAN_SCHEMA)[:12])
#: a rule with this many plan rows or fewer gets its dispatch ids together with the
#: next rules' (one DuckDB query for many small rules instead of one each)
BATCH_IDS = 10_000


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


def _check_filters(frame: pl.DataFrame, rules: Iterable[Rule]) -> None:
    """Macro filters that cannot apply to their column (a time layout on a number) fail
    here, for every enabled rule, whether or not a row fires it."""
    seen: set[str] = set()
    for r in rules:
        if r.enabled:
            for col, m in macros_of(r).items():
                if col not in seen:
                    seen.add(col)
                    macro_text(frame[m.name].head(100), m)


def _rule_frame(rule: Rule, sel: Selection) -> tuple[pl.DataFrame, int]:
    """The plan rows of one rule from the rows that fire it (with dispatch ids), and how
    many were dropped for a body that is not valid JSON."""
    rows = sel.rows
    texts = []
    for col, m in macros_of(rule).items():
        if col not in sel.texts:  # rules firing the same rows render a macro once
            sel.texts[col] = macro_text(rows[m.name], m).alias(col)
        texts.append(sel.texts[col])
    rows = rows.with_columns(texts)
    out = rows.select(
        pl.lit(rule.name).alias("rule"),
        "transaction_id",
        "event_type",
        "status",
        "offer_id",
        "publisher_id",
        pl.lit(rule.method).alias("method"),
        render_parts(field_parts(rule)[0][1]).alias("url"),
        pl.lit(None, dtype=pl.String).alias("body"),
        pl.lit(host_of(rule.url)).alias("host"),
        (pl.col("occurred_at") + pl.lit(rule.delay)).alias("due_at"),
        headers_expr(rule).alias("headers"),
        pl.lit(rule.timeout, dtype=pl.Float64).alias("timeout_s"),
        "occurred_at",
        (
            pl.lit(None, dtype=pl.String) if (entries := env_entries(rule)) is None else entries
        ).alias("env_at"),
        pl.lit(rule.success.to_json() if rule.success else None, dtype=pl.String).alias("success"),
        pl.lit(rule.sign, dtype=pl.String).alias("sign_env"),
        "click_id",
        pl.lit(rule.cancel_on_change, dtype=pl.Boolean).alias("cancel_on_change"),
        *[pl.col(f"__t_{c}") for c in rule.body_columns],
    )
    bad = 0
    if rule.body is not None and out.height:
        body, ok, env_body = render_bodies(rule, out)
        out = out.with_columns(
            body,
            pl.concat_str([pl.col("env_at"), env_body], separator=",", ignore_nulls=True).alias(
                "env_at"
            ),
        ).filter(ok)
        bad = int((~ok).sum())
    out = out.with_columns(
        pl.when(pl.col("env_at").is_not_null())
        .then(pl.concat_str(pl.lit("["), pl.col("env_at"), pl.lit("]")))
        .alias("env_at")
    )
    # a small rule's ids wait for those of the next rules (``_with_ids``): one DuckDB
    # query costs ~2 ms however few its rows
    ids = (
        _dispatch_ids(rule.name, out)
        if out.height > BATCH_IDS
        else pl.lit(None, dtype=pl.String).alias("dispatch_id")
    )
    out = out.select(ids, *list(PLAN_SCHEMA)[1:])
    if out.schema != PLAN_SCHEMA:
        out = out.cast(PLAN_SCHEMA)  # type: ignore[arg-type]
    return out, bad


def _dispatch_ids(rule: str, rows: pl.DataFrame) -> pl.Series:
    """``dispatch_id`` of the rows of one rule (the shared key, DuckDB's md5), the rule's
    name given once rather than as a column of copies."""
    keys = rows.select("transaction_id", "status")
    sql = f"SELECT {DISPATCH_ID} AS dispatch_id FROM (SELECT $1 AS rule, * FROM k)"
    return query(sql, [rule], k=keys)["dispatch_id"]


def _with_ids(chunks: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Small rules' chunks (``BATCH_IDS`` rows or fewer, their ids not yet computed) with
    their dispatch ids, computed for all of them in one query."""
    if not chunks:
        return chunks
    ids = dispatch_ids(pl.concat([c.select("rule", "transaction_id", "status") for c in chunks]))
    out, at = [], 0
    for c in chunks:
        out.append(c.with_columns(ids.slice(at, c.height)))
        at += c.height
    return out


def _ids_in_batches(
    planned: Iterator[tuple[str, dict[str, int], pl.DataFrame | None]], counts: Counts
) -> Iterator[pl.DataFrame]:
    """The rules' chunks in rule order, counted in ``counts``, the small ones given their
    dispatch ids a batch at a time (up to ``BATCH_IDS`` rows) before they are yielded."""
    waiting: list[pl.DataFrame] = []
    rows = 0
    for name, why, out in planned:
        counts.add(name, why)
        if out is None:
            continue
        if out.height <= BATCH_IDS:
            waiting.append(out)
            rows += out.height
            if rows < BATCH_IDS:
                continue
            out = None
        yield from _with_ids(waiting)
        waiting, rows = [], 0
        if out is not None:
            yield out
    yield from _with_ids(waiting)


def plan_chunks(frame: pl.DataFrame, rules: RuleSet, counts: Counts) -> Iterator[pl.DataFrame]:
    """The plan of one frame of events, rule by rule (frames with PLAN_SCHEMA), counting
    in ``counts`` why the other events did not fire. The frame must hold every row of its
    transactions (duplicates and rule 7 look across a transaction's rows)."""
    yield from _ids_in_batches(_planned(frame, rules), counts)


def _planned(
    frame: pl.DataFrame, rules: RuleSet
) -> Iterator[tuple[str, dict[str, int], pl.DataFrame | None]]:
    """Each rule's name, explain counts and rows (None when none fired), in rule order.

    Rules are planned on a pool of threads, one per core up to ``IN_FLIGHT`` (Polars,
    NumPy and DuckDB let go of the GIL), a few rules ahead of the one being yielded; the
    chunks and counts still come in rule order, so the plan is the same whatever the
    number of threads."""
    check_macros(rules, frame.columns)
    _check_filters(frame, rules)
    evaluator = Evaluator(frame, rules)
    workers = threads()
    if workers == 1:
        for i in range(len(evaluator.rules)):
            yield _plan_rule(evaluator, i)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="plan-rule")
    pending: deque[Future[tuple[str, dict[str, int], pl.DataFrame | None]]] = deque()
    todo = iter(range(len(evaluator.rules)))
    try:
        for i in islice(todo, workers + 1):
            pending.append(pool.submit(_plan_rule, evaluator, i))
        while pending:
            done = pending.popleft().result()
            if (following := next(todo, None)) is not None:
                pending.append(pool.submit(_plan_rule, evaluator, following))
            yield done
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


#: rules planned at once, at most: each holds its selected rows while it renders (about
#: 150 MB a rule at 10M events), and each rule's queries use every core anyway (10M x 50
#: with 16 Polars threads peaked 5.3 GB with 16 rules at once, 4.2 GB with 6; on 16
#: cores 6 at once took no longer)
IN_FLIGHT = 6


def threads() -> int:
    """Rules planned at once: Polars' thread pool size (``POLARS_MAX_THREADS``, the number
    of cores by default), at most ``IN_FLIGHT``."""
    return max(1, min(IN_FLIGHT, pl.thread_pool_size()))


def _plan_rule(evaluator: Evaluator, index: int) -> tuple[str, dict[str, int], pl.DataFrame | None]:
    """One rule's name, explain counts and plan rows (None when none fired)."""
    rule = evaluator.rules[index]
    if not rule.enabled:
        return rule.name, {**evaluator.counts(rule), **dict.fromkeys(ALWAYS, 0)}, None
    sel = evaluator.select(index)
    out, bad = _rule_frame(rule, sel) if sel.rows.height else (empty_plan_frame(), 0)
    fired = out.height
    duplicate = sel.passed - fired - bad
    why = {**sel.counts, "duplicate": duplicate, "invalid_body": bad, "fired": fired}
    return rule.name, why, out if fired else None


def plan_bucket(frame: pl.DataFrame, rules: RuleSet) -> tuple[pl.DataFrame, Counts]:
    """Plan one bucket of events (every row of its transactions): the plan frame and the
    explain counts, which add up across buckets (``Counts.merge``)."""
    counts = Counts()
    chunks = list(plan_chunks(frame, rules, counts))
    plan = pl.concat(chunks, how="vertical", rechunk=False) if chunks else empty_plan_frame()
    return plan, counts


def build_frame(events: Events, rules: RuleSet) -> tuple[pl.DataFrame, dict[str, int]]:
    """The plan frame and, per rule, how many rows were dropped for an invalid body."""
    plan, counts = plan_bucket(events.frame, rules)
    return plan, counts.body_errors()


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
