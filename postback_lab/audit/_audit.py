"""audit: delivery failure rates per group (rule, publisher, offer, status code, day …),
computed by DuckDB over the log, with Wilson 95% intervals, top errors and charts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from .._errors import InputError, did_you_mean
from ..store import LogStore, open_log
from ..store._schema import LOG_COLUMNS
from ._backfill import _when

METRICS = (
    "dispatches",
    "delivered",
    "undelivered",
    "delivery_rate",
    "attempts",
    "failed_attempts",
    "attempt_failure_rate",
    "p50_latency_ms",
    "p95_latency_ms",
)
_DAY = 86_400


def period_sql(seconds: int, origin: int = 0) -> str:
    """``fired_at`` floored to buckets of ``seconds`` counted from ``origin`` (epoch seconds),
    as a plain UTC timestamp. Integer arithmetic on the stored microseconds: casting through
    the session time zone (``date_trunc``/``time_bucket``) costs ~6x more on 10M rows."""
    us, w, o = "epoch_us(fired_at)", seconds * 1_000_000, origin * 1_000_000
    return f"make_timestamp({us} - ((({us} - {o}) % {w}) + {w}) % {w})"


DERIVED = {
    "day": period_sql(_DAY),
    "hour": period_sql(3_600),
    "week": period_sql(7 * _DAY, 4 * _DAY),  # 1970-01-05 was a Monday
}
_TIMELINE_ORIGIN = 946_857_600  # 2000-01-03, a Monday: DuckDB's time_bucket origin


def wilson(successes: pl.Expr, n: pl.Expr, z: float = 1.96) -> tuple[pl.Expr, pl.Expr]:
    """Wilson score interval of a proportion (lower, upper)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).sqrt()) / denom
    return (centre - half).clip(0, 1), (centre + half).clip(0, 1)


@dataclass(frozen=True)
class _Source:
    """Where a report's breakdowns come from: the same selection of the same log, up to
    the last row the audit saw (the log is append-only), queried on first use."""

    log: LogStore | None
    path: str
    select: tuple[str, ...]
    cond: str
    params: tuple[Any, ...]
    every: int

    def query(self, sql: str) -> pl.DataFrame:
        store = self.log
        if store is None or store.closed:
            store, owned = open_log(self.path)
        else:
            owned = False
        try:
            return _utc(store.sql(sql, list(self.params)))
        finally:
            if owned:
                store.close()


