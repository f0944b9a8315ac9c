"""Auditing: reconcile the plan with the log (delivered, failed, missed), backfill what
is missing exactly once, and audit delivery failure rates per group, with charts."""

from ._audit import audit, wilson
from ._backfill import BackfillResult, backfill, backfill_sync
from ._charts import audit_chart, daily_chart
from ._filters import COLUMNS, LogFilter, natural_key
from ._headline import Headline, headline, headline_sql
from ._logrows import (
    PruneResult,
    attempt_rows,
    count_rows,
    export_rows,
    prune,
    pruned_before,
    visible,
)
from ._reconcile import Reconciliation, reconcile
from ._report import METRICS, AuditReport
from ._sql import DERIVED, period_sql

__all__ = [
    "COLUMNS",
    "DERIVED",
    "METRICS",
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
    "count_rows",
    "daily_chart",
    "export_rows",
    "headline",
    "headline_sql",
    "natural_key",
    "period_sql",
    "prune",
    "pruned_before",
    "reconcile",
    "visible",
    "wilson",
]
