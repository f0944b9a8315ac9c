"""Auditing: reconcile the plan with the log (delivered, failed, missed), backfill what
is missing exactly once, and audit delivery failure rates per group, with charts.

The backfill names load on first use (PEP 562): backfill sends, so it brings the sender
and its HTTP clients, which ``audit``, ``reconcile`` and the log reads do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._util import lazy_attributes
from ..store import PruneResult, open_for_reading, prune, pruned_before, snapshot
from ._audit import audit, wilson
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

if TYPE_CHECKING:  # for type checkers and readers; at run time ``__getattr__`` loads them
    from ._backfill import BACKFILL_DEFAULTS, BackfillResult, backfill, backfill_sync

#: name -> the module of this package that defines it, imported on first use
_LAZY = dict.fromkeys(
    ("BACKFILL_DEFAULTS", "BackfillResult", "backfill", "backfill_sync"), "_backfill"
)

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

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