@dataclass(frozen=True)
class AuditReport:
    """The audit table (DESIGN fields first); status codes, top errors and the timeline per
    group are queried from the same log rows on first use, keeping ``audit()`` to one scan."""

    frame: pl.DataFrame
    by: tuple[str, ...]
    store_path: str = ""
    source: _Source | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _fine(self) -> pl.DataFrame:
        """Attempts per group, status code and error: both breakdowns come from it."""
        if self.source is None:
            return pl.DataFrame()
        extra = [c for c in ("status_code", "error") if c not in self.by]
        cols = ", ".join([*self.source.select, *extra])
        return self.source.query(
            f"SELECT {cols}, count(*) AS attempts FROM postback_log "
            f"WHERE {self.source.cond} GROUP BY ALL"
        )

    def _attempts_per(self, column: str, dtype: pl.DataType) -> pl.DataFrame:
        """Attempts per value of ``column`` in each group, most frequent first."""
        if self._fine.is_empty():
            schema = {**self.frame.select(self.by).schema, column: dtype, "attempts": pl.Int64}
            return pl.DataFrame(schema=schema)
        return (
            self._fine.group_by(list(dict.fromkeys([*self.by, column])))
            .agg(pl.col("attempts").sum().cast(pl.Int64))
            .sort(
                [*self.by, "attempts", column],
                descending=[*([False] * len(self.by)), True, False],
                nulls_last=True,
            )
        )

    @cached_property
    def status_codes(self) -> pl.DataFrame:
        """Attempts per status code in each group (null: no response), most frequent first."""
        return self._attempts_per("status_code", pl.Int32())

    @cached_property
    def top_errors(self) -> pl.DataFrame:
        """The three most frequent error messages of each group."""
        errors = self._attempts_per("error", pl.String()).filter(pl.col("error").is_not_null())
        return errors.group_by(self.by, maintain_order=True).head(3) if self.by else errors.head(3)

    @cached_property
    def timeline(self) -> pl.DataFrame:
        """Attempts and failure rate per ``every`` bucket (and first ``by`` column)."""
        src = self.source
        if src is None:
            return pl.DataFrame()
        first = f"{src.select[0]}, " if src.select else ""
        group = "1, 2" if src.select else "1"
        tl = src.query(
            f"""
            SELECT {first} {period_sql(src.every, _TIMELINE_ORIGIN)} AS period,
                count(*) AS attempts,
                count(*) FILTER (WHERE outcome <> 'delivered') AS failed_attempts
            FROM postback_log WHERE {src.cond}
            GROUP BY {group} ORDER BY {group}"""
        )
        return tl.with_columns(
            (pl.col("failed_attempts") / pl.col("attempts")).alias("attempt_failure_rate")
        )

    def to_polars(self) -> pl.DataFrame:
        return self.frame

    def to_json(self) -> str:
        """DESIGN's JSON: one object per group, the by columns then the metrics."""
        rows = self.frame.select(*self.by, *METRICS).to_dicts()
        return json.dumps(rows, default=str, indent=2)

    def summary(self) -> str:
        f = self.frame
        if f.height == 0:
            return "no attempts in the log for this selection"
        d, ok = int(f["dispatches"].sum()), int(f["delivered"].sum())
        a, bad = int(f["attempts"].sum()), int(f["failed_attempts"].sum())
        return (
            f"{d:,} dispatches, {ok:,} delivered ({ok / d:.1%}); {a:,} attempts, "
            f"{bad:,} failed ({bad / a:.1%}) — by {', '.join(self.by) or 'all'}"
        )

    def __str__(self) -> str:
        if self.frame.height == 0:
            return self.summary()
        with pl.Config(
            tbl_rows=50,
            tbl_cols=20,
            tbl_hide_dataframe_shape=True,
            fmt_str_lengths=40,
            tbl_width_chars=160,
        ):
            return self.summary() + "\n" + str(self.frame.select(*self.by, *METRICS))

    def _repr_html_(self) -> str:
        from ..notebook._html import render

        return render(
            "report.html.j2",
            title="Delivery audit",
            summary=self.summary(),
            tables=[
                ("Per group", self.frame),
                ("Top errors", self.top_errors),
                ("Status codes", self.status_codes),
            ],
        )

    def chart(self) -> Any:
        """Altair: attempt failure rate over time per group, and the status-code mix."""
        import altair as alt

        group = self.by[0] if self.by else None
        tl = self.timeline.with_columns(
            pl.col("period").dt.replace_time_zone(None),
            *([pl.col(group).cast(pl.String)] if group else []),
        )
        color = alt.Color(f"{group}:N") if group else alt.value("steelblue")
        line = (
            alt.Chart(tl)
            .mark_line(point=True)
            .encode(
                x=alt.X("period:T", title="time"),
                y=alt.Y(
                    "attempt_failure_rate:Q",
                    title="attempt failure rate",
                    axis=alt.Axis(format="%"),
                ),
                color=color,
                tooltip=[
                    *(self.by or ()),
                    "period:T",
                    "attempts:Q",
                    "failed_attempts:Q",
                    alt.Tooltip("attempt_failure_rate:Q", format=".1%"),
                ],
            )
            .properties(title="Failure rate over time", width=420, height=220)
        )
        codes = self.status_codes.with_columns(
            pl.col("status_code").cast(pl.String).fill_null("no response"),
            *([pl.col(group).cast(pl.String)] if group else []),
        )
        bars = (
            alt.Chart(codes)
            .mark_bar()
            .encode(
                x=alt.X("attempts:Q", stack="normalize", title="share of attempts"),
                y=alt.Y(f"{group}:N") if group else alt.value(10),
                color=alt.Color("status_code:N", title="status code"),
                tooltip=[*(self.by or ()), "status_code:N", "attempts:Q"],
            )
            .properties(title="Status-code mix", width=420)
        )
        return alt.vconcat(line, bars).resolve_scale(color="independent")

    def explore(self) -> Any:
        """The widget explorer over the same log."""
        from ..notebook._explore import explore

        return explore(self.store_path)

    def save_chart(self, path: str) -> str:
        """Write the chart to ``.html`` (self-contained) or ``.png``/``.svg`` (vl-convert)."""
        self.chart().save(path)
        return path


def _columns(by: list[str]) -> list[str]:
    valid = [*LOG_COLUMNS, *DERIVED]
    for c in by:
        if c not in valid:
            raise InputError(f"cannot audit by {c!r}{did_you_mean(c, valid)}")
    return [f"{DERIVED[c]} AS {c}" if c in DERIVED else c for c in by]


