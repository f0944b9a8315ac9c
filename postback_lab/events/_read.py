"""``read_events``: any events source -> the canonical Polars frame plus a quarantine frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from .._errors import EventsError
from ._csv import careful_csv, careful_ndjson
from ._events import Events
from ._normalise import normalise
from ._options import ReadOptions
from ._sources import Source, sources


def read_events(
    data: Any,
    /,
    *,
    source: str | None = None,
    columns: Mapping[str, str] | None = None,
    event_type: str | None = None,
    encoding: str = "utf-8",
    sep: str | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    decimal_comma: bool | None = None,
) -> Events:
    """Read events from files (CSV, Parquet, NDJSON; globs and lists), a DuckDB table
    (``duckdb:path.duckdb::table``) or a Polars/pandas/Arrow frame.

    ``source`` names the platform the export comes from (``everflow``, ``affise``,
    ``cake``, ``keitaro``, ``tune``, ``voluum``, ``binom``, ``integr8``, or ``auto`` to
    guess from the headers): its column names, status spellings and date layouts are
    then known. ``columns`` maps source columns to canonical ones (either direction), or
    renames an extra column, and wins over everything else; ``event_type`` sets the type
    of every row; ``encoding``, ``sep`` (sniffed by default) and ``decimal_comma``
    describe CSV files; ``date_format`` forces the layout of the time column and
    ``timezone`` says where times without an offset were written (UTC by default). Rows
    that cannot be read are returned in ``quarantine`` with their file, line and reason,
    never dropped.
    """
    options = ReadOptions(
        source=source,
        columns=dict(columns or {}),
        event_type=event_type,
        encoding=encoding,
        sep=sep,
        date_format=date_format,
        timezone=timezone,
        decimal_comma=decimal_comma,
    )
    frames, quarantines, notes = [], [], []
    for src in sources(data, sep=sep):
        good, bad, said = _read_one(src, options)
        frames.append(good)
        quarantines.append(bad)
        notes += said
    if not frames:
        raise EventsError(f"no events source found in {data!r}")
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    quarantine = pl.concat(quarantines) if len(quarantines) > 1 else quarantines[0]
    return Events(frame, quarantine, tuple(dict.fromkeys(notes)))


def _read_one(src: Source, options: ReadOptions) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """One source read fast; a CSV the fast parser rejects (or in another encoding than
    UTF-8) is read again carefully."""
    encoding = options.encoding
    if src.path is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        src = careful_csv(src, encoding)
    try:
        return normalise(src, options)
    except EventsError:
        if src.ndjson is not None:
            return normalise(careful_ndjson(src), options)
        if src.path is None:
            raise
        return normalise(careful_csv(src, encoding), options)
