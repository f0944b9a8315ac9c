"""audit: delivery failure rates per group (rule, publisher, offer, status code, day …),
computed by DuckDB over the log, with Wilson 95% intervals, top errors and charts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from .._errors import InputError, did_you_mean
from ..store import LOG_COLUMNS, LogStore, open_log
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
# fired_at is stored as UTC: truncating the plain timestamp skips time-zone calendars
DERIVED = {
    "day": "date_trunc('day', fired_at::TIMESTAMP)",
    "hour": "date_trunc('hour', fired_at::TIMESTAMP)",
    "week": "date_trunc('week', fired_at::TIMESTAMP)",
}
_KEY = "coalesce(dispatch_id, concat_ws(chr(31), rule, transaction_id, status))"


def wilson(successes: pl.Expr, n: pl.Expr, z: float = 1.96) -> tuple[pl.Expr, pl.Expr]:
    """Wilson score interval of a proportion (lower, upper)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).sqrt()) / denom
    return (centre - half).clip(0, 1), (centre + half).clip(0, 1)


@dataclass(frozen=True)
class AuditReport:
    """The audit table (DESIGN fields first), top errors and status codes per group."""

    frame: pl.DataFrame
    by: tuple[str, ...]
    top_errors: pl.DataFrame
    status_codes: pl.DataFrame
    timeline: pl.DataFrame  # by + period, delivery and failure rates over time
    store_path: str = ""

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
    cond = " AND ".join(conds)
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    sel = ", ".join(select) + ", " if select else ""
    grp = f"GROUP BY {group}" if keys else ""
    bucket = _interval(every)
    store, owned = open_log(log)
    try:
        # imported rows without a conversion status have no dispatch id: only then is the
        # slower composite key needed
        loose = store.sql("SELECT count(*) FROM postback_log WHERE dispatch_id IS NULL").item()
        key = _KEY if loose else "dispatch_id"
        # one pass per dispatch and group, then per group: cheaper than two DISTINCT counts
        outer_keys = ", ".join(f"per.{k} AS {k}" for k in keys) + ", " if keys else ""
        on = " AND ".join(f"per.{k} IS NOT DISTINCT FROM lat.{k}" for k in keys)
        frame = store.sql(
            f"""
            WITH per AS (
                SELECT {sel} {key} AS k, bool_or(outcome = 'delivered') AS ok,
                    count(*) AS n, count(*) FILTER (WHERE outcome <> 'delivered') AS bad
                FROM postback_log WHERE {cond}
                GROUP BY {group + ", " if keys else ""}{len(keys) + 1}),
            lat AS (
                SELECT {sel} quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
                    quantile_cont(latency_ms, 0.95) AS p95_latency_ms
                FROM postback_log WHERE {cond} {grp})
            SELECT {outer_keys} count(*) AS dispatches, count(*) FILTER (WHERE ok) AS delivered,
                sum(n) AS attempts, sum(bad) AS failed_attempts,
                any_value(p50_latency_ms) AS p50_latency_ms,
                any_value(p95_latency_ms) AS p95_latency_ms
            FROM per {"JOIN lat ON " + on if keys else ", lat"}
            {"GROUP BY ALL" if keys else ""} {"ORDER BY " + group if keys else ""}""",
            params * 2,
        )
        errors = store.sql(
            f"""
            SELECT {sel} error, count(*) AS attempts FROM postback_log
            WHERE {cond} AND error IS NOT NULL {grp + ", error" if keys else "GROUP BY error"}
            QUALIFY row_number() OVER ({"PARTITION BY " + group if keys else ""}
                                       ORDER BY count(*) DESC) <= 3
            ORDER BY {group + ", " if keys else ""} attempts DESC""",
            params,
        )
        codes = store.sql(
            f"""
            SELECT {sel} status_code, count(*) AS attempts FROM postback_log WHERE {cond}
            {grp + ", status_code" if keys else "GROUP BY status_code"}
            ORDER BY {group + ", " if keys else ""} attempts DESC""",
            params,
        )
        tl_keys = ", ".join(select[:1]) + ", " if select else ""
        timeline = store.sql(
            f"""
            SELECT {tl_keys} time_bucket(INTERVAL '{bucket}', fired_at::TIMESTAMP) AS period,
                count(*) AS attempts,
                count(*) FILTER (WHERE outcome <> 'delivered') AS failed_attempts
            FROM postback_log WHERE {cond}
            GROUP BY {"1, 2" if select else "1"} ORDER BY {"1, 2" if select else "1"}""",
            params,
        )
        path = str(store.path)
    finally:
        if owned:
            store.close()
    errors, codes, timeline = _utc(errors), _utc(codes), _utc(timeline)
    frame = _utc(frame).with_columns(
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
    timeline = timeline.with_columns(
        (pl.col("failed_attempts") / pl.col("attempts")).alias("attempt_failure_rate")
    )
    return AuditReport(frame, tuple(keys), errors, codes, timeline, path)


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Truncated times come back naive (see DERIVED): they are UTC."""
    return frame.with_columns(
        pl.col(c).dt.replace_time_zone("UTC")
        for c, dt in frame.schema.items()
        if isinstance(dt, pl.Datetime) and dt.time_zone is None
    )


def _interval(every: str) -> str:
    from ..rules._read import parse_duration

    try:
        seconds = parse_duration(every).total_seconds()
    except ValueError:
        raise InputError(f"every={every!r} is not a duration; write e.g. 1h or 1d") from None
    if seconds <= 0 or math.isnan(seconds):
        raise InputError(f"every={every!r} must be more than 0s")
    return f"{int(seconds)} seconds"
