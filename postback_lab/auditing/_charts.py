"""Altair chart specs of delivery over time: the audit's and the explorer's daily bars.
Altair is imported only when a chart is drawn; drawing one switches Altair to the inline
(offline) renderer of ``_vega`` unless the user chose another."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ._vega import use_offline_charts

if TYPE_CHECKING:
    import altair as alt


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


def audit_chart(
    timeline: pl.DataFrame,
    status_codes: pl.DataFrame,
    by: tuple[str, ...],
    every: int | None = None,
) -> alt.VConcatChart:
    """Attempt failure rate over time per first ``by`` group (broken where a bucket of
    ``every`` seconds had no attempt), above the status-code mix."""
    import altair as alt

    use_offline_charts()
    group = by[0] if by else None
    tl = with_gaps(timeline, group, every).with_columns(
        pl.col("period").dt.replace_time_zone(None),
        *([pl.col(group).cast(pl.String)] if group else []),
    )
    color = alt.Color(f"{group}:N") if group else alt.value("steelblue")
    line = (
        alt.Chart(tl)
        .mark_line(point=True, invalid="break-paths-filter-domains")  # gaps break it
        .encode(
            x=alt.X("period:T", title="time"),
            y=alt.Y(
                "attempt_failure_rate:Q",
                title="attempt failure rate",
                axis=alt.Axis(format="%"),
            ),
            color=color,
            tooltip=[
                *by,
                "period:T",
                "attempts:Q",
                "failed_attempts:Q",
                alt.Tooltip("attempt_failure_rate:Q", format=".1%"),
            ],
        )
        .properties(title="Failure rate over time", width=420, height=220)
    )
    codes = status_codes.with_columns(
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
            tooltip=[*by, "status_code:N", "attempts:Q"],
        )
        .properties(title="Status-code mix", width=420)
    )
    chart: alt.VConcatChart = alt.vconcat(line, bars).resolve_scale(color="independent")
    return chart


def daily_chart(daily: pl.DataFrame) -> alt.Chart:
    """Bars of the attempt failure rate per UTC day (``day``, ``attempts``, ``failed``)."""
    import altair as alt

    use_offline_charts()
    data = daily.with_columns(
        pl.col("day").dt.replace_time_zone(None),
        (pl.col("failed") / pl.col("attempts")).alias("failure_rate"),
    )
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day (UTC)"),
            y=alt.Y("failure_rate:Q", axis=alt.Axis(format="%"), title="failed attempts"),
            tooltip=["day:T", "attempts:Q", "failed:Q"],
        )
        .properties(width=520, height=160, title="Attempt failure rate per day")
    )
    return chart
