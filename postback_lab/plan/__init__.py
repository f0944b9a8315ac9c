"""Plan: evaluate rules over events into the dispatch plan, one row per postback to fire,
that explains itself (``explain``, ``why``), filters, diffs and saves; ``sink_plan``
streams a plan to Parquet, in bounded memory for events larger than memory (Parquet
events split into buckets of whole transactions on disk, slice by slice: ``slices``,
``spill_slice``, ``bucket_files``, ``read_bucket``, ``gathered``)."""

from ._build import CONTRACT_COLUMNS, PLAN_SCHEMA, with_dispatch_ids
from ._diff import PlanDiff
from ._evaluate import columns_used
from ._explain import Explanation, TransactionExplanation
from ._plan import Plan, PlanSource, build_plan, read_plan
from ._spill import (
    Slice,
    bucket_files,
    event_columns,
    gathered,
    parquet_files,
    read_bucket,
    slices,
    spill_slice,
)
from ._stream import WrittenPlan, sink_plan

__all__ = [
    "CONTRACT_COLUMNS",
    "PLAN_SCHEMA",
    "Explanation",
    "Plan",
    "PlanDiff",
    "PlanSource",
    "Slice",
    "TransactionExplanation",
    "WrittenPlan",
    "bucket_files",
    "build_plan",
    "columns_used",
    "event_columns",
    "gathered",
    "parquet_files",
    "read_bucket",
    "read_plan",
    "sink_plan",
    "slices",
    "spill_slice",
    "with_dispatch_ids",
]
