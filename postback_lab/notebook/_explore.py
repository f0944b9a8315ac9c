"""The log explorer: ipywidgets filters over the DuckDB log, re-queried on every change.

Imported lazily (``postback_lab.explore``) so the package never needs a notebook.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

from .._errors import PostbackLabError, StoreLockedError
from .._util import TIME_FORMAT, as_utc, cell, render, shorten
from ..auditing import (
    COLUMNS,
    NOT_FAILURES,
    AuditReport,
    Headline,
    LogFilter,
    attempt_rows,
    bucket_sql,
    chart_html,
    check_timezone,
    count_rows,
    daily_chart,
    headline,
    loader_html,
    natural_key,
    open_for_reading,
    readable_rows,
    visible,
)
from ..plan import PLAN_SCHEMA, Plan, PlanSource, read_plan
from ..rules import RuleSet, RulesSource, read_rules
from ..store import LogReader, LogSource, LogStore, open_log

if TYPE_CHECKING:
    import altair as alt

PAGE = 20  # rows per page (the HTML table shows up to 20)
_FILTERS = COLUMNS
# one line per row: long texts are cut (the full text is in the cell's tooltip-free export)
_ONE_LINE = "<style>.pbl-explorer .pbl-table td{white-space:nowrap}</style>"
_WIDTH = {"error": 48, "url": 64, "rule": 28, "transaction": 24}


class Explorer:
    """Filter controls, a headline (KPI line), a chart and a paged table over
    ``postback_log``. The headline is the audit's: delivery rate of postbacks, failure
    rate of attempts.

    The explorer outlives the LogStore it was given: once that store is closed (a
    notebook's last cell), each refresh opens the file read-only for its queries and
    closes it again, so a later ``LogStore`` of the same file can still write. When the
    file cannot be read, the headline says so."""

    def __init__(self, log: LogSource | AuditReport = None, *, timezone: str = "UTC") -> None:
        import ipywidgets as w

        self.timezone = check_timezone(timezone)
        wrap = w.Layout(flex_flow="row wrap")  # controls wrap instead of scrolling sideways
        if isinstance(log, AuditReport):
            src = log.selection
            log = src.log if src is not None and src.log is not None else log.store_path
        # a log another process writes is read from a snapshot, saying so
        self.store, self._owned, self.note = open_for_reading(log)
        self._w = w
        options = self._options()
        self.filters: dict[str, Any] = {
            col: w.SelectMultiple(
                options=options[col],
                description=col,
                rows=4,
                layout=w.Layout(width=_box_width(options[col])),
            )
            for col in _FILTERS
        }
        for col, control in self.filters.items():
            control.add_class(f"pbl-filter-{col}")  # stable handles for browser tests
        # per filter: leave the chosen values out instead of keeping only them
        self.exclude: dict[str, Any] = {
            col: w.Checkbox(
                value=False, description="not these", indent=False, layout=w.Layout(width="220px")
            )
            for col in _FILTERS
        }
        self.since = w.DatePicker(description="since")
        self.until = w.DatePicker(description="until")
        self.text = w.Text(
            description="search", placeholder="transaction id, URL, error, response body or headers"
        )
        self.page = w.BoundedIntText(
            value=1, min=1, max=10**9, description="page", layout=w.Layout(width="160px")
        )
        self.kpi = w.HTML()
        self.kpi.add_class("pbl-kpi")
        self.pager = w.HTML()
        self.table = w.HTML()
        self.chart = w.Output()
        for control in (
            *self.filters.values(),
            *self.exclude.values(),
            self.since,
            self.until,
            self.text,
        ):
            control.observe(self._changed, names="value")
        self.page.observe(lambda _: self.refresh(chart=False), names="value")
        self.widget = w.VBox(
            [
                w.HBox(
                    [w.VBox([c, self.exclude[col]]) for col, c in self.filters.items()],
                    layout=wrap,
                ),
                w.HBox([self.since, self.until, self.text, self.page], layout=wrap),
                self.kpi,
                self.chart,
                self.pager,
                self.table,
            ]
        )
        self.widget.add_class("pbl-explorer")
        self.refresh()

    # -- queries -----------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[LogReader]:
        """The store to query: the one given while it is open, else the file opened
        read-only for this query (or this process's writer of it, if one opened since)."""
        if not self.store.closed:
            yield self.store
            return
        try:
            store: LogReader = LogStore(self.store.path, read_only=True)
            owned = True
        except StoreLockedError:  # held for writing here again: read through that one
            store, owned = open_log(self.store.path, "read")
        try:
            yield store
        finally:
            if owned:
                store.close()

    def _options(self) -> dict[str, list[Any]]:
        with self._reading() as store:
            return self._options_of(store)

    def _options_of(self, store: LogReader) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        have = set(store.sql("SELECT * FROM postback_log LIMIT 0").columns)
        for col in _FILTERS:
            if col not in have:  # a log from before the column was kept
                out[col] = []
                continue
            values = store.sql(
                f"SELECT DISTINCT {col} AS v FROM postback_log WHERE {col} IS NOT NULL"
            )["v"].to_list()
            out[col] = sorted(values, key=natural_key)  # publisher 7 before 12
        return out

    def filter(self) -> LogFilter:
        """The LogFilter of the current widget values: dates are days of the explorer's
        time zone, ``until`` included."""
        until = self.until.value
        chosen = {
            (f"not_{col}" if self.exclude[col].value else col): c.value
            for col, c in self.filters.items()
        }
        return LogFilter.of(
            **chosen,
            since=self._midnight(self.since.value),
            until=self._midnight(until + timedelta(days=1) if isinstance(until, date) else None),
            search=self.text.value,
        )

    def _midnight(self, day: date | None) -> datetime | None:
        """The instant ``day`` starts in the explorer's time zone."""
        if not isinstance(day, date):
            return None
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and parameters of the current filter values."""
        with self._reading() as store:
            return visible(self.filter(), store).sql()

    def headline(self) -> Headline:
        """Postbacks delivered and attempts failed for the current filters."""
        with self._reading() as store:
            return headline(store, self.filter())

    def total(self) -> int:
        """Attempt rows matching the current filters."""
        with self._reading() as store:
            return count_rows(store, self.filter())

    def rows(self) -> pl.DataFrame:
        """The current page of matching attempts, newest first."""
        with self._reading() as store:
            return attempt_rows(
                store, self.filter(), limit=PAGE, offset=(self.page.value - 1) * PAGE
            )

    def daily(self) -> pl.DataFrame:
        """Attempts and failed attempts per day of the explorer's time zone (the audit's
        day buckets; ``day`` is the instant the day starts). Dry runs
        and test fires (shown when the outcome filter names them) are attempts, never
        failures; paused rows (nothing sent) are neither."""
        with self._reading() as store:
            cond, params = visible(self.filter(), store).sql()
            return as_utc(
                store.sql(
                    f"""
                SELECT {bucket_sql("day", self.timezone)} AS day,
                    count(*) FILTER (WHERE outcome <> 'paused') AS attempts,
                    count(*) FILTER (WHERE outcome NOT IN {NOT_FAILURES}) AS failed
                FROM postback_log WHERE {cond} GROUP BY 1 HAVING attempts > 0 ORDER BY 1""",
                    params,
                )
            )

    # -- view ----------------------------------------------------------------------
    def kpi_text(self) -> str:
        """The headline as one line (see ``Headline.text``)."""
        return self.headline().text()

    def pager_text(self, total: int | None = None) -> str:
        """``rows 26–50 of 1,234 · page 2 of 50``."""
        total = self.total() if total is None else total
        pages = max(1, -(-total // PAGE))
        first = (self.page.value - 1) * PAGE + 1
        last = min(total, self.page.value * PAGE)
        if total == 0:
            return "no rows"
        if first > total:
            return f"page {self.page.value} is past the last page ({pages:,})"
        return f"rows {first:,}–{last:,} of {total:,} · page {self.page.value:,} of {pages:,}"

    def table_frame(self) -> pl.DataFrame:
        """The current page as text: times in UTC to the second, long texts cut."""
        rows = readable_rows(self.rows())
        return pl.DataFrame(
            {
                c: [
                    v.strftime(TIME_FORMAT)
                    if isinstance(v, datetime)
                    else shorten(cell(v), _WIDTH.get(c, 40))
                    for v in rows[c].to_list()
                ]
                for c in rows.columns
            },
            schema=dict.fromkeys(rows.columns, pl.String),
        )

    def _changed(self, _: Any) -> None:
        if self.page.value != 1:
            self.page.value = 1  # triggers a table refresh
        self.refresh()

    def refresh(self, chart: bool = True) -> None:
        """Query the log again for the current filters and redraw; when the log cannot be
        read any more, the headline says why (and the rest stays as it was)."""
        try:
            self._refresh(chart)
        except PostbackLabError as exc:
            self.kpi.value = (
                f"<b>cannot read the log {html.escape(str(self.store.path))}: "
                f"{html.escape(str(exc))}</b>"
            )

    def _refresh(self, chart: bool) -> None:
        total = self.total()
        pages = max(1, -(-total // PAGE))
        if self.page.max != pages:
            self.page.max = pages  # clamps the value, which refreshes the table
        note = f"<br><i>{html.escape(self.note)}</i>" if self.note else ""
        self.kpi.value = f"<b>{html.escape(self.kpi_text())}</b>{note}"
        self.pager.value = html.escape(self.pager_text(total))
        self.table.value = _ONE_LINE + render("", "", [("Attempts", self.table_frame())])
        if chart and _in_kernel():  # outside Jupyter the chart would print as text
            self.chart.clear_output(wait=True)
            with self.chart:  # the scripts come once, from _ipython_display_
                _display(_Html(chart_html(self._chart().to_dict(), bundled=False)))

    def _chart(self) -> alt.Chart:
        return daily_chart(self.daily(), self.timezone)

    def selection_plan(
        self, plan: PlanSource | None = None, *, rules: RulesSource | None = None
    ) -> Plan:
        """The undelivered dispatches matching the filters, as a Plan to resend: rows of
        ``plan`` when given (exact, with bodies), else rebuilt from the log (GET only),
        with each rule's ``success:`` check taken from ``rules`` when given (the log does
        not keep it: without it any 2xx counts as delivered)."""
        with self._reading() as store:
            return self._selection_plan(store, plan, rules)

    def _selection_plan(
        self, store: LogReader, plan: PlanSource | None, rules: RulesSource | None
    ) -> Plan:
        cond, params = visible(self.filter(), store).sql()
        ids = store.sql(
            f"""
            SELECT dispatch_id FROM postback_log WHERE {cond} AND dispatch_id IS NOT NULL
            EXCEPT SELECT dispatch_id FROM postback_log WHERE outcome = 'delivered'""",
            params,
        )["dispatch_id"]
        if plan is not None:
            p = plan if isinstance(plan, Plan) else read_plan(plan)
            return p.filter(pl.col("dispatch_id").is_in(ids.implode()))
        rows = store.sql(
            """
            SELECT DISTINCT ON (dispatch_id) dispatch_id, rule, transaction_id,
                   NULL AS event_type, status, offer_id, publisher_id, method, url,
                   NULL AS body, host, due_at, NULL AS headers, NULL AS timeout_s,
                   due_at AS occurred_at, NULL AS env_at, NULL AS sign_env
            FROM postback_log SEMI JOIN ids USING (dispatch_id)
            WHERE method = 'GET' ORDER BY dispatch_id, fired_at DESC""",
            ids=pl.DataFrame({"dispatch_id": ids}),
        )
        if rules is not None:
            rs = rules if isinstance(rules, RuleSet) else read_rules(rules)
            checks = {r.name: r.success.to_json() for r in rs if r.success}
            success = pl.col("rule").replace_strict(checks, default=None, return_dtype=pl.String)
            rows = rows.with_columns(success.alias("success"))
        # columns the log does not keep (headers, timeouts) are filled in by read_plan
        have = {c: t for c, t in PLAN_SCHEMA.items() if c in rows.columns}
        return read_plan(rows.cast(have))  # type: ignore[arg-type]

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def _ipython_display_(self) -> None:
        # the chart scripts (~1 MB) once, before the widget: each redraw of the chart then
        # sends only its spec through the widget
        _display(_Html(loader_html()))
        _display(self.widget)


def _box_width(options: list[Any]) -> str:
    """A filter box wide enough for its longest value (rule names are long), within
    220-420 px: the label takes ~90 px, a character ~7.5 px."""
    longest = max((len(str(o)) for o in options), default=0)
    return f"{min(420, max(220, 100 + round(longest * 7.5)))}px"


class _Html:
    """HTML text that IPython displays as such."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return self.text


def _display(obj: object) -> None:
    """IPython's ``display`` (untyped), called through a typed name."""
    from IPython.display import display

    show: Callable[[object], None] = display
    show(obj)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def explore(log: LogSource | AuditReport = None, *, timezone: str | None = None) -> Explorer:
    """An interactive explorer of the attempt log (a LogStore, a DuckDB path, or the log of
    an AuditReport). ``timezone``: the zone of the chart's days and of the since/until
    dates (default: the AuditReport's, else UTC)."""
    if timezone is None:
        timezone = log.timezone if isinstance(log, AuditReport) else "UTC"
    return Explorer(log, timezone=timezone)
