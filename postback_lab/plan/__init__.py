"""Plan: evaluate rules over events into the dispatch plan, one row per postback to fire,
that explains itself (``explain``, ``why``), filters, diffs and saves; ``sink_plan``
streams a plan to Parquet, in bounded memory for events larger than memory."""

from ._build import CONTRACT_COLUMNS, PLAN_SCHEMA, with_dispatch_ids
from ._diff import PlanDiff
from ._explain import Explanation, TransactionExplanation
from ._plan import Plan, PlanSource, build_plan, read_plan
from ._stream import WrittenPlan, sink_plan

__all__ = [
    "CONTRACT_COLUMNS",
    "PLAN_SCHEMA",
    "Explanation",
    "Plan",
    "PlanDiff",
    "PlanSource",
    "TransactionExplanation",
    "WrittenPlan",
    "build_plan",
    "read_plan",
    "sink_plan",
    "with_dispatch_ids",
]
