"""Firing rule 7 at send time: given fresh events, a dispatch of a rule with a delay is
not fired when its transaction reached another status after the planned event and at or
before the dispatch's ``due_at`` (the conversion was rejected during the fraud-check
delay). The events are read again just before each due batch fires (a file that grows
while postbacks wait is seen as it is then), and such dispatches are skipped and counted
(``SendResult.superseded``), not logged: no request was made, and a fresh plan would not
contain them. Rules with ``cancel_on_change: false`` (a plan column, kept in plan files)
are never re-checked."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl

from ..events import Events, read_events

_CANDIDATE = ("dispatch_id", "transaction_id", "status", "occurred_at", "due_at")


class Recheck:
    """The send-time check of firing rule 7 over the delayed dispatches of a plan frame.

    ``events``: fresh events — anything ``read_events`` takes (a file is read again for
    each check, unless it has not changed since the last read), a zero-argument function
    returning them (called for each check), or a frame / ``Events`` (read once)."""

    def __init__(self, events: Any, frame: pl.DataFrame) -> None:
        self.events = events
        cancel = (
            pl.col("cancel_on_change").fill_null(True)
            if "cancel_on_change" in frame.columns
            else pl.lit(True)
        )
        self.candidates = frame.filter((pl.col("due_at") > pl.col("occurred_at")) & cancel).select(
            _CANDIDATE
        )
        self._ids = set(self.candidates["dispatch_id"].to_list())
        self._cache: tuple[Any, pl.DataFrame] | None = None

    def superseded(self, dispatch_ids: Iterable[str]) -> set[str]:
        """Those of ``dispatch_ids`` that the events, read now, show superseded within
        their delay."""
        want = [d for d in dispatch_ids if d in self._ids]
        if not want:
            return set()
        rows = self.candidates.filter(pl.col("dispatch_id").is_in(want))
        changes = (
            self._fresh()
            .select(
                "transaction_id",
                pl.col("status").alias("__status"),
                pl.col("occurred_at").alias("__at"),
            )
            .filter(pl.col("transaction_id").is_in(rows["transaction_id"].unique().implode()))
        )
        hit = rows.join(changes, on="transaction_id").filter(
            (pl.col("__status") != pl.col("status"))
            & (pl.col("__at") > pl.col("occurred_at"))
            & (pl.col("__at") <= pl.col("due_at"))
        )
        return set(hit["dispatch_id"].to_list())

    def _fresh(self) -> pl.DataFrame:
        """The events as they are now."""
        source = self.events
        if isinstance(source, Events):
            return source.frame
        if isinstance(source, pl.DataFrame):
            if self._cache is None:
                self._cache = (None, read_events(source).frame)
            return self._cache[1]
        if callable(source):
            got = source()
            return got.frame if isinstance(got, Events) else read_events(got).frame
        stamp = _stamp(source)
        if stamp is None or self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, read_events(source).frame)
        return self._cache[1]


def rereader(paths: Any, read: Callable[[Any], Events]) -> Callable[[], Events]:
    """A function returning the events of ``paths`` read by ``read``, read again only
    when a file changed (size or modification time) since the last read: what
    ``postback-lab send --events`` checks each due batch against."""
    cache: list[Any] = [None, None]

    def fresh() -> Events:
        stamp = _stamp(paths)
        if stamp is None or cache[1] is None or cache[0] != stamp:
            cache[:] = [stamp, read(paths)]
        events: Events = cache[1]
        return events

    return fresh


def _stamp(source: Any) -> tuple[tuple[str, int, int], ...] | None:
    """(path, size, modification time) of each file of ``source``, or None when it is
    not a list of files (then it is read every time)."""
    paths = source if isinstance(source, (list, tuple)) else [source]
    out = []
    for p in paths:
        if not isinstance(p, (str, Path)) or not os.path.isfile(p):
            return None
        st = os.stat(p)
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def superseded(frame: pl.DataFrame, events: Any) -> pl.Series:
    """The dispatch ids of ``frame`` that ``events`` shows superseded within their delay
    (``Recheck`` over the whole frame, once)."""
    check = Recheck(events, frame)
    gone = check.superseded(check.candidates["dispatch_id"].to_list())
    ids = frame.filter(pl.col("dispatch_id").is_in(list(gone)))["dispatch_id"]
    return ids.unique(maintain_order=True)
