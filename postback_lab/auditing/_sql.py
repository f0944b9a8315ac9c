"""The audit's SQL: time buckets by integer arithmetic, the grouping columns, and every
per-group figure in one scan of the log."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._errors import InputError, did_you_mean
from .._util import parse_duration
from ..store import LOG_COLUMNS
from ._dispatches import log_source

_DAY = 86_400
#: outcomes that are not failed attempts: delivered, and rows where nothing was sent to
#: the partner for real (paused by the breaker, a dry run, a test fire)
NOT_FAILURES = "('delivered', 'paused', 'dry_run', 'test')"
TIMELINE_ORIGIN = 946_857_600  # 2000-01-03, a Monday: DuckDB's time_bucket origin


def period_sql(seconds: int, origin: int = 0) -> str:
    """``fired_at`` floored to buckets of ``seconds`` counted from ``origin`` (epoch seconds),
    as a plain UTC timestamp. Integer arithmetic on the stored microseconds: casting through
    the session time zone (``date_trunc``/``time_bucket``) costs ~6x more on 10M rows."""
    us, w, o = "epoch_us(fired_at)", seconds * 1_000_000, origin * 1_000_000
    return f"make_timestamp({us} - ((({us} - {o}) % {w}) + {w}) % {w})"


#: the time buckets an audit can group by, as SQL over ``fired_at`` (naive UTC)
DERIVED = {
    "day": period_sql(_DAY),
    "hour": period_sql(3_600),
    "week": period_sql(7 * _DAY, 4 * _DAY),  # 1970-01-05 was a Monday
}


def check_timezone(timezone: str) -> str:
    """``timezone`` if it names a time zone (``America/New_York``), else an InputError."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"timezone={timezone!r} is not a time zone; write e.g. UTC or America/New_York"
        ) from None
    return timezone


def bucket_sql(unit: str, timezone: str = "UTC") -> str:
    """``fired_at`` floored to the start of its ``unit`` (day, hour, week: Monday) in
    ``timezone``; in UTC by integer arithmetic (see ``period_sql``), elsewhere through the
    zone's calendar (days of 23 or 25 hours included), as an instant."""
    if timezone == "UTC":
        return DERIVED[unit]
    zone = check_timezone(timezone).replace("'", "''")
    return f"timezone('{zone}', date_trunc('{unit}', timezone('{zone}', fired_at)))"


def group_columns(by: list[str], timezone: str = "UTC") -> list[str]:
    """The SELECT items of the grouping columns (days, hours and weeks of ``timezone``);
    an unknown one is an InputError."""
    valid = [*LOG_COLUMNS, *DERIVED]
    for c in by:
        if c not in valid:
            raise InputError(f"cannot audit by {c!r}{did_you_mean(c, valid)}")
    return [f"{bucket_sql(c, timezone)} AS {c}" if c in DERIVED else c for c in by]


def bucket_seconds(every: str) -> int:
    """The timeline's bucket (``every``, e.g. ``1h``) in whole seconds, or an InputError."""
    try:
        seconds = parse_duration(every).total_seconds()
    except ValueError:
        raise InputError(f"every={every!r} is not a duration; write e.g. 1h or 1d") from None
    if seconds <= 0 or math.isnan(seconds):
        raise InputError(f"every={every!r} must be more than 0s")
    return int(seconds)


