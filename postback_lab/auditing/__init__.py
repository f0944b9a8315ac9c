"""Auditing: reconcile the plan with the log (delivered, failed, missed), backfill what
is missing exactly once, and audit delivery failure rates per group, with charts."""

from ._audit import audit, wilson
from ._backfill import BackfillResult, backfill, backfill_sync
from ._charts import audit_chart, daily_chart
from ._reconcile import Reconciliation, reconcile
from ._report import METRICS, AuditReport
from ._sql import DERIVED, period_sql

__all__ = [
    "DERIVED",
    "METRICS",
    "AuditReport",
    "BackfillResult",
    "Reconciliation",
    "audit",
    "audit_chart",
    "backfill",
    "backfill_sync",
    "daily_chart",
    "period_sql",
    "reconcile",
    "wilson",
]
