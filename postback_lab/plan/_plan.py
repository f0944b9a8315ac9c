"""The Plan: an immutable dispatch plan that explains, filters, diffs and saves itself."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from .._errors import PlanError
from ..events import Events
from ..rules import RuleSet
from ._build import CONTRACT_COLUMNS, PLAN_SCHEMA, as_events, as_rules, build_frame
from ._diff import PlanDiff, diff_frames
from ._explain import Explanation, TransactionExplanation, explain_rules, explain_transaction


@dataclass(frozen=True)
class Plan:
    """One row per postback to fire (DESIGN contract 3), plus what it was built from."""

    frame: pl.DataFrame
    rules: RuleSet = field(default_factory=lambda: RuleSet(()))
    events: Events | None = None
    body_errors: dict[str, int] = field(default_factory=dict)

    # -- views ---------------------------------------------------------------
    def to_polars(self) -> pl.DataFrame:
        return self.frame

    def __len__(self) -> int:
        return self.frame.height

    @property
    def quarantine(self) -> pl.DataFrame | None:
        """Event rows that could not be read (None for a plan loaded from a file)."""
        return None if self.events is None else self.events.quarantine

    def by_rule(self) -> pl.DataFrame:
        """Dispatches, transactions and due-time range per rule."""
        return self.frame.group_by("rule", maintain_order=True).agg(
            pl.len().alias("dispatches"),
            pl.col("host").first(),
            pl.col("due_at").min().alias("first_due"),
            pl.col("due_at").max().alias("last_due"),
        )

    def by_host(self) -> pl.DataFrame:
        return self.frame.group_by("host").len("dispatches").sort("dispatches", descending=True)

    def summary(self) -> str:
        n = self.frame.height
        if n == 0:
            return "empty plan: no postback to fire"
        lo, hi = self.frame["due_at"].min(), self.frame["due_at"].max()
        rules = self.frame["rule"].n_unique()
        hosts = self.frame["host"].n_unique()
        return (
            f"{n:,} postbacks to fire from {rules} rules to {hosts} hosts, due "
            f"{lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC"
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {r}: {d:,} to {h}" for r, d, h, *_ in self.by_rule().iter_rows()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Plan: {self.summary()}>"

    def _repr_html_(self) -> str:
        from ..notebook._html import render

        return render(
            "report.html.j2",
            title="Dispatch plan",
            summary=self.summary(),
            tables=[
                ("Per rule", self.by_rule()),
                ("Per host", self.by_host().head(20)),
                ("First rows", self.frame.select(CONTRACT_COLUMNS).head(5)),
            ],
            quarantined=0 if self.quarantine is None else self.quarantine.height,
        )

    # -- verbs ---------------------------------------------------------------
    def filter(self, *predicates: Any, **constraints: Any) -> Plan:
        """A new plan with only the rows that match (Polars ``filter`` semantics)."""
        if not predicates and not constraints:
            return self
        return replace(self, frame=self.frame.filter(*predicates, **constraints))

    def explain(self, transaction_id: str | None = None) -> Explanation | TransactionExplanation:
        """Per rule, how many events each reason excluded; or, for one transaction, every
        rule's verdict with its reason."""
        if self.events is None:
            raise PlanError(
                "this plan was loaded from a file; explain needs the events and "
                "rules: rebuild it with build_plan(events, rules)"
            )
        if transaction_id is not None:
            return explain_transaction(self.events, self.rules, self.frame, transaction_id)
        return explain_rules(self.events, self.rules, self.frame, self.body_errors)

    def diff(self, other: Plan) -> PlanDiff:
        """What changes from this plan to ``other`` (added, removed, changed dispatches)."""
        return diff_frames(self.frame, other.frame)

    def write_parquet(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame.write_parquet(path, compression="zstd")
        return path


def build_plan(events: Any, rules: Any) -> Plan:
    """Evaluate ``rules`` over ``events`` into a dispatch plan (vectorised).

    ``events``: an Events value or anything ``read_events`` reads; ``rules``: a RuleSet or
    anything ``read_rules`` reads.
    """
    ev = as_events(events)
    rs = as_rules(rules)
    frame, body_errors = build_frame(ev, rs)
    return Plan(frame, rs, ev, body_errors)


def read_plan(source: str | Path | pl.DataFrame) -> Plan:
    """A plan from a Parquet file written by ``write_parquet`` (or a frame)."""
    if isinstance(source, pl.DataFrame):
        frame, label = source, "<frame>"
    else:
        label = str(source)
        try:
            frame = pl.read_parquet(source)
        except FileNotFoundError:
            raise PlanError(f"{label}: no such plan file") from None
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise PlanError(f"{label}: not a Parquet plan ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in CONTRACT_COLUMNS if c not in frame.columns]
    if missing:
        raise PlanError(f"{label}: not a dispatch plan, missing columns {', '.join(missing)}")
    for c, dt in PLAN_SCHEMA.items():
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dt).alias(c))
    return Plan(frame.select(list(PLAN_SCHEMA)).cast(PLAN_SCHEMA))  # type: ignore[arg-type]
