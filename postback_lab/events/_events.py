"""Events: the canonical events frame and the rows that could not be read."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from .._util import render

#: columns of the quarantine frame: where a row came from and why it was not read
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}


@dataclass(frozen=True)
class Events:
    """The canonical events frame and the rows that could not be read.

    ``len(events)`` is the number of readable rows; ``quarantine`` holds the others with
    their source, line, reason and raw text, never dropped silently.
    """

    frame: pl.DataFrame
    quarantine: pl.DataFrame
    #: how the sources were read: the platform guessed, naive times read as UTC …
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.frame.height

    def to_polars(self) -> pl.DataFrame:
        """The canonical events frame."""
        return self.frame

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One paragraph: rows by event type and status, time range, quarantine count."""
        f = self.frame
        if f.height == 0:
            head = "0 events"
        else:
            counts = f.group_by("event_type", "status").len().sort("event_type", "status")
            parts = ", ".join(f"{r[0]}/{r[1]}: {r[2]:,}" for r in counts.iter_rows())
            lo, hi = f["occurred_at"].min(), f["occurred_at"].max()
            assert isinstance(lo, datetime) and isinstance(hi, datetime)
            head = (
                f"{f.height:,} events ({parts}) from {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC"
            )
        q = self.quarantine.height
        head += f"; {q:,} rows quarantined (see .quarantine)" if q else "; none quarantined"
        return "\n".join([head, *(f"note: {n}" for n in self.notes)])

    def _repr_html_(self) -> str:
        tables = [("First rows", self.frame.head(10))]
        if self.quarantine.height:
            reasons = self.quarantine.group_by("reason").len().sort("len", descending=True)
            tables.append(("Quarantined by reason", reasons))
        return render("Events", self.summary(), tables, quarantined=self.quarantine.height)


def one_chunk(columns: list[pl.Series], at_once: int = 4) -> pl.DataFrame:
    """A frame of ``columns`` each in one contiguous chunk (planning gathers rows), made
    ``at_once`` columns at a time on threads: each column's read batches are let go as
    soon as it is copied, so the peak is the frame plus a few columns, not two frames
    (10M rows: 2.8 instead of 4.4 GB). ``columns`` is emptied: the caller must hold no
    other reference to them."""
    todo = deque(enumerate(columns))
    columns.clear()
    out: list[pl.Series | None] = [None] * len(todo)

    def work() -> None:
        while True:
            try:
                i, column = todo.popleft()
            except IndexError:
                return
            out[i] = column.rechunk()
            del column

    workers = max(1, min(at_once, len(out)))
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work) for _ in range(workers)]:
            f.result()
    return pl.DataFrame(out)
