"""Plan: evaluate rules over events into the dispatch plan, one row per postback to fire,
that explains itself (``explain``, ``why``), filters, diffs and saves."""

from ._build import CONTRACT_COLUMNS, PLAN_SCHEMA, with_dispatch_ids
from ._diff import PlanDiff
from ._explain import Explanation, TransactionExplanation
from ._plan import Plan, build_plan, read_plan

__all__ = [
    "CONTRACT_COLUMNS",
    "PLAN_SCHEMA",
    "Explanation",
    "Plan",
    "PlanDiff",
    "TransactionExplanation",
    "build_plan",
    "read_plan",
    "with_dispatch_ids",
]
