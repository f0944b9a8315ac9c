"""``sink_plan``: events x rules -> a Parquet plan file, written as it is built.

The plan never has to be whole in memory: each rule's rows go to the file as soon as they
are rendered (while the next rule is evaluated). Events that fit are planned in one pass;
a Parquet source of more than ``bucket_rows`` events is regrouped on disk into buckets of
whole transactions (``_spill``) planned one at a time, so memory follows the bucket, not
the file. Either way the file holds the same postbacks and ``explain`` the same counts
(the row order differs between the two: bucket by bucket, then rule by rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Unpack

import polars as pl

from .._errors import EventsError
from .._util import plan_line
from ..events import QUARANTINE_SCHEMA, Events, EventsSource, ReadKeywords, one_chunk, read_events
from ..rules import RuleSet, RulesSource
from ._build import PLAN_SCHEMA, as_rules, plan_chunks
from ._counts import ALWAYS, Counts
from ._evaluate import columns_used
from ._explain import Explanation
from ._spill import buckets, count_rows, parquet_files
from ._write import plan_writer

#: events planned in one pass; a larger Parquet source is planned in buckets of this size
BUCKET_ROWS = 12_000_000


@dataclass
class _RuleStats:
    dispatches: int = 0
    host: str | None = None
    first_due: datetime | None = None
    last_due: datetime | None = None

    def add(self, chunk: pl.DataFrame) -> None:
        self.dispatches += chunk.height
        self.host = self.host or chunk["host"][0]
        lo, hi = chunk["due_at"].min(), chunk["due_at"].max()
        assert isinstance(lo, datetime) and isinstance(hi, datetime)
        self.first_due = lo if self.first_due is None else min(self.first_due, lo)
        self.last_due = hi if self.last_due is None else max(self.last_due, hi)


@dataclass(frozen=True)
class WrittenPlan:
    """A plan written to ``path`` (``read_plan(path)`` loads it): how many postbacks, per
    rule, and why the other events did not fire, without holding the plan in memory."""

    path: Path
    rules: RuleSet
    counts: Counts
    stats: dict[str, _RuleStats] = field(repr=False)
    hosts: int = 0
    buckets: int = 1
    quarantine: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return sum(s.dispatches for s in self.stats.values())

    def by_rule(self) -> pl.DataFrame:
        """Dispatches, host and due-time range per rule (as ``Plan.by_rule``)."""
        rows = [
            {
                "rule": r,
                "dispatches": s.dispatches,
                "host": s.host,
                "first_due": s.first_due,
                "last_due": s.last_due,
            }
            for r, s in self.stats.items()
        ]
        schema = {
            "rule": pl.String(),
            "dispatches": pl.UInt32(),
            "host": pl.String(),
            "first_due": PLAN_SCHEMA["due_at"],
            "last_due": PLAN_SCHEMA["due_at"],
        }
        return pl.DataFrame(rows, schema=schema)

    def explain(self) -> Explanation:
        """Per rule, how many events each reason excluded (as ``Plan.explain``)."""
        return Explanation(self.counts.to_frame())

    def summary(self) -> str:
        """One line, as ``Plan.summary`` says it."""
        firsts = [s.first_due for s in self.stats.values() if s.first_due is not None]
        lasts = [s.last_due for s in self.stats.values() if s.last_due is not None]
        if not firsts:
            return plan_line(0, 0, 0, None, None)
        return plan_line(len(self), len(self.stats), self.hosts, min(firsts), max(lasts))

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {r}: {s.dispatches:,} to {s.host}" for r, s in self.stats.items()]
        return "\n".join(lines)


def sink_plan(
    events: EventsSource,
    rules: RulesSource,
    path: str | Path,
    *,
    bucket_rows: int = BUCKET_ROWS,
    **read_options: Unpack[ReadKeywords],
) -> WrittenPlan:
    """Plan ``events`` (an Events value or anything ``read_events`` reads, with
    ``read_options`` such as ``preset=``) under ``rules`` straight into a Parquet file at
    ``path``: ``build_plan`` then ``Plan.write_parquet``, streamed (a sink, in Polars'
    words), never whole in memory; ``read_plan(path)`` reads it back. Parquet sources of
    more than ``bucket_rows`` events are planned in buckets of whole transactions, in
    bounded memory. An Events value was read already: read options with it are an
    EventsError naming them (they would be ignored)."""
    if isinstance(events, Events) and read_options:
        raise EventsError(
            f"sink_plan got an Events value and read options "
            f"({', '.join(k + '=' for k in read_options)}): the events were read already; "
            "pass them to read_events, or give sink_plan the file instead"
        )
    rs = as_rules(rules)
    counts = Counts()
    stats: dict[str, _RuleStats] = {}
    hosts: set[str] = set()
    files = None if isinstance(events, Events) else parquet_files(events)
    rows = count_rows(files) if files else 0
    with plan_writer(path, PLAN_SCHEMA) as writer:

        def plan(frame: pl.DataFrame) -> None:
            for chunk in plan_chunks(frame, rs, counts):
                writer.write(chunk)
                stats.setdefault(chunk["rule"][0], _RuleStats()).add(chunk)
                hosts.update(chunk["host"].unique().to_list())

        if files and rows > bucket_rows:
            keep = tuple(columns_used(rs))
            parts = buckets(files, rows, bucket_rows, keep, **read_options)
            for frame in parts:
                plan(frame)
                del frame  # before the next bucket is read
            quarantine, notes, count = parts.quarantine, parts.notes, parts.count
        else:
            ev = events if isinstance(events, Events) else read_events(events, **read_options)
            quarantine, notes, count = ev.quarantine, tuple(ev.notes), 1
            frame = ev.frame
            if frame.n_chunks() > 1 and not isinstance(events, Events):
                # one copy in one chunk (planning gathers rows), the read batches let go
                # a few columns at a time
                columns = frame.get_columns()
                del frame, ev
                frame = one_chunk(columns)
            plan(frame)
    for r in rs:  # rules no event reached still show, with nothing fired
        counts.add(r.name, dict.fromkeys(ALWAYS, 0))
    order = {r.name: i for i, r in enumerate(rs)}
    ordered = dict(sorted(stats.items(), key=lambda kv: order[kv[0]]))
    return WrittenPlan(Path(path), rs, counts, ordered, len(hosts), count, quarantine, notes)
