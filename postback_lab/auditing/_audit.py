"""audit: delivery failure rates per group (rule, publisher, offer, status code, day …),
computed by DuckDB over the log, with Wilson 95% intervals."""

from __future__ import annotations

from typing import Any

import polars as pl

from .._util import When, as_utc, parse_when
from ..store import LogSource, note_pending, open_for_reading, pruned_before
from ._dispatches import remap
from ._report import METRICS, AuditReport, Selection
from ._sql import bucket_seconds, group_columns, main_sql


def wilson(successes: pl.Expr, n: pl.Expr, z: float = 1.96) -> tuple[pl.Expr, pl.Expr]:
    """Wilson score interval of a proportion (lower, upper)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).sqrt()) / denom
    return (centre - half).clip(0, 1), (centre + half).clip(0, 1)


def audit(
    log: LogSource = None,
    by: str | list[str] | tuple[str, ...] = ("rule",),
    *,
    since: When = None,
    until: When = None,
    every: str = "1d",
    where: str | None = None,
    timezone: str = "UTC",
) -> AuditReport:
    """Delivery and failure rates per group from the log (dry runs excluded).

    ``by``: log columns (rule, publisher_id, offer_id, host, status_code, outcome …) or
    ``day``/``hour``/``week``; ``since``/``until`` bound ``fired_at``; ``every`` is the
    bucket of the timeline used by ``chart()``; ``where`` adds a SQL condition;
    ``timezone``: the zone whose days, hours and weeks ``by`` groups into (and the
    tables and charts show), e.g. ``America/New_York``.
    """
    keys = [b.strip() for b in (by.split(",") if isinstance(by, str) else by) if b.strip()]
    select = group_columns(keys, timezone)
    conds = ["outcome NOT IN ('dry_run', 'test')"]
    params: list[Any] = []
    if (lo := parse_when(since, name="since")) is not None:
        conds.append("fired_at >= ?")
        params.append(lo)
    if (hi := parse_when(until, name="until")) is not None:
        conds.append("fired_at < ?")
        params.append(hi)
    if where:
        conds.append(f"({where})")
    bucket = bucket_seconds(every)
    store, owned, note = open_for_reading(log)  # a log another process writes: a snapshot
    try:
        if where:
            store.check_condition(where)  # its own error, naming it (not the whole query's)
        note_pending(store)  # a dead send's attempts are said to be pending (never replayed)
        cut = pruned_before(store)  # attempts before it were pruned: the audit starts there
        if cut is not None and (lo is None or lo < cut):
            conds.append("fired_at >= ?")
            params.append(cut)
        # the log is append-only: rows up to the last one seen now are the report's rows,
        # also for the breakdowns queried later
        last = store.sql("SELECT max(rowid) FROM postback_log").item()
        upto = -1 if last is None else int(last)
        conds.append(f"rowid <= {upto}")
        cond = " AND ".join(conds)
        # rows appended without marks (a run that crashed) take the slower, equally exact
        # path: a read never writes the marks
        marked = store.retried_upto() >= upto
        moved = remap(store)  # imported rows counted as the dispatch they link to
        frames = {} if moved is None else {"remap": moved}
        sql = main_sql(keys, select, cond, marked, moved is not None)
        frame = as_utc(store.sql(sql, params * (1 if marked else 2), **frames))
        path = str(store.path)
    finally:
        if owned:
            store.close()
    frame = frame.filter(pl.col("attempts") > 0).with_columns(  # by=[] gives a row of zeros
        pl.col("dispatches", "delivered", "attempts", "failed_attempts").cast(pl.Int64)
    )
    d, ok = pl.col("dispatches"), pl.col("delivered")
    a, bad = pl.col("attempts"), pl.col("failed_attempts")
    lo_d, hi_d = wilson(ok, d)
    lo_a, hi_a = wilson(bad, a)
    frame = frame.with_columns(
        (d - ok).alias("undelivered"),
        (ok / d).alias("delivery_rate"),
        (bad / a).alias("attempt_failure_rate"),
        lo_d.alias("delivery_rate_lo"),
        hi_d.alias("delivery_rate_hi"),
        lo_a.alias("attempt_failure_rate_lo"),
        hi_a.alias("attempt_failure_rate_hi"),
    ).select(
        *keys,
        *METRICS,
        "delivery_rate_lo",
        "delivery_rate_hi",
        "attempt_failure_rate_lo",
        "attempt_failure_rate_hi",
    )
    selection = Selection(
        None if owned else store, path, tuple(select), cond, tuple(params), bucket, moved
    )
    return AuditReport(
        frame, tuple(keys), path, selection, pruned_before=cut, note=note, timezone=timezone
    )
