"""postback_lab: which postbacks should have fired, which never reached the partner, and
how to backfill them exactly once — then audit delivery failures.

    import postback_lab as pbl
    events = pbl.read_events("events.csv")
    plan = pbl.build_plan(events, "postbacks.yaml")
"""

__version__ = "0.1.0"  # first: submodules read it (the sender's User-Agent)

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
from .audit import AuditReport, Reconciliation, audit, backfill, backfill_sync, reconcile
from .events import Events, read_events
from .plan import Explanation, Plan, PlanDiff, TransactionExplanation, build_plan, read_plan
from .receiver import Receiver
from .rules import Rule, RuleSet, read_rules
from .send import Retry, SendResult, send, send_sync
from .store import LogStore, import_log


def explore(log: object = None) -> object:
    """An ipywidgets explorer of the attempt log (imported only when called)."""
    from .notebook._explore import explore as _explore

    return _explore(log)


__all__ = [
    "AuditReport",
    "DeliveryError",
    "Events",
    "EventsError",
    "Explanation",
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
    "SendResult",
    "StoreError",
    "StoreLockedError",
    "TransactionExplanation",
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
]
