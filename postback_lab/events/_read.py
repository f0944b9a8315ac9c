"""``read_events``: any events source -> the canonical Polars frame plus a quarantine frame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import polars as pl

from .._errors import EventsError
from ._csv import careful_csv, careful_ndjson
from ._events import QUARANTINE_SCHEMA, Events
from ._normalise import normalise
from ._options import ReadOptions
from ._options import ignore_status as ignore_status_option
from ._sources import LINE, EventsSource, Source, sources


class ReadKeywords(TypedDict, total=False):
    """The keyword options of ``read_events``, for functions that pass them on
    (``sink_plan(events, rules, path, preset="everflow")``)."""

    preset: str | None
    rename: Mapping[str, str] | None
    event_type: str | None
    encoding: str
    sep: str | None
    date_format: str | None
    timezone: str
    decimal_comma: bool | None
    status_map: Mapping[str, str] | None
    ignore_status: Sequence[str] | str | None


def read_events(
    data: EventsSource,
    /,
    *,
    preset: str | None = None,
    rename: Mapping[str, str] | None = None,
    event_type: str | None = None,
    encoding: str = "utf-8",
    sep: str | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    decimal_comma: bool | None = None,
    status_map: Mapping[str, str] | None = None,
    ignore_status: Sequence[str] | str | None = None,
) -> Events:
    """Read events from files (CSV, Parquet, NDJSON; globs and lists), a DuckDB table
    (``duckdb:path.duckdb::table``) or a Polars/pandas/Arrow frame.

    ``preset`` names the platform the export comes from (``everflow``, ``affise``,
    ``cake``, ``keitaro``, ``tune``, ``voluum``, ``binom``, ``integr8``, or ``auto`` to
    guess from the headers): its column names, status spellings and date layouts are
    then known. ``rename`` maps source columns to canonical ones (either direction), or
    renames an extra column, and wins over everything else; ``event_type`` sets the type
    of every row; ``encoding``, ``sep`` (sniffed by default) and ``decimal_comma``
    describe CSV files; ``date_format`` forces the layout of the time column and
    ``timezone`` says where times without an offset were written (UTC by default).
    ``status_map`` maps your own status spellings (``{"sale": "approved", "trash":
    "rejected"}``, winning over the platform's) and ``ignore_status`` names statuses whose
    rows are left out and counted (``["ping", "test"]``). Rows that cannot be read are
    returned in ``quarantine`` with their file, line and reason, never dropped; an unknown
    status is never guessed: its rows are quarantined and counted in ``notes``. A source
    whose every row is quarantined is an EventsError (the mapping is wrong, not the data).
    """
    options = ReadOptions(
        preset=preset,
        rename=dict(rename or {}),
        event_type=event_type,
        encoding=encoding,
        sep=sep,
        date_format=date_format,
        timezone=timezone,
        decimal_comma=decimal_comma,
        status_map=dict(status_map or {}),
        ignore_status=ignore_status_option(ignore_status),
    )
    frames, quarantines, notes = [], [], []
    for src in sources(data, sep=sep):
        good, bad, said = _read_one(src, options)
        if good.height == 0 and bad.height > 0:
            raise EventsError(all_quarantined(src.label, bad, said))
        frames.append(good)
        quarantines.append(bad)
        notes += said
    if not frames:
        raise EventsError(f"no events source found in {data!r}")
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    quarantine = pl.concat(quarantines) if len(quarantines) > 1 else quarantines[0]
    notes += unknown_statuses(quarantine)
    return Events(frame, quarantine, tuple(dict.fromkeys(notes)))


def read_numbered(frame: pl.DataFrame, label: str, line: str, /, **options: Any) -> Events:
    """Some rows of one source, read as ``read_events`` reads the whole source: a piece of
    a file that another engine hands over (a Spark task's rows). ``frame[line]`` holds each
    row's 1-based line in ``label``; the events keep that column (so that pieces can be put
    back in input order), the quarantine names ``label`` and those lines, its ``raw`` the
    source's own columns. ``options`` are those of ``read_events``. A piece whose every
    row is quarantined is no error here: the caller, who sees every piece of the source,
    decides (``all_quarantined``)."""
    opts = ReadOptions(
        **{
            **options,
            "rename": dict(options.get("rename") or {}),
            "status_map": dict(options.get("status_map") or {}),
        }
    )
    lazy = frame.lazy().with_columns(pl.col(line).cast(pl.Int64).alias(LINE))
    good, bad, notes = _read_one(Source(label, lazy), opts)
    if bad.height:  # the raw cells without the line column this function added
        raws = frame.filter(pl.col(line).is_in(bad["line"].implode())).select(
            pl.col(line).cast(pl.Int64).alias("line"),
            pl.struct(pl.all().exclude(line)).struct.json_encode().alias("raw"),
        )
        bad = bad.drop("raw").join(raws, on="line", how="left", maintain_order="left")
        bad = bad.select(list(QUARANTINE_SCHEMA))
    return Events(good, bad, tuple(dict.fromkeys(notes)))


def unknown_statuses(quarantine: pl.DataFrame) -> list[str]:
    """One note per unknown status with its count of quarantined rows, most first: a
    status is never guessed, so the user maps or ignores it."""
    found = (
        quarantine.select(
            pl.col("reason").str.extract(r"^unknown status '(.*)' \(valid").alias("status")
        )
        .drop_nulls()
        .group_by("status")
        .len()
        .sort(["len", "status"], descending=[True, False])
    )
    return [
        f"unknown status {s!r} on {n:,} row{'s' if n != 1 else ''} (quarantined): map it with "
        f"status_map={{{s!r}: 'approved'}} (on the command line --status-map "
        f"'{s}=approved'), or leave such rows out with --ignore-status '{s}'"
        for s, n in found.iter_rows()
    ]


def all_quarantined(label: str, bad: pl.DataFrame, notes: Sequence[str]) -> str:
    """The error of a source whose every row was quarantined: the reasons, most first."""
    reasons = (
        bad.select(pl.col("reason").str.replace(r" '.*", "").alias("r"))
        .group_by("r")
        .len()
        .sort(["len", "r"], descending=[True, False])
    )
    said = "; ".join(f"{r} ({n:,})" for r, n in reasons.head(3).iter_rows())
    first = bad.row(0, named=True)
    hint = "".join(f" ({n.removeprefix(label + ': ')})" for n in notes if "preset=auto" in n)
    return (
        f"{label}: every row ({bad.height:,}) was quarantined, so nothing was read: {said}; "
        f"first: line {first['line']}: {first['reason']}. Check the column mapping "
        "(--columns, --source) and the status spellings (--status-map)" + hint
    )


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
