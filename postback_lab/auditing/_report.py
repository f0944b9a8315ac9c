"""AuditReport: the audit table, with breakdowns queried from the same log rows on use."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from .._errors import InputError
from .._util import TIME_FORMAT, as_utc, render, terminal_width, text_table
from ..store import LogReader, open_log
from ._charts import TIME_KEYS, audit_chart, chart_group
from ._dispatches import log_source
from ._headline import Headline, headline_sql
from ._sql import timeline_sql
from ._vega import chart_html

if TYPE_CHECKING:
    import altair as alt

_T = TypeVar("_T")
CHART_SUFFIXES = (".html", ".htm", ".png", ".svg")
_BUCKET_FORMAT = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "hour": "%Y-%m-%d %H:%M"}

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

    log: LogReader | None
    path: str
    select: tuple[str, ...]
    cond: str
    params: tuple[Any, ...]
    every: int
    #: imported rows counted as the dispatch they link to (see ``_dispatches``), or None
    remap: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def relation(self) -> str:
        """The relation the selection's SQL reads (``_dispatches.log_source``)."""
        return log_source(self.remap is not None)

    def query(self, sql: str) -> pl.DataFrame:
        """Run ``sql`` on the log (the caller's store while open, else the file)."""
        frames = {} if self.remap is None else {"remap": self.remap}
        return self._with_store(lambda store: as_utc(store.sql(sql, list(self.params), **frames)))

    def headline(self) -> Headline:
        """The headline of the whole selection (each postback counted once)."""
        return self._with_store(
            lambda store: headline_sql(store, self.cond, list(self.params), self.remap)
        )

    def _with_store(self, use: Callable[[LogReader], _T]) -> _T:
        store = self.log
        if store is None or store.closed:
            store, owned = open_log(self.path, "read")
        else:
            owned = False
        try:
            return use(store)
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
    selection: Selection | None = field(default=None, repr=False, compare=False)
    pruned_before: datetime | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)  # e.g. read from a snapshot
    #: the zone of the day/hour/week groups, shown in the table and the chart
    timezone: str = field(default="UTC", compare=False)

    @cached_property
    def overall(self) -> Headline:
        """The headline of the whole selection, the same whatever ``by`` is. Grouped rows
        do not add up to it: by status code or by day a retried postback sits in several
        groups, so the log is asked once (on first use), counting each postback once."""
        f = self.frame
        if f.height and self.selection is not None:
            return self.selection.headline()
        return Headline(
            int(f["dispatches"].sum()),
            int(f["delivered"].sum()),
            int(f["attempts"].sum()),
            int(f["failed_attempts"].sum()),
        )

    @cached_property
    def _fine(self) -> pl.DataFrame:
        """Attempts per group, status code and error: both breakdowns come from it."""
        if self.selection is None:
            return pl.DataFrame()
        extra = [c for c in ("status_code", "error") if c not in self.by]
        cols = ", ".join([*self.selection.select, *extra])
        return self.selection.query(
            f"SELECT {cols}, count(*) AS attempts FROM {self.selection.relation} "
            f"WHERE {self.selection.cond} GROUP BY ALL"
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
        """Attempts and failure rate per ``every`` bucket (and per the chart's group: the
        first ``by`` column that is not a time bucket)."""
        src = self.selection
        if src is None:
            return pl.DataFrame()
        group = chart_group(self.by)
        first = [src.select[self.by.index(group)]] if group else []
        tl = src.query(
            timeline_sql(first, src.cond, src.every, src.remap is not None, self.timezone)
        )
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
        """One line: the headline of the whole selection (see ``overall``), then the
        grouping, and when the log was pruned, where the audit starts."""
        if self.frame.height == 0:
            line = "no attempts in the log for this selection"
        else:
            line = f"{self.overall.text()} — by {', '.join(self.by) or 'all'}"
            if self.timezone != "UTC" and any(k in TIME_KEYS for k in self.by):
                line += f" ({self.timezone})"
        if self.pruned_before is not None:
            line += (
                f" (log pruned before {self.pruned_before:{TIME_FORMAT}} UTC: audits start there)"
            )
        if self.note:
            line += f" ({self.note})"
        return line

    def table(self, intervals: bool = True) -> pl.DataFrame:
        """The audit as people read it: short headers, rates as percentages with their 95%
        Wilson interval in one cell (``intervals=False``: without), latencies in whole ms,
        group times in the report's time zone (a day as a date). Counts stay numbers
        (shown with thousands separators); ``to_polars()`` keeps every figure as computed."""
        f = self.frame

        def pct(col: str) -> pl.Expr:
            if not intervals:
                return pl.format("{}%", (pl.col(col) * 100).round(1))
            lo, hi = pl.col(f"{col}_lo") * 100, pl.col(f"{col}_hi") * 100
            return pl.format(
                "{}% ({}–{})",
                (pl.col(col) * 100).round(1),
                lo.round(1),
                hi.round(1),
            )

        keys = [
            pl.col(k)
            .dt.convert_time_zone(self.timezone)
            .dt.strftime(_BUCKET_FORMAT.get(k, TIME_FORMAT))
            if isinstance(f.schema[k], pl.Datetime)
            else pl.col(k)
            for k in self.by
        ]
        out = f.select(
            *keys,
            pl.col("dispatches").alias("postbacks"),
            "delivered",
            pct("delivery_rate").alias("delivery rate"),
            "attempts",
            pl.col("failed_attempts").alias("failed"),
            pct("attempt_failure_rate").alias("attempt failures"),
            pl.col("p50_latency_ms").round(0).cast(pl.Int64).alias("p50 ms"),
            pl.col("p95_latency_ms").round(0).cast(pl.Int64).alias("p95 ms"),
        )
        return out.with_columns(pl.col(k).cast(pl.String) for k in self.by)

    def below(self, rate: float) -> pl.DataFrame:
        """The groups whose delivery rate is under ``rate`` (0-1), lowest first."""
        return self.frame.filter(pl.col("delivery_rate") < rate).sort("delivery_rate")

    def __str__(self) -> str:
        if self.frame.height == 0:
            return self.summary()
        # too narrow for every figure (80 columns): the latencies go first, then the
        # intervals; the counts and both rates stay
        width = terminal_width()
        rates = ("delivery rate", "attempt failures")
        table = text_table(self.table(), right=rates, width=width)
        legend = "rates: value (95% Wilson interval)"
        hidden = table.rsplit("\n", 1)[-1]
        if hidden.startswith("(") and "attempt failures" in hidden:
            short = {"delivery rate": "delivered %", "attempt failures": "failed %"}
            narrow = self.table(intervals=False).drop("p50 ms", "p95 ms").rename(short)
            table = text_table(narrow, right=tuple(short.values()), width=width)
            legend = "rates without their 95% intervals at this width; --format csv has them"
        return f"{self.summary()}\n{table}\n{legend}"

    def _repr_html_(self) -> str:
        return render(
            "Delivery audit",
            self.summary(),
            [
                ("Per group", self.table()),
                ("Top errors", self.top_errors),
                ("Status codes", self.status_codes),
            ],
        )

    def chart(self) -> alt.VConcatChart:
        """Altair: attempt failure rate over time per group, and the status-code mix."""
        every = self.selection.every if self.selection is not None else None
        return audit_chart(self.timeline, self.status_codes, self.by, every, self.timezone)

    def save_chart(self, path: str | Path) -> str:
        """Write the chart to ``.html`` (self-contained: opens with no network) or
        ``.png``/``.svg`` (drawn by vl-convert: the ``png`` extra). Any ``by`` draws: the
        lines and bars are split by the first ``by`` column that is not a time bucket."""
        suffix = Path(path).suffix.lower()
        if suffix not in CHART_SUFFIXES:
            raise InputError(
                f"{path}: save_chart writes {', '.join(CHART_SUFFIXES)} files, "
                f"not {suffix or 'a file without a suffix'}"
            )
        chart = self.chart()
        if suffix in (".html", ".htm"):
            page = chart_html(chart.to_dict(), full_page=True, title="Delivery audit")
            Path(path).write_text(page, encoding="utf-8")
            return str(path)
        if importlib.util.find_spec("vl_convert") is None:
            raise InputError(
                f"saving a chart as {Path(path).suffix or path!r} needs vl-convert-python: "
                "pip install 'postback-lab[png]', or save it as .html (no extra needed)"
            )
        chart.save(str(path))
        return str(path)
