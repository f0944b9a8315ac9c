"""Audit: reconcile the plan with the log, backfill what is missing, audit failure rates."""

from ._audit import METRICS, AuditReport, audit, wilson
from ._backfill import BackfillResult, backfill, backfill_sync
from ._reconcile import Reconciliation, reconcile

__all__ = [
    "METRICS",
    "AuditReport",
    "BackfillResult",
    "Reconciliation",
    "audit",
    "backfill",
    "backfill_sync",
    "reconcile",
    "wilson",
]
