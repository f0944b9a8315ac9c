"""The Plan: an immutable dispatch plan that explains, filters, diffs and saves itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias

import polars as pl

from .._errors import PlanError
from .._util import first_line, plan_line, render
from ..events import Events, EventsSource
from ..rules import RuleSet, RulesSource
from ._build import (
    CONTRACT_COLUMNS,
    PLAN_SCHEMA,
    as_events,
    as_rules,
    env_at_of_text,
    mentions_env,
    plan_bucket,
)
from ._counts import Counts
from ._diff import PlanDiff, diff_frames
from ._explain import Explanation, TransactionExplanation, explain_rules, explain_transaction
from ._write import write_plan_frame


@dataclass(frozen=True)
class Plan:
    """One row per postback to fire (the dispatch plan), plus what it was built from.

    ``frame`` has the plan columns (``dispatch_id`` … ``due_at``, then ``headers``,
    ``timeout_s``, ``occurred_at``); ``rules``/``events`` are what it was built from (empty
    and None for a plan read from a file); ``body_errors`` counts, per rule, the rows whose
    body rendered to invalid JSON and were not planned.
    """

    frame: pl.DataFrame
    rules: RuleSet = field(default_factory=lambda: RuleSet(()))
    events: Events | None = None
    body_errors: dict[str, int] = field(default_factory=dict)
    # explain counts gathered while building, valid for ``_built`` (the frame as built)
    _counts: Counts | None = field(default=None, repr=False, compare=False)
    _built: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    # -- views ---------------------------------------------------------------
    def to_polars(self) -> pl.DataFrame:
        """The plan frame."""
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
        """Dispatches per host, most first."""
        return self.frame.group_by("host").len("dispatches").sort("dispatches", descending=True)

    def summary(self) -> str:
        """One line: how many postbacks, from how many rules to how many hosts, when due."""
        f = self.frame
        lo, hi = f["due_at"].min(), f["due_at"].max()
        return plan_line(f.height, f["rule"].n_unique(), f["host"].n_unique(), lo, hi)

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {r}: {d:,} to {h}" for r, d, h, *_ in self.by_rule().iter_rows()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Plan: {self.summary()}>"

    def _repr_html_(self) -> str:
        return render(
            "Dispatch plan",
            self.summary(),
            [
                ("Per rule", self.by_rule()),
                ("Per host", self.by_host().head(20)),
                ("First rows", self.frame.select(CONTRACT_COLUMNS).head(5)),
            ],
            quarantined=0 if self.quarantine is None else self.quarantine.height,
        )

    # -- verbs ---------------------------------------------------------------
    def filter(self, *predicates: Any, **constraints: Any) -> Plan:
        """A new plan with only the rows that match (Polars ``filter`` semantics).

        Times compare as instants whatever their zone: ``pl.col("due_at") >=
        datetime(2026, 3, 2, tzinfo=ZoneInfo("America/New_York"))`` works although the
        plan's times are UTC (Polars alone refuses to compare two zones)."""
        if not predicates and not constraints:
            return self
        try:
            return replace(self, frame=self.frame.filter(*predicates, **constraints))
        except pl.exceptions.SchemaError as exc:
            # the one other zone the comparison names: compare in it (same instants)
            zones = set(re.findall(r"Datetime\('[^']+', '([^']+)'\)", str(exc))) - {"UTC"}
            if len(zones) != 1:
                raise PlanError(
                    f"cannot filter the plan: {first_line(exc)} (compare times of one zone)"
                ) from exc
            zone = zones.pop()
        aware = [
            c for c, t in self.frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone
        ]
        view = self.frame.select(pl.int_range(pl.len()).alias("__row"), *aware).with_columns(
            pl.col(aware).dt.convert_time_zone(zone)
        )
        view = view.hstack(self.frame.drop(aware).get_columns())
        rows = view.filter(*predicates, **constraints)["__row"]
        return replace(
            self,
            frame=self.frame.with_row_index("__row")
            .filter(pl.col("__row").is_in(rows.implode()))
            .drop("__row"),
        )

    def explain(self) -> Explanation:
        """Per rule, how many events each reason excluded (wrong type, out of scope,
        status, rejection reason, goal, missing macro value, duplicate, invalid body);
        ``why(transaction_id)`` gives one transaction's verdicts."""
        events = self._events("explain")
        if self._counts is not None and self._built is self.frame:
            return Explanation(self._counts.to_frame())
        return explain_rules(events, self.rules, self.frame, self.body_errors)

    def why(self, transaction_id: str) -> TransactionExplanation:
        """Every rule's verdict, with its reason, for each event row of one transaction."""
        events = self._events("why")
        return explain_transaction(events, self.rules, self.frame, transaction_id)

    def _events(self, verb: str) -> Events:
        if self.events is None:
            raise PlanError(
                f"this plan was loaded from a file; {verb} needs the events and "
                "rules: rebuild it with build_plan(events, rules)"
            )
        return self.events

    def diff(self, other: Plan) -> PlanDiff:
        """What changes from this plan to ``other`` (added, removed, changed dispatches)."""
        return diff_frames(self.frame, other.frame)

    def write_parquet(self, path: str | Path) -> Path:
        """Write the plan frame as zstd Parquet (``read_plan`` reads it back); returns path.
        The file appears under its name only once complete."""
        return write_plan_frame(self.frame, path)


def build_plan(events: EventsSource, rules: RulesSource) -> Plan:
    """Evaluate ``rules`` over ``events`` into a dispatch plan (vectorised).

    ``events``: an Events value or anything ``read_events`` reads; ``rules``: a RuleSet or
    anything ``read_rules`` reads.
    """
    ev = as_events(events)
    rs = as_rules(rules)
    frame, counts = plan_bucket(ev.frame, rs)
    return Plan(frame, rs, ev, counts.body_errors(), counts, frame)


#: what takes a plan (``send``, ``reconcile``): a Plan, a plan frame, or a Parquet plan
#: file (or folder of parts) written by ``Plan.write_parquet``/``sink_plan``
PlanSource: TypeAlias = Plan | pl.DataFrame | str | Path


def read_plan(data: PlanSource) -> Plan:
    """A plan from a Parquet file written by ``write_parquet`` or ``sink_plan``, a folder
    of Parquet parts (a partitioned plan), or a frame (a Plan passes through)."""
    if isinstance(data, Plan):
        return data
    if isinstance(data, pl.DataFrame):
        frame, label = data, "<frame>"
    else:
        label = str(data)
        if Path(data).is_dir():  # a plan written in parts (plan --partitions): all of them
            data = Path(data) / "*.parquet"
        try:
            frame = pl.read_parquet(data)
        except FileNotFoundError:
            raise PlanError(f"{label}: no such plan file") from None
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise PlanError(f"{label}: not a Parquet plan ({first_line(exc)})") from exc
    missing = [c for c in CONTRACT_COLUMNS if c not in frame.columns]
    if missing:
        raise PlanError(f"{label}: not a dispatch plan, missing columns {', '.join(missing)}")
    if "env_at" not in frame.columns and mentions_env(frame):
        if not isinstance(data, pl.DataFrame):
            raise PlanError(
                f"{label}: written by an older postback_lab that did not record where "
                "{env:...} secrets stand; build the plan again with postback-lab plan"
            )
        frame = frame.with_columns(env_at_of_text(frame))  # a frame built by hand
    for c, dt in PLAN_SCHEMA.items():
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dt).alias(c))
    return Plan(frame.select(list(PLAN_SCHEMA)).cast(PLAN_SCHEMA))  # type: ignore[arg-type]
