"""AuditReport: the audit table, with breakdowns queried from the same log rows on use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .._util import as_utc, render
from ..store import LogStore, open_log
from ._charts import audit_chart
from ._sql import timeline_sql
from ._vega import chart_html

if TYPE_CHECKING:
    import altair as alt

#: the figures of each group, in the order of ``postback-lab audit --format json``
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


@dataclass(frozen=True)
class Selection:
    """Where a report's breakdowns come from: the same selection of the same log, up to
    the last row the audit saw (the log is append-only), queried on first use."""

    log: LogStore | None
    path: str
    select: tuple[str, ...]
    cond: str
    params: tuple[Any, ...]
    every: int

    def query(self, sql: str) -> pl.DataFrame:
        """Run ``sql`` on the log (the caller's store while open, else the file)."""
        store = self.log
        if store is None or store.closed:
            store, owned = open_log(self.path)
        else:
            owned = False
        try:
            return as_utc(store.sql(sql, list(self.params)))
        finally:
            if owned:
                store.close()


@dataclass(frozen=True)
class AuditReport:
    """The audit table (the ``METRICS`` of each group, then Wilson 95% intervals); status
    codes, top errors and the timeline per group are queried from the same log rows on
    first use, keeping ``audit()`` to one scan."""

    frame: pl.DataFrame
    by: tuple[str, ...]
    store_path: str = ""
    source: Selection | None = field(default=None, repr=False, compare=False)

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
            schema = {**self.frame.select(self.by).schema, column: dtype, "attempts": pl.Int64()}
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
        tl = src.query(timeline_sql(list(src.select), src.cond, src.every))
        return tl.with_columns(
            (pl.col("failed_attempts") / pl.col("attempts")).alias("attempt_failure_rate")
        )

    def to_polars(self) -> pl.DataFrame:
        """The audit table."""
        return self.frame

    def to_json(self) -> str:
        """One object per group: the by columns, then the metrics."""
        rows = self.frame.select(*self.by, *METRICS).to_dicts()
        return json.dumps(rows, default=str, indent=2)

    def summary(self) -> str:
        """One line: dispatches delivered and attempts failed over the whole selection."""
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
        return render(
            "Delivery audit",
            self.summary(),
            [
                ("Per group", self.frame),
                ("Top errors", self.top_errors),
                ("Status codes", self.status_codes),
            ],
        )

    def chart(self) -> alt.VConcatChart:
        """Altair: attempt failure rate over time per group, and the status-code mix."""
        return audit_chart(self.timeline, self.status_codes, self.by)

    def save_chart(self, path: str | Path) -> str:
        """Write the chart to ``.html`` (self-contained: opens with no network) or
        ``.png``/``.svg`` (drawn by vl-convert)."""
        chart = self.chart()
        if str(path).lower().endswith((".html", ".htm")):
            page = chart_html(chart.to_dict(), full_page=True, title="Delivery audit")
            Path(path).write_text(page, encoding="utf-8")
        else:
            chart.save(str(path))
        return str(path)
