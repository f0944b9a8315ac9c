"""A plan written in parts (one Parquet file per bucket) and what planning it found."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .._errors import InputError
from .._util import plan_line, render
from ..events import QUARANTINE_SCHEMA
from ..plan import Explanation, Plan, read_plan

_PART = re.compile(r"part-\d{5}(?:-.*)?\.parquet")


def part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def prepare_output(output: str | Path) -> Path:
    """The output folder, created; the parts of an earlier plan in it are removed (only
    those: other files are left alone). A file in the way is an InputError."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(
            f"{out}: a partitioned plan is a folder of Parquet parts, and this is a file; "
            "name a folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file() and _PART.fullmatch(old.name):
            old.unlink()
    return out


def plan_stats(plan: pl.LazyFrame) -> tuple[pl.DataFrame, int]:
    """Per rule (dispatches, a host, due range) and the number of hosts of a plan."""
    per_rule = (
        plan.group_by("rule")
        .agg(
            pl.len().alias("dispatches"),
            pl.col("host").min(),
            pl.col("due_at").min().alias("first_due"),
            pl.col("due_at").max().alias("last_due"),
        )
        .collect()
    )
    hosts = plan.select(pl.col("host").n_unique()).collect().item()
    return per_rule, int(hosts)


@dataclass(frozen=True)
class PartitionedPlan:
    """A plan planned in buckets and written as Parquet parts under ``path`` (a folder or
    a URI), with the explain counts of every bucket added up.

    ``read_plan(path)`` (or ``to_plan()``) reads it back as one Plan; ``postback-lab send
    PATH`` sends it, ``--shard K/N`` a share of its hosts.
    """

    path: str
    rows: int
    parts: int
    explanation: Explanation
    per_rule: pl.DataFrame  # rule, dispatches, host, first_due, last_due
    hosts: int
    engine: str
    seconds: float
    #: the largest peak memory of one worker process (MiB), when the engine measures it
    worker_peak_mib: float | None = None
    #: the rows that could not be read (source, line, reason, raw), when the engine read
    #: the events itself (``plan_partitioned`` of Parquet files)
    quarantine: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    #: how the events were read (a preset guessed, naive times read as UTC …)
    notes: tuple[str, ...] = ()

    def explain(self) -> Explanation:
        """Per rule, how many events each reason excluded, summed over the buckets."""
        return self.explanation

    def to_plan(self) -> Plan:
        """The whole plan in memory, as ``read_plan`` reads it."""
        return read_plan(self.path)

    def __len__(self) -> int:
        return self.rows

    def by_rule(self) -> pl.DataFrame:
        """Dispatches, a host and the due-time range per rule (rules in file order)."""
        order = self.explanation.frame["rule"].unique(maintain_order=True)
        return pl.DataFrame({"rule": order}).join(
            self.per_rule, on="rule", how="inner", maintain_order="left"
        )

    def summary(self) -> str:
        """One line: how many postbacks, from how many rules to how many hosts, when due,
        and where the parts are."""
        where = f"written to {self.path} in {self.parts} parts (engine {self.engine})"
        lo, hi = self.per_rule["first_due"].min(), self.per_rule["last_due"].max()
        rules = self.per_rule.height
        return f"{plan_line(self.rows, rules, self.hosts, lo, hi)}; {where}"

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {r}: {d:,} to {h}" for r, d, h, *_ in self.by_rule().iter_rows()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<PartitionedPlan: {self.rows:,} postbacks in {self.parts} parts at {self.path}>"

    def _repr_html_(self) -> str:
        return render(
            "Dispatch plan (partitioned)",
            self.summary(),
            [
                ("Per rule", self.by_rule()),
                ("Why events did not fire", self.explain().to_polars(labels=True)),
            ],
        )
