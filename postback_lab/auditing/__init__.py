"""Auditing: reconcile the plan with the log (delivered, failed, missed), backfill what
is missing exactly once, and audit delivery failure rates per group, with charts."""

from ..store import PruneResult, open_for_reading, prune, pruned_before, snapshot
from ._audit import audit, wilson
from ._backfill import BACKFILL_DEFAULTS, BackfillResult, backfill, backfill_sync
from ._charts import audit_chart, daily_chart
from ._filters import COLUMNS, LogFilter, natural_key
from ._headline import Headline, headline, headline_sql
from ._logrows import (
    attempt_rows,
    count_rows,
    export_format,
    export_rows,
    readable_rows,
    visible,
)
from ._reconcile import Reconciliation, reconcile
from ._report import METRICS, AuditReport
from ._sql import DERIVED, NOT_FAILURES, bucket_sql, check_timezone, period_sql
from ._vega import chart_html, loader_html

__all__ = [
    "BACKFILL_DEFAULTS",
    "COLUMNS",
    "DERIVED",
    "METRICS",
    "NOT_FAILURES",
    "AuditReport",
    "BackfillResult",
    "Headline",
    "LogFilter",
    "PruneResult",
    "Reconciliation",
    "attempt_rows",
    "audit",
    "audit_chart",
    "backfill",
    "backfill_sync",
    "bucket_sql",
    "chart_html",
    "check_timezone",
    "count_rows",
    "daily_chart",
    "export_format",
    "export_rows",
    "headline",
    "headline_sql",
    "loader_html",
    "natural_key",
    "open_for_reading",
    "period_sql",
    "prune",
    "pruned_before",
    "readable_rows",
    "reconcile",
    "snapshot",
    "visible",
    "wilson",
]
