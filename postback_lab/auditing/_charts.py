"""Altair chart specs of delivery over time: the audit's and the explorer's daily bars.
Altair is imported only when a chart is drawn; drawing one switches Altair to the inline
(offline) renderer of ``_vega`` unless the user chose another.

Every field a chart names is in the data it is given, with its type written out: Altair
cannot infer the type of a Polars column it does not find, and a chart that fails only
when it is drawn stops a notebook's Run All."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ._filters import natural_key
from ._vega import use_offline_charts

if TYPE_CHECKING:
    import altair as alt

#: time buckets an audit can group by: the chart's x axis already shows time
TIME_KEYS = ("day", "hour", "week")


def chart_group(by: tuple[str, ...]) -> str | None:
    """The ``by`` column a chart colours and splits by: the first that is not a time bucket
    (the time axis shows those), else None."""
    return next((b for b in by if b not in TIME_KEYS), None)


def with_gaps(timeline: pl.DataFrame, group: str | None, every: int | None) -> pl.DataFrame:
    """The timeline with a row of nulls for every empty ``every``-second bucket between
    its first and last, per group: the line breaks there instead of bridging a gap."""
    if not every or timeline.height == 0:
        return timeline
    p = pl.col("period")
    frame = timeline.select(pl.datetime_range(p.min(), p.max(), f"{every}s").alias("period"))
    if frame.height > 10_000:  # a very fine bucket over a long span: leave it as it is
        return timeline
    keys = ["period"]
    if group:
        frame = frame.join(timeline.select(group).unique(), how="cross")
        keys.append(group)
    return frame.join(timeline, on=keys, how="left").sort(keys[::-1])


def _time_axis(field: str, title: str, every: int | None) -> alt.X:
    """A time x axis that spans the data (no rounding out to whole months), labels in one
    format (dates for buckets of a day or more, else dates and times), overlapping ones
    dropped."""
    import altair as alt

    daily = every is not None and every >= 86_400
    return alt.X(
        f"{field}:T",
        title=title,
        scale=alt.Scale(nice=False),
        axis=alt.Axis(
            format="%b %d" if daily else "%b %d %H:%M",
            labelOverlap="greedy",
            labelAngle=0,
            tickCount=6,
        ),
    )


def _order(frame: pl.DataFrame, group: str | None) -> list[str] | None:
    """The group's values in natural order (publisher 7 before 12) for legends and bars."""
    if not group or group not in frame.columns:
        return None
    values = frame[group].drop_nulls().unique().to_list()
    return sorted(values, key=natural_key)


def audit_chart(
    timeline: pl.DataFrame,
    status_codes: pl.DataFrame,
    by: tuple[str, ...],
    every: int | None = None,
    timezone: str = "UTC",
) -> alt.VConcatChart:
    """Attempt failure rate over time per group (``chart_group(by)``; broken where a
    bucket of ``every`` seconds had no attempt), above the status-code mix per group.
    ``timeline``: ``period`` (and the group column), ``attempts``, ``failed_attempts``,
    ``attempt_failure_rate``; ``status_codes``: the ``by`` columns, ``status_code``,
    ``attempts``. Times are drawn as wall-clock times of ``timezone``."""
    import altair as alt

    use_offline_charts()
    group = chart_group(by)
    tl = timeline.select(
        *([group] if group else []),
        "period",
        "attempts",
        "failed_attempts",
        "attempt_failure_rate",
    )
    tl = with_gaps(tl, group, every).with_columns(
        _wall_clock(pl.col("period"), timezone),
        *([pl.col(group).cast(pl.String)] if group else []),
    )
    order = _order(tl, group)
    color = alt.Color(f"{group}:N", title=group, sort=order) if group else alt.value("steelblue")
    line = (
        alt.Chart(tl)
        .mark_line(point=True, invalid="break-paths-filter-domains")  # gaps break it
        .encode(
            x=_time_axis("period", f"time ({timezone})", every),
            y=alt.Y(
                "attempt_failure_rate:Q",
                title="attempt failure rate",
                axis=alt.Axis(format="%"),
            ),
            color=color,
            tooltip=[
                *([alt.Tooltip(f"{group}:N")] if group else []),
                alt.Tooltip("period:T", title="from"),
                alt.Tooltip("attempts:Q"),
                alt.Tooltip("failed_attempts:Q", title="failed"),
                alt.Tooltip("attempt_failure_rate:Q", format=".1%", title="failure rate"),
            ],
        )
        .properties(title="Failure rate over time", width=420, height=220)
    )
    codes = status_codes.select(
        *([pl.col(group).cast(pl.String)] if group and group != "status_code" else []),
        pl.col("status_code").cast(pl.String).fill_null("no response"),
        pl.col("attempts"),
    )
    keys = [*([group] if group and group != "status_code" else []), "status_code"]
    codes = codes.group_by(keys).agg(pl.col("attempts").sum()).sort(keys)
    bars = (
        alt.Chart(codes)
        .mark_bar()
        .encode(
            x=alt.X("attempts:Q", stack="normalize", title="share of attempts"),
            y=alt.Y(f"{group}:N", title=group, sort=_order(codes, group))
            if group and group != "status_code"
            else alt.value(10),
            color=alt.Color("status_code:N", title="status code"),
            tooltip=[
                *([alt.Tooltip(f"{group}:N")] if group and group != "status_code" else []),
                alt.Tooltip("status_code:N", title="status code"),
                alt.Tooltip("attempts:Q"),
            ],
        )
        .properties(title="Status-code mix", width=420)
    )
    chart: alt.VConcatChart = alt.vconcat(line, bars).resolve_scale(color="independent")
    return chart


def _wall_clock(expr: pl.Expr, timezone: str) -> pl.Expr:
    """A UTC time column as naive wall-clock time of ``timezone``: Vega-Lite draws naive
    times as they are, whatever the browser's zone."""
    if timezone != "UTC":
        expr = expr.dt.convert_time_zone(timezone)
    return expr.dt.replace_time_zone(None)


def daily_chart(daily: pl.DataFrame, timezone: str = "UTC") -> alt.Chart:
    """Bars of the attempt failure rate per day of ``timezone`` (``day``, ``attempts``,
    ``failed``; ``day`` is that day's start)."""
    import altair as alt

    use_offline_charts()
    data = daily.select(
        _wall_clock(pl.col("day"), timezone),
        "attempts",
        "failed",
        (pl.col("failed") / pl.col("attempts")).alias("failure_rate"),
    )
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "yearmonthdate(day):O",
                title=f"day ({timezone})",
                axis=alt.Axis(format="%b %d", labelOverlap="greedy", labelAngle=0),
            ),
            y=alt.Y("failure_rate:Q", axis=alt.Axis(format="%"), title="failed attempts"),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip("attempts:Q"),
                alt.Tooltip("failed:Q"),
            ],
        )
        .properties(width=520, height=160, title="Attempt failure rate per day")
    )
    return chart
