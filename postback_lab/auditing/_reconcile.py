"""reconcile: plan - delivered = missed. Every dispatch gets a state from the log.

``delivered`` (a 2xx attempt), ``failed`` (attempted, never 2xx), ``missed`` (never
attempted); log rows matching no dispatch are ``unexpected``; dispatches delivered more
than once are ``duplicates``. Imported rows (a platform's own log) are linked to dispatches
by the store's one linking rule (``LogStore.links``: rule + conversion id, else click id
through the plan's click ids, + status when given), the same that ``send`` uses to skip
what was delivered; imported rows that could be the plan's deliveries but link to no
dispatch are ``unexpected``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import polars as pl

from .._util import DISPATCH_KEY, When, parse_when, render
from ..plan import Plan, PlanSource, read_plan
from ..store import (
    DIRECT,
    LOG_COLUMNS,
    LOG_SCHEMA,
    NOT_ATTEMPTS,
    LogReader,
    LogSource,
    open_log,
    rule_key,
)

STATES = ("delivered", "failed", "missed")


@dataclass(frozen=True)
class Reconciliation:
    """Per-dispatch states, unexpected log rows and duplicate deliveries."""

    dispatches: pl.DataFrame
    unexpected: pl.DataFrame
    duplicates: pl.DataFrame
    #: the log's imported (and id-less) rows linked to the plan (``dispatch_id`` null: none)
    linked: pl.DataFrame | None = None

    def to_polars(self) -> pl.DataFrame:
        """One row per dispatch of the plan with its state and attempt figures."""
        return self.dispatches

    def ids(self, *states: str) -> pl.Series:
        """Dispatch ids in the given states (e.g. ``ids("missed", "failed")``)."""
        return self.dispatches.filter(pl.col("state").is_in(states))["dispatch_id"]

    def counts(self, by: str | list[str] = "rule") -> pl.DataFrame:
        """Dispatches per state, per ``by`` (rule, publisher_id, offer_id, host …)."""
        keys = [by] if isinstance(by, str) else list(by)
        out = self.dispatches.group_by(keys).agg(
            pl.len().alias("dispatches"),
            *[(pl.col("state") == s).sum().alias(s) for s in STATES],
            (pl.col("delivered_attempts") > 1).sum().alias("duplicate"),
        )
        return out.sort(keys)

    @property
    def totals(self) -> dict[str, int]:
        """Dispatches per state, unexpected log rows and duplicate deliveries."""
        c = dict(self.dispatches.group_by("state").len().iter_rows())
        return {
            **{s: int(c.get(s, 0)) for s in STATES},
            "unexpected": self.unexpected.height,
            "duplicate": self.duplicates.height,
        }

    def summary(self) -> str:
        """One line: dispatches per state, unexpected rows, duplicates."""
        t = self.totals
        return (
            f"{self.dispatches.height:,} dispatches: {t['delivered']:,} delivered, "
            f"{t['failed']:,} failed, {t['missed']:,} missed; {t['unexpected']:,} "
            f"unexpected log rows, {t['duplicate']:,} delivered more than once"
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        for r in self.counts().iter_rows(named=True):
            lines.append(
                f"  {r['rule']}: {r['delivered']:,} delivered, {r['failed']:,} "
                f"failed, {r['missed']:,} missed"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        tables = [
            ("Per rule", self.counts("rule")),
            ("Per publisher", self.counts("publisher_id")),
            (
                "Not delivered (first rows)",
                self.dispatches.filter(pl.col("state") != "delivered").select(
                    "dispatch_id",
                    "rule",
                    "transaction_id",
                    "status",
                    "state",
                    "attempts",
                    "last_status_code",
                    "last_error",
                ),
            ),
        ]
        if self.unexpected.height:
            tables.append(
                (
                    "Unexpected log rows",
                    self.unexpected.select(
                        "rule", "transaction_id", "fired_at", "status_code", "source"
                    ),
                )
            )
        return render("Reconciliation", self.summary(), tables)


def reconcile(
    plan: PlanSource,
    log: LogSource = None,
    *,
    since: When = None,
    until: When = None,
    whole: PlanSource | None = None,
) -> Reconciliation:
    """Compare a plan with the attempt log: what was delivered, failed, missed.

    ``since``/``until``: the window the plan was cut to (``backfill`` and the CLI's
    ``--since/--until``), half-open as ``plan --until`` cuts it: ``[since, until)``; log
    rows of other transactions outside it are not counted as unexpected. Without them,
    the window is the plan's first to last due time.

    ``whole``: the plan that ``plan`` was cut from (a window or a scope of it). Imported
    rows then link against all of it, as they do when the whole plan is reconciled: a
    delivery of a dispatch outside the cut never counts for one inside it."""
    p = plan if isinstance(plan, Plan) else read_plan(plan)
    full = None if whole is None else whole if isinstance(whole, Plan) else read_plan(whole)
    lo, hi = parse_when(since, name="since"), parse_when(until, name="until")
    store, owned = open_log(log, "read")
    try:
        return reconcile_store(
            p.frame, store, since=lo, until=hi, whole=None if full is None else full.frame
        )
    finally:
        if owned:
            store.close()


#: a dispatch's last status code, the partner's last real answer: that of its latest
#: attempt by firing time, then attempt number (attempts numbered across runs can be out
#: of firing order), leaving out rows with no answer of the partner in them (``paused``:
#: nothing was sent; dry runs and test fires are no attempts and never get here). A
#: timeout after a 503 is the last answer (null). ``backfill --status-code`` matches
#: this very column.
LAST_STATUS_CODE = (
    "arg_max_null(status_code, (fired_at, attempt)) FILTER (WHERE outcome IS DISTINCT FROM "
    "'paused')"
)
_PER_DISPATCH = f"""
    count(*) AS attempts,
    count(*) FILTER (WHERE outcome = 'delivered') AS delivered_attempts,
    {LAST_STATUS_CODE} AS last_status_code,
    arg_max_null(error, (fired_at, attempt)) AS last_error,
    max(fired_at) AS last_fired_at"""


def _per_dispatch_sql(fast: bool) -> str:
    """Per-dispatch figures for every plan row (``ids``, in plan order) and for log
    dispatches outside the plan (``__i`` null), over logged rows plus ``linked`` rows.

    ``fast``: a dispatch with no attempt other than 1 has exactly one row, which is its
    figures as they are; only dispatches with retries (~10% of a log) are grouped. That
    holds for logs written by the sender and the importer (attempts numbered per dispatch
    from 1); the caller checks it and falls back to grouping every dispatch."""
    # rows linked from imports keep their own numbering: their dispatches are grouped
    rows = f"""
        SELECT dispatch_id, {DISPATCH_KEY} AS dispatch_key, attempt, outcome,
            status_code, error, fired_at, TRUE AS __linked FROM linked
        UNION ALL
        SELECT dispatch_id, dispatch_key, attempt, outcome, status_code, error, fired_at,
            FALSE FROM postback_log WHERE {NOT_ATTEMPTS} AND {DIRECT}"""
    if fast:
        per = f"""
        rep AS (SELECT DISTINCT dispatch_key FROM base
            WHERE attempt IS DISTINCT FROM 1 OR __linked),
        per AS (
            SELECT dispatch_id, 1::BIGINT AS attempts,
                (outcome = 'delivered')::BIGINT AS delivered_attempts,
                CASE WHEN outcome IS DISTINCT FROM 'paused' THEN status_code END
                    AS last_status_code, error AS last_error,
                fired_at AS last_fired_at
            FROM base ANTI JOIN rep USING (dispatch_key)
            UNION ALL
            SELECT any_value(dispatch_id), {_PER_DISPATCH}
            FROM base SEMI JOIN rep USING (dispatch_key) GROUP BY dispatch_key)"""
    else:
        per = f"per AS (SELECT dispatch_id, {_PER_DISPATCH} FROM base GROUP BY dispatch_id)"
    return f"""
        WITH base AS ({rows}), {per}
        SELECT ids.__i, per.* FROM per FULL JOIN ids ON per.dispatch_id = ids.dispatch_id
        ORDER BY ids.__i NULLS LAST"""


def reconcile_store(
    plan: pl.DataFrame,
    store: LogReader,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    whole: pl.DataFrame | None = None,
) -> Reconciliation:
    """``reconcile`` with the per-dispatch figures computed and matched to the plan by
    DuckDB: Polars receives one row per plan row (in plan order) plus the log's strays.

    ``whole``: the plan ``plan`` was cut from; imported rows link against it (linking
    picks among the dispatches it is given: cut to a window, an import of a dispatch
    outside it would fall onto one inside, and a row fitting two rules would fit the one
    left). Rows linked outside ``plan`` count as its strays do."""
    links = store.links(plan if whole is None else whole)
    loose = links.rows
    linked = loose.filter(pl.col("dispatch_id").is_not_null()).select(
        "dispatch_id",
        "rule",
        "transaction_id",
        "status",
        "attempt",
        "outcome",
        "status_code",
        "error",
        "fired_at",
    )
    ids = plan.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("__i"), "dispatch_id")
    joined = store.sql(_per_dispatch_sql(fast=True), ids=ids, linked=linked)
    if joined["__i"].null_count() + plan.height != joined.height:
        # a dispatch logged twice as attempt 1 (rows another tool wrote): group them all
        joined = store.sql(_per_dispatch_sql(fast=False), ids=ids, linked=linked)
    matched = joined.head(plan.height).drop("__i", "dispatch_id")
    strays = joined.slice(plan.height).select("dispatch_id")
    unexpected = store.sql(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM postback_log SEMI JOIN s USING (dispatch_id) "
        f"WHERE {NOT_ATTEMPTS} AND {DIRECT}",
        s=strays,
    ).cast(LOG_SCHEMA)  # type: ignore[arg-type]
    # imported rows linking to no dispatch that could be the plan's deliveries: unexpected
    stray = links.unlinked.select(unexpected.columns).cast(unexpected.schema)
    unexpected = pl.concat([unexpected, stray]).sort("fired_at")
    return replace(_assemble(plan, matched, unexpected, since, until), linked=loose)


def _aligned(frame: pl.DataFrame, like: pl.Series) -> pl.DataFrame:
    """``frame`` cut into chunks as long as those of ``like``: a column stacked beside the
    plan with other chunk bounds makes Polars copy the whole plan on the next filter
    (3 s of 5 on a 10M-row plan)."""
    frame, parts, start = frame.rechunk(), [], 0
    for n in like.chunk_lengths():
        parts.append(frame.slice(start, n))
        start += n
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else frame


def _assemble(
    plan: pl.DataFrame,
    matched: pl.DataFrame,
    unexpected: pl.DataFrame,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Reconciliation:
    """Each plan row with its per-dispatch figures (``matched``, in plan order) and state."""
    figures = matched.with_columns(
        pl.col("attempts").fill_null(0).cast(pl.Int64),
        pl.col("delivered_attempts").fill_null(0).cast(pl.Int64),
    ).with_columns(
        pl.when(pl.col("delivered_attempts") > 0)
        .then(pl.lit("delivered"))
        .when(pl.col("attempts") > 0)
        .then(pl.lit("failed"))
        .otherwise(pl.lit("missed"))
        .alias("state")
    )
    dispatches = plan.hstack(_aligned(figures, plan.get_column("dispatch_id")))
    start: datetime | None = plan["due_at"].min()  # type: ignore[assignment]
    end: datetime | None = plan["due_at"].max()  # type: ignore[assignment]
    rules = plan.select(rule_key(pl.col("rule")).unique())["rule"]
    if start is not None and end is not None:
        # log rows of other transactions, of other rules or outside the plan's window (a
        # plan filtered to one week), are not strays: a logged postback due outside
        # [first due, last due] of the plan, or (with ``until``) due at or after
        # ``until`` and after the plan's last due (the window is half-open, as ``plan
        # --until`` cuts it), an imported one (no due time) fired before the first or
        # (with ``until``) at or after ``until``. Rows of the plan's own transactions
        # that match none of its dispatches always are.
        lo = start if since is None else min(start, since)
        ours = pl.col("transaction_id").is_in(plan["transaction_id"].unique().implode())
        due, fired = pl.col("due_at"), pl.col("fired_at")
        due_inside = due.is_between(lo, end, closed="both")
        if until is not None:
            due_inside = due_inside | due.is_between(lo, until, closed="left")
        inside = (
            pl.when(due.is_not_null())
            .then(due_inside)
            .otherwise((fired >= lo) & (pl.lit(True) if until is None else fired < until))
        )
        ours_rule = rule_key(pl.col("rule")).is_in(rules.implode()).fill_null(True)
        unexpected = unexpected.filter(
            ours.fill_null(False) | (ours_rule & inside.fill_null(False))
        )
    duplicates = dispatches.filter(pl.col("delivered_attempts") > 1)
    return Reconciliation(dispatches, unexpected, duplicates)