def audit(
    log: LogStore | str | None = None,
    by: str | list[str] | tuple[str, ...] = ("rule",),
    *,
    since: Any = None,
    until: Any = None,
    every: str = "1d",
    where: str | None = None,
) -> AuditReport:
    """Delivery and failure rates per group from the log (dry runs excluded).

    ``by``: log columns (rule, publisher_id, offer_id, host, status_code, outcome …) or
    ``day``/``hour``/``week``; ``since``/``until`` bound ``fired_at``; ``every`` is the
    bucket of the timeline used by ``chart()``.
    """
    keys = [b.strip() for b in (by.split(",") if isinstance(by, str) else by) if b.strip()]
    select = _columns(keys)
    conds = ["outcome <> 'dry_run'"]
    params: list[Any] = []
    if (lo := _when(since)) is not None:
        conds.append("fired_at >= ?")
        params.append(lo)
    if (hi := _when(until)) is not None:
        conds.append("fired_at < ?")
        params.append(hi)
    if where:
        conds.append(f"({where})")
    bucket = _interval(every)
    store, owned = open_log(log)
    try:
        # the log is append-only: rows up to the last one seen now are the report's rows,
        # also for the breakdowns queried later
        upto = store.sql("SELECT max(rowid) FROM postback_log").item()
        upto = -1 if upto is None else int(upto)
        conds.append(f"rowid <= {upto}")
        cond = " AND ".join(conds)
        if store.retried_upto() < upto and not store.read_only:
            store.mark_retried()  # rows appended without marks (a run that crashed)
        marked = store.retried_upto() >= upto
        sql = _main_sql(keys, select, cond, marked)
        frame = _utc(store.sql(sql, params * (1 if marked else 2)))
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
    source = _Source(None if owned else store, path, tuple(select), cond, tuple(params), bucket)
    return AuditReport(frame, tuple(keys), path, source)


def _main_sql(keys: list[str], select: list[str], cond: str, marked: bool) -> str:
    """Every per-group figure in one scan of the log.

    Counting dispatches per group needs a distinct count, i.e. a pass per (group, dispatch)
    over the whole log. Only dispatches with more than one row can be counted twice, and
    every such dispatch has a row whose attempt is not 1 (the sender and the importer number
    attempts per dispatch from 1, and ``LogStore.append`` refuses a repeated number): rows
    of the others are counted as they are, and only rows of these (~10% of a log) go
    through the per-dispatch pass. With the ``retried`` marks complete (``marked``) a row
    shows by itself whether it is one of these; otherwise the log is joined with the set
    of retried dispatches. Dispatches are told apart by the stored 128-bit
    ``dispatch_key`` (see ``store._schema.DISPATCH_KEY``).
    """
    sel = ", ".join(select) + ", " if select else ""
    names = ", ".join(keys) + ", " if keys else ""
    group = "GROUP BY ALL" if keys else ""
    on = " AND ".join(f"one.{k} IS NOT DISTINCT FROM two.{k}" for k in keys) or "TRUE"
    order = "ORDER BY " + ", ".join(f"one.{k}" for k in keys) if keys else ""
    row = f"{sel} dispatch_key AS __k, outcome = 'delivered' AS __ok, latency_ms AS __lat"
    if marked:
        base = f"""base AS (
            SELECT {row}, coalesce(retried, false) OR attempt IS DISTINCT FROM 1 AS __multi
            FROM postback_log WHERE {cond}),"""
    else:
        base = f"""rep AS (
            SELECT DISTINCT dispatch_key AS h FROM postback_log
            WHERE {cond} AND attempt IS DISTINCT FROM 1),
        base AS (
            SELECT {row}, rep.h IS NOT NULL AS __multi
            FROM postback_log LEFT JOIN rep ON dispatch_key = rep.h WHERE {cond}),"""
    return f"""
        WITH {base}
        one AS (
            SELECT {names}
                count(*) FILTER (WHERE NOT __multi) AS __d1,
                count(*) FILTER (WHERE NOT __multi AND __ok) AS __ok1,
                count(*) AS attempts, count(*) FILTER (WHERE NOT __ok) AS failed_attempts,
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


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Truncated times come back naive (see DERIVED): they are UTC."""
    return frame.with_columns(
        pl.col(c).dt.replace_time_zone("UTC")
        for c, dt in frame.schema.items()
        if isinstance(dt, pl.Datetime) and dt.time_zone is None
    )


def _interval(every: str) -> int:
    from ..rules._read import parse_duration

    try:
        seconds = parse_duration(every).total_seconds()
    except ValueError:
        raise InputError(f"every={every!r} is not a duration; write e.g. 1h or 1d") from None
    if seconds <= 0 or math.isnan(seconds):
        raise InputError(f"every={every!r} must be more than 0s")
    return int(seconds)
