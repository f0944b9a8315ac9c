"""The headline every view of the log leads with (the audit, the explorer, ``log show``),
computed one way so it reads the same everywhere.

Two figures, named for what they count:

- **delivery rate** = delivered postbacks / postbacks: a postback (one dispatch) counts
  as delivered when any of its attempts got a 2xx answer;
- **attempt failure rate** = failed attempts / attempts: every HTTP try counts, retries
  included, so it is higher than 1 - delivery rate whenever retries rescued postbacks.

A grouped audit's rows cannot simply be added up for the headline: by status code or by
day, a postback retried across groups appears in each. The headline counts each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ..store import LogReader
from ._dispatches import remap
from ._filters import LogFilter
from ._logrows import visible
from ._sql import main_sql


@dataclass(frozen=True)
class Headline:
    """Postbacks and attempts of a selection of the log (see the module docstring)."""

    postbacks: int
    delivered: int
    attempts: int
    failed_attempts: int
    p95_latency_ms: float | None = None

    @property
    def delivery_rate(self) -> float | None:
        """Delivered postbacks / postbacks (None without postbacks)."""
        return self.delivered / self.postbacks if self.postbacks else None

    @property
    def attempt_failure_rate(self) -> float | None:
        """Failed attempts / attempts (None without attempts)."""
        return self.failed_attempts / self.attempts if self.attempts else None

    def text(self) -> str:
        """``91.5% delivered (1,234 of 1,349 postbacks) · 1,772 attempts, 11.6% failed``."""
        if not self.attempts:
            return "no attempts match"
        rate, fail = self.delivery_rate or 0.0, self.attempt_failure_rate or 0.0
        line = (
            f"{rate:.1%} delivered ({self.delivered:,} of {self.postbacks:,} postbacks) · "
            f"{self.attempts:,} attempts, {fail:.1%} failed ({self.failed_attempts:,})"
        )
        if self.p95_latency_ms is not None:
            line += f" · p95 {self.p95_latency_ms:,.0f} ms"
        return line

    def __str__(self) -> str:
        return self.text()


def headline_sql(
    store: LogReader, cond: str, params: list[Any], moved: pl.DataFrame | None = None
) -> Headline:
    """The headline of the rows of ``postback_log`` matching a SQL condition: the audit's
    own one-scan query with no groups, so the figures equal an ungrouped audit's.
    ``moved``: the log's ``remap`` (imported rows counted as the dispatch they link to),
    computed here unless given."""
    upto = store.sql("SELECT max(rowid) FROM postback_log").item()
    marked = upto is None or store.retried_upto() >= int(upto)
    if moved is None:
        moved = remap(store)
    frames = {} if moved is None else {"remap": moved}
    sql = main_sql([], [], cond, marked, moved is not None)
    row = store.sql(sql, list(params) * (1 if marked else 2), **frames).row(0, named=True)
    p95 = row["p95_latency_ms"]
    return Headline(
        int(row["dispatches"] or 0),
        int(row["delivered"] or 0),
        int(row["attempts"] or 0),
        int(row["failed_attempts"] or 0),
        None if p95 is None else float(p95),
    )


def headline(store: LogReader, flt: LogFilter | None = None) -> Headline:
    """The headline of the attempts matching ``flt`` (all but dry runs by default),
    from the log's prune cut-off on."""
    cond, params = visible(flt or LogFilter(), store).sql()
    return headline_sql(store, cond, params)
