"""The log explorer: ipywidgets filters over the DuckDB log, re-queried on every change.

Imported lazily (``postback_lab.explore``) so the package never needs a notebook.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .._util import as_utc, render
from ..auditing import DERIVED, AuditReport, daily_chart
from ..plan import PLAN_SCHEMA, Plan, read_plan
from ..store import LogStore, open_log

if TYPE_CHECKING:
    import altair as alt

PAGE = 25
_FILTERS = ("rule", "host", "publisher_id", "offer_id", "outcome", "status_code")


class Explorer:
    """Filter controls, a KPI line, a chart and a paged table over ``postback_log``."""

    def __init__(self, log: LogStore | AuditReport | str | Path | None = None) -> None:
        import ipywidgets as w

        if isinstance(log, AuditReport):
            src = log.source
            log = src.log if src is not None and src.log is not None else log.store_path
        self.store, self._owned = open_log(log)
        self._w = w
        options = self._options()
        self.filters: dict[str, Any] = {
            col: w.SelectMultiple(
                options=options[col], description=col, rows=4, layout=w.Layout(width="220px")
            )
            for col in _FILTERS
        }
        self.since = w.DatePicker(description="since")
        self.until = w.DatePicker(description="until")
        self.text = w.Text(description="search", placeholder="text in URL or error")
        self.page = w.BoundedIntText(
            value=1, min=1, max=10**9, description="page", layout=w.Layout(width="160px")
        )
        self.kpi = w.HTML()
        self.table = w.HTML()
        self.chart = w.Output()
        for control in (*self.filters.values(), self.since, self.until, self.text):
            control.observe(self._changed, names="value")
        self.page.observe(lambda _: self.refresh(chart=False), names="value")
        self.widget = w.VBox(
            [
                w.HBox(list(self.filters.values())),
                w.HBox([self.since, self.until, self.text, self.page]),
                self.kpi,
                self.chart,
                self.table,
            ]
        )
        self.refresh()

    # -- queries -----------------------------------------------------------------
    def _options(self) -> dict[str, list[Any]]:
        out = {}
        for col in _FILTERS:
            values = self.store.sql(
                f"SELECT DISTINCT {col} AS v FROM postback_log WHERE {col} IS NOT NULL ORDER BY 1"
            )["v"].to_list()
            out[col] = values
        return out

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and parameters of the current filter values."""
        conds, params = ["outcome NOT IN ('dry_run', 'test')"], []
        for col, control in self.filters.items():
            if control.value:
                conds.append(f"{col} IN ({', '.join('?' for _ in control.value)})")
                params.extend(control.value)
        if self.since.value:
            conds.append("fired_at >= ?")
            params.append(datetime.combine(self.since.value, time.min))
        if self.until.value:
            conds.append("fired_at < ?")
            params.append(datetime.combine(self.until.value, time.max))
        if self.text.value.strip():
            conds.append("(url ILIKE ? OR error ILIKE ?)")
            params += [f"%{self.text.value.strip()}%"] * 2
        return " AND ".join(conds), params

    def kpis(self) -> dict[str, Any]:
        cond, params = self.where()
        row = self.store.sql(
            f"""
            SELECT count(*) AS attempts,
                   count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
                   count(*) FILTER (WHERE outcome <> 'delivered') AS failed,
                   quantile_cont(latency_ms, 0.95) AS p95
            FROM postback_log WHERE {cond}""",
            params,
        ).row(0, named=True)
        return row

    def rows(self) -> pl.DataFrame:
        cond, params = self.where()
        offset = (self.page.value - 1) * PAGE
        return self.store.sql(
            f"""
            SELECT fired_at, rule, transaction_id, host, status_code, outcome, latency_ms,
                   error, url
            FROM postback_log WHERE {cond} ORDER BY fired_at DESC, dispatch_id, attempt
            LIMIT {PAGE} OFFSET {offset}""",
            params,
        )

    def daily(self) -> pl.DataFrame:
        """Attempts and failures per UTC day (the audit's day buckets)."""
        cond, params = self.where()
        return as_utc(
            self.store.sql(
                f"""
            SELECT {DERIVED["day"]} AS day, count(*) AS attempts,
                   count(*) FILTER (WHERE outcome <> 'delivered') AS failed
            FROM postback_log WHERE {cond} GROUP BY 1 ORDER BY 1""",
                params,
            )
        )

    # -- view ----------------------------------------------------------------------
    def kpi_text(self) -> str:
        k = self.kpis()
        n = k["attempts"]
        rate = f"{k['delivered'] / n:.1%}" if n else "–"
        p95 = f"{k['p95']:.0f} ms" if k["p95"] is not None else "–"
        return f"{n:,} attempts · {rate} delivered · {k['failed']:,} failed · p95 {p95}"

    def _changed(self, _: Any) -> None:
        if self.page.value != 1:
            self.page.value = 1  # triggers a table refresh
        self.refresh()

    def refresh(self, chart: bool = True) -> None:
        self.kpi.value = f"<b>{html.escape(self.kpi_text())}</b>"
        self.table.value = render("", "", [("Attempts", self.rows())])
        if chart and _in_kernel():  # outside Jupyter the chart would print as text
            self.chart.clear_output(wait=True)
            with self.chart:
                _display(self._chart())

    def _chart(self) -> alt.Chart:
        return daily_chart(self.daily())

    def selection_plan(self, plan: Plan | str | Path | None = None) -> Plan:
        """The undelivered dispatches matching the filters, as a Plan to resend: rows of
        ``plan`` when given (exact, with bodies), else rebuilt from the log (GET only)."""
        cond, params = self.where()
        ids = self.store.sql(
            f"""
            SELECT dispatch_id FROM postback_log WHERE {cond} AND dispatch_id IS NOT NULL
            EXCEPT SELECT dispatch_id FROM postback_log WHERE outcome = 'delivered'""",
            params,
        )["dispatch_id"]
        if plan is not None:
            p = plan if isinstance(plan, Plan) else read_plan(plan)
            return p.filter(pl.col("dispatch_id").is_in(ids.implode()))
        rows = self.store.sql(
            """
            SELECT DISTINCT ON (dispatch_id) dispatch_id, rule, transaction_id,
                   NULL AS event_type, status, offer_id, publisher_id, method, url,
                   NULL AS body, host, due_at, NULL AS headers, NULL AS timeout_s,
                   due_at AS occurred_at, NULL AS env_at, NULL AS sign_env
            FROM postback_log SEMI JOIN ids USING (dispatch_id)
            WHERE method = 'GET' ORDER BY dispatch_id, fired_at DESC""",
            ids=pl.DataFrame({"dispatch_id": ids}),
        )
        return read_plan(rows.cast(PLAN_SCHEMA))  # type: ignore[arg-type]

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def _ipython_display_(self) -> None:
        _display(self.widget)


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


def explore(log: LogStore | AuditReport | str | Path | None = None) -> Explorer:
    """An interactive explorer of the attempt log (a LogStore, a DuckDB path, or the log of
    an AuditReport)."""
    return Explorer(log)
