"""postback_lab: which postbacks should have fired, which never reached the partner, and
how to backfill them exactly once — then audit delivery failures.

    import postback_lab as pbl
    events = pbl.read_events("events.csv")
    plan = pbl.build_plan(events, "postbacks.yaml")

The package reads as the flow, each stage a subpackage that imports only the ones before
it: ``events`` (event logs -> the canonical frame), ``rules`` (``postbacks.yaml``), ``plan``
(the dispatch plan), ``store`` (the DuckDB attempt log), ``sending`` (the async sender)
and ``auditing`` (reconcile, backfill, audit), all on a bottom layer ``_util`` (durations,
times, the dispatch key, DuckDB, HTML) and ``_errors``; ``notebook`` (the widget
explorer), ``cli``, ``receiver`` and ``sample`` sit at the edges. Everything public is
re-exported here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import scale as _scale  # noqa: F401  (registers "delta:PATH" logs for audit & co)
from ._errors import (
    DeliveryError,
    EventsError,
    InputError,
    LogImportError,
    PlanError,
    PostbackLabError,
    RuleValidationError,
    StoreError,
    StoreLockedError,
)
from ._version import __version__
from .auditing import (
    AuditReport,
    BackfillResult,
    Reconciliation,
    audit,
    backfill,
    backfill_sync,
    reconcile,
)
from .events import Events, read_events
from .plan import (
    Explanation,
    Plan,
    PlanDiff,
    TransactionExplanation,
    build_plan,
    read_plan,
    write_plan,
)
from .receiver import Receiver
from .rules import Rule, RuleSet, read_rules
from .sending import Breaker, Retry, SendOptions, SendResult, send, send_sync
from .store import ImportResult, LogStore, import_log

if TYPE_CHECKING:  # the explorer loads (with ipywidgets) only when it is called
    from .notebook import Explorer

if "IPython" in sys.modules:  # in IPython/Jupyter our errors show as one short message
    from .notebook import install_ipython

    install_ipython()


def explore(
    log: LogStore | AuditReport | str | Path | None = None, *, timezone: str | None = None
) -> Explorer:
    """An ipywidgets explorer of the attempt log (imported only when called); ``timezone``:
    the zone of its days (default: an AuditReport's, else UTC)."""
    from .notebook import explore as _explore

    return _explore(log, timezone=timezone)


__all__ = [
    "AuditReport",
    "BackfillResult",
    "Breaker",
    "DeliveryError",
    "Events",
    "EventsError",
    "Explanation",
    "ImportResult",
    "InputError",
    "LogImportError",
    "LogStore",
    "Plan",
    "PlanDiff",
    "PlanError",
    "PostbackLabError",
    "Receiver",
    "Reconciliation",
    "Retry",
    "Rule",
    "RuleSet",
    "RuleValidationError",
    "SendOptions",
    "SendResult",
    "StoreError",
    "StoreLockedError",
    "TransactionExplanation",
    "__version__",
    "audit",
    "backfill",
    "backfill_sync",
    "build_plan",
    "explore",
    "import_log",
    "read_events",
    "read_plan",
    "read_rules",
    "reconcile",
    "send",
    "send_sync",
    "write_plan",
]
