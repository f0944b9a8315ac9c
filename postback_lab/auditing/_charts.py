"""Altair chart specs of delivery over time: the audit's and the explorer's daily bars.
Altair is imported only when a chart is drawn; drawing one switches Altair to the inline
(offline) renderer of ``_vega`` unless the user chose another."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ._vega import use_offline_charts

if TYPE_CHECKING:
    import altair as alt


def audit_chart(
    timeline: pl.DataFrame, status_codes: pl.DataFrame, by: tuple[str, ...]
) -> alt.VConcatChart:
    """Attempt failure rate over time per first ``by`` group, above the status-code mix."""
    import altair as alt

    use_offline_charts()
    group = by[0] if by else None
    tl = timeline.with_columns(
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
            x=alt.X("day:T"),
            y=alt.Y("failure_rate:Q", axis=alt.Axis(format="%")),
            tooltip=["day:T", "attempts:Q", "failed:Q"],
        )
        .properties(width=520, height=160, title="Attempt failure rate per day")
    )
    return chart
