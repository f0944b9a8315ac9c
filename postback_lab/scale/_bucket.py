"""One bucket of events -> its part of the plan and its explain counts.

Every firing condition looks at one row, and the dedupe and rule 7 only compare rows of
one ``transaction_id``: events bucketed by a hash of ``transaction_id`` plan
independently, and the buckets' plans together are the one-process plan. Rows carry their
place in the input (``ROW_NR``) so that, after a shuffle, a bucket is put back in input
order and ties in the dedupe (same transaction, status and time) keep the same row.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from ..events import QUARANTINE_SCHEMA, Events
from ..plan import PLAN_SCHEMA, Explanation, build_plan
from ..rules import RuleSet

#: the column carrying each event's place in the input (file, then line)
ROW_NR = "__row_nr"
#: the column carrying each event's bucket
BUCKET = "__bucket"
#: the explain counts of a bucket: (rule, reason, events), summed over buckets
COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "reason": pl.String(),
    "events": pl.Int64(),
}


def plan_bucket(
    table: pa.Table | pl.DataFrame, rules: RuleSet, where: Sequence[pl.Expr] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plan rows and the explain counts of one bucket of canonical events.

    The one place that plans a bucket: ``table`` holds whole transactions (with ``ROW_NR``
    when it went through a shuffle); it is put back in input order and planned exactly as
    ``build_plan`` plans everything in one process. ``where``: only the plan rows these
    predicates keep (``Plan.filter``: a window, some rules); the counts are of every event.
    """
    frame = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if ROW_NR in frame.columns:
        frame = frame.sort(ROW_NR, maintain_order=True)
    frame = frame.drop([c for c in (ROW_NR, BUCKET) if c in frame.columns])
    events = Events(frame, pl.DataFrame(schema=QUARANTINE_SCHEMA))
    plan = build_plan(events, rules)
    counts = plan.explain().frame.cast(COUNTS_SCHEMA)  # type: ignore[arg-type]
    return plan.filter(*where).frame, counts


def sum_counts(parts: list[pl.DataFrame], rules: RuleSet) -> Explanation:
    """The explain counts of all buckets added up, rules in their file order."""
    if not parts:
        return Explanation(pl.DataFrame(schema=COUNTS_SCHEMA))
    long = (
        pl.concat(parts).group_by("rule", "reason", maintain_order=True).agg(pl.col("events").sum())
    )
    order = pl.DataFrame({"rule": [r.name for r in rules]}).with_row_index("__i")
    long = long.join(order, on="rule", how="left", maintain_order="left").sort(
        "__i", maintain_order=True
    )
    return Explanation(long.drop("__i"))


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with ``string`` for ``large_string``/``string_view`` (Spark's Arrow
    exchange refuses the large and view types Polars writes)."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, f.nullable))
    return pa.schema(fields)


#: the plan's columns as Arrow, as they cross into Spark
PLAN_ARROW = plain_schema(pl.DataFrame(schema=PLAN_SCHEMA).to_arrow().schema)


def as_plain_arrow(frame: pl.DataFrame) -> pa.Table:
    """A frame as Arrow with plain ``string`` columns (see ``plain_schema``)."""
    table = frame.to_arrow()
    return table.cast(plain_schema(table.schema))
