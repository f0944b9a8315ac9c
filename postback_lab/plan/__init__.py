"""Plan: evaluate rules over events into the dispatch plan (DESIGN contract 3)."""

from ._build import CONTRACT_COLUMNS, PLAN_SCHEMA
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
]
