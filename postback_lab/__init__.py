"""postback_lab: which postbacks should have fired, which never reached the partner, and
how to backfill them exactly once — then audit delivery failures.

    import postback_lab as pbl
    events = pbl.read_events("events.csv")
    plan = pbl.build_plan(events, "postbacks.yaml")

The package reads as the flow, in layers, each a subpackage that imports only the ones
before it (``tests/test_layers.py`` checks it)::

    _errors, _version, _util  <  events  <  rules  <  plan  <  store  <  sending  <
    auditing  <  scale  <  notebook  <  cli, receiver, sample

``_util`` (durations, times, the dispatch key, DuckDB, HTML) and ``_errors`` at the bottom;
``events`` (event logs -> the canonical frame), ``rules`` (``postbacks.yaml``), ``plan``
(the dispatch plan), ``store`` (the DuckDB attempt log), ``sending`` (the async sender),
``auditing`` (reconcile, backfill, audit), ``scale`` (across cores, shards and Delta Lake),
``notebook`` (the widget explorer); ``cli`` (the command line), ``receiver`` and ``sample``
at the top. Everything public is re-exported here, each name imported from its stage on
first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

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
from ._util import lazy_attributes
from ._version import __version__

if TYPE_CHECKING:  # for type checkers and readers; at run time ``__getattr__`` loads them
    from .auditing import (
        AuditReport,
        BackfillResult,
        Reconciliation,
        audit,
        backfill,
        backfill_sync,
        reconcile,
    )
    from .events import Events, EventsSource, read_events
    from .notebook import Explorer
    from .plan import (
        Explanation,
        Plan,
        PlanDiff,
        PlanSource,
        TransactionExplanation,
        build_plan,
        read_plan,
        sink_plan,
    )
    from .receiver import Receiver
    from .rules import Rule, RuleSet, RulesSource, read_rules
    from .sending import (
        Breaker,
        Replay,
        Retry,
        SendOptions,
        SendResult,
        send,
        send_sync,
        test_rule,
        test_rule_sync,
    )
    from .store import ImportResult, LogSource, LogStore, import_log

#: public name -> the subpackage that defines it, imported on first use (PEP 562): a bare
#: ``import postback_lab`` (and the CLI's --help) loads no polars, DuckDB or httpx
_LAZY = {
    **dict.fromkeys(
        (
            "AuditReport",
            "BackfillResult",
            "Reconciliation",
            "audit",
            "backfill",
            "backfill_sync",
            "reconcile",
        ),
        "auditing",
    ),
    **dict.fromkeys(("Events", "EventsSource", "read_events"), "events"),
    **dict.fromkeys(
        (
            "Explanation",
            "Plan",
            "PlanDiff",
            "PlanSource",
            "TransactionExplanation",
            "build_plan",
            "read_plan",
            "sink_plan",
        ),
        "plan",
    ),
    "Receiver": "receiver",
    **dict.fromkeys(("Rule", "RuleSet", "RulesSource", "read_rules"), "rules"),
    **dict.fromkeys(
        (
            "Breaker",
            "Replay",
            "Retry",
            "SendOptions",
            "SendResult",
            "send",
            "send_sync",
            "test_rule",
            "test_rule_sync",
        ),
        "sending",
    ),
    **dict.fromkeys(("ImportResult", "LogSource", "LogStore", "import_log"), "store"),
}


if "IPython" in sys.modules:  # in IPython/Jupyter our errors show as one short message
    from .notebook import install_ipython

    install_ipython()


def explore(log: LogSource | AuditReport = None, *, timezone: str | None = None) -> Explorer:
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
    "EventsSource",
    "Explanation",
    "ImportResult",
    "InputError",
    "LogImportError",
    "LogSource",
    "LogStore",
    "Plan",
    "PlanDiff",
    "PlanError",
    "PlanSource",
    "PostbackLabError",
    "Receiver",
    "Reconciliation",
    "Replay",
    "Retry",
    "Rule",
    "RuleSet",
    "RuleValidationError",
    "RulesSource",
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
    "sink_plan",
    "test_rule",
    "test_rule_sync",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