def main_sql(
    keys: list[str], select: list[str], cond: str, marked: bool, remapped: bool = False
) -> str:
    """Every per-group figure in one scan of the log.

    Counting dispatches per group needs a distinct count, i.e. a pass per (group, dispatch)
    over the whole log. Only dispatches with more than one row can be counted twice, and
    every such dispatch has a row whose attempt is not 1 (the sender and the importer number
    attempts per dispatch from 1, and ``LogStore.append`` refuses a repeated number): rows
    of the others are counted as they are, and only rows of these (~10% of a log) go
    through the per-dispatch pass. With the ``retried`` marks complete (``marked``) a row
    shows by itself whether it is one of these; otherwise the log is joined with the set
    of retried dispatches. Dispatches are told apart by the stored 128-bit
    ``dispatch_key``.

    ``remapped``: read the log through ``log_source`` (imported rows counted as the
    dispatch they link to, see ``_dispatches``); the rows that moved, and the rows of
    dispatches they moved to, take the per-dispatch pass.
    """
    src = log_source(remapped)
    moved = " OR __moved" if remapped else ""
    sel = ", ".join(select) + ", " if select else ""
    names = ", ".join(keys) + ", " if keys else ""
    group = "GROUP BY ALL" if keys else ""
    on = " AND ".join(f"one.{k} IS NOT DISTINCT FROM two.{k}" for k in keys) or "TRUE"
    order = "ORDER BY " + ", ".join(f"one.{k}" for k in keys) if keys else ""
    # a 'paused' row (breaker open, nothing sent) counts for its dispatch, not as an attempt
    row = (
        f"{sel} dispatch_key AS __k, outcome = 'delivered' AS __ok, latency_ms AS __lat, "
        f"outcome = 'paused' AS __paused, outcome IN {NOT_FAILURES} AS __fine"
    )
    if marked:
        base = f"""base AS (
            SELECT {row},
                coalesce(retried, false) OR attempt IS DISTINCT FROM 1{moved} AS __multi
            FROM {src} WHERE {cond}),"""
    else:
        base = f"""rep AS (
            SELECT DISTINCT dispatch_key AS h FROM {src}
            WHERE {cond} AND attempt IS DISTINCT FROM 1),
        base AS (
            SELECT {row}, rep.h IS NOT NULL{moved} AS __multi
            FROM {src} LEFT JOIN rep ON dispatch_key = rep.h WHERE {cond}),"""
    return f"""
        WITH {base}
        one AS (
            SELECT {names}
                count(*) FILTER (WHERE NOT __multi) AS __d1,
                count(*) FILTER (WHERE NOT __multi AND __ok) AS __ok1,
                count(*) FILTER (WHERE NOT __paused) AS attempts,
                count(*) FILTER (WHERE NOT __fine) AS failed_attempts,
                quantile_cont(__lat, [0.5, 0.95]) AS __q
            FROM base {group}),
        per AS (SELECT {names} __k, bool_or(__ok) AS __ok FROM base WHERE __multi GROUP BY ALL),
        two AS (
            SELECT {names} count(*) AS __d2, count(*) FILTER (WHERE __ok) AS __ok2
            FROM per {group})
        SELECT one.* EXCLUDE (__d1, __ok1, __q), __d1 + coalesce(__d2, 0) AS dispatches,
            __ok1 + coalesce(__ok2, 0) AS delivered,
            __q[1] AS p50_latency_ms, __q[2] AS p95_latency_ms
        FROM one LEFT JOIN two ON {on} {order}"""


def timeline_sql(
    select: list[str], cond: str, every: int, remapped: bool = False, timezone: str = "UTC"
) -> str:
    """Attempts and failed attempts per ``every``-second bucket (and first group column);
    buckets of a day or an hour start at the local midnight or hour of ``timezone``."""
    first = f"{select[0]}, " if select else ""
    unit = {86_400: "day", 3_600: "hour"}.get(every)
    period = bucket_sql(unit, timezone) if unit and timezone != "UTC" else None
    group = "1, 2" if select else "1"
    return f"""
        SELECT {first} {period or period_sql(every, TIMELINE_ORIGIN)} AS period,
            count(*) AS attempts,
            count(*) FILTER (WHERE outcome NOT IN {NOT_FAILURES}) AS failed_attempts
        FROM {log_source(remapped)} WHERE {cond} AND outcome IS DISTINCT FROM 'paused'
        GROUP BY {group} ORDER BY {group}"""
