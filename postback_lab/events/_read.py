"""``read_events``: any events source -> the canonical Polars frame plus a quarantine frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from .._errors import EventsError
from ._csv import careful_csv
from ._events import Events
from ._normalise import normalise
from ._schema import EVENT_TYPE_ALIASES, EVENT_TYPES
from ._sources import Source, sources


def read_events(
    source: Any,
    *,
    columns: Mapping[str, str] | None = None,
    event_type: str | None = None,
    encoding: str = "utf-8",
) -> Events:
    """Read events from files (CSV, Parquet, NDJSON; globs and lists), a DuckDB table
    (``duckdb:path.duckdb::table``) or a Polars/pandas/Arrow frame.

    ``columns`` maps source columns to canonical ones (either direction) and wins over the
    automatic aliases; ``event_type`` sets the type of every row; ``encoding`` is the text
    encoding of CSV files (UTF-8, with or without BOM, by default). Rows that cannot be
    read are returned in ``quarantine`` with their file, line and reason, never dropped.
    """
    forced = None
    if event_type is not None:
        forced = EVENT_TYPE_ALIASES.get(event_type.strip().lower())
        if forced is None:
            raise EventsError(f"event_type={event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    frames, quarantines = [], []
    for src in sources(source):
        good, bad = _read_one(src, columns or {}, forced, encoding)
        frames.append(good)
        quarantines.append(bad)
    if not frames:
        raise EventsError(f"no events source found in {source!r}")
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    quarantine = pl.concat(quarantines) if len(quarantines) > 1 else quarantines[0]
    return Events(frame, quarantine)


def _read_one(
    src: Source, explicit: Mapping[str, str], forced_type: str | None, encoding: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One source read fast; a CSV the fast parser rejects (or in another encoding than
    UTF-8) is read again carefully."""
    if src.path is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        src = careful_csv(src, encoding)
    try:
        return normalise(src, explicit, forced_type)
    except EventsError:
        if src.path is None:
            raise
        return normalise(careful_csv(src, encoding), explicit, forced_type)
