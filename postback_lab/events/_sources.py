"""Sources of events: what a user's argument names, expanded into readable units."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import duckdb
import polars as pl

from .._errors import EventsError
from .._util import connect, quote_ident
from ._events import Events

CSV = {".csv", ".tsv", ".txt"}
PARQUET = {".parquet", ".pq"}
NDJSON = {".ndjson", ".jsonl", ".json"}
LINE = "__line"  # each row's line in its source (1-based; CSV lines count the header)


class ArrowFrame(Protocol):
    """A frame that hands out its data as Arrow (the Arrow PyCapsule interface): a pandas
    DataFrame, a pyarrow Table, … read through Polars, never imported here."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


#: one events input: a file path, glob or folder (CSV, Parquet, NDJSON), a DuckDB table
#: ``duckdb:path.duckdb::table``, or a Polars/pandas/Arrow frame
EventsInput: TypeAlias = str | Path | pl.DataFrame | pl.LazyFrame | ArrowFrame
#: what ``read_events`` (and every function taking events) reads: an ``Events`` value
#: already read, one input, or a list of them
EventsSource: TypeAlias = Events | EventsInput | list[EventsInput] | tuple[EventsInput, ...]


@dataclass(frozen=True)
class Source:
    """One readable unit: a lazy frame of the raw columns, numbered, and its label."""

    label: str
    lazy: pl.LazyFrame
    path: Path | None = None  # a CSV file, which the careful parser can re-read
    sep: str = ","
    rejected: pl.DataFrame | None = None  # rows the careful parser could not split
    ndjson: Path | None = None  # an NDJSON file, which can be re-read line by line


def sources(source: Any, *, sep: str | None = None) -> Iterator[Source]:
    """Expand a user's source argument (paths, globs, folders, ``duckdb:`` tables, frames,
    lists of these) into readable units; ``sep`` is the CSV separator (sniffed from each
    file's header line when None)."""
    if isinstance(source, Events):
        yield Source("<events>", source.frame.lazy().with_row_index(LINE, offset=1))
    elif isinstance(source, (list, tuple)):
        for s in source:
            yield from sources(s, sep=sep)
    elif isinstance(source, (str, Path)):
        text = str(source)
        if text.startswith("duckdb:"):
            yield _duckdb_source(text)
            return
        paths = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        if not paths:
            raise EventsError(f"{text}: no file matches this pattern")
        for p in paths:
            path = Path(p)
            if path.is_dir():
                found = sorted(
                    x for x in path.iterdir() if x.suffix.lower() in CSV | PARQUET | NDJSON
                )
                if not found:
                    raise EventsError(f"{path}: folder holds no CSV, Parquet or NDJSON file")
                yield from sources(found, sep=sep)
            else:
                yield _file_source(path, sep)
    else:
        yield _frame_source(source)


def sniff_separator(path: Path) -> str:
    """The separator of a CSV file's header line: the most frequent of ``, ; TAB |``
    outside quotes (a comma when none appears)."""
    with path.open("rb") as f:
        head = f.readline(65536).decode("utf-8", "replace")
    outside = "".join(head.split('"')[::2])
    counts = {c: outside.count(c) for c in (",", ";", "\t", "|")}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


def _check_header(path: Path, sep: str) -> None:
    """A column written twice in the header is an error naming it (a reader would keep one
    of them silently)."""
    with path.open("r", encoding="utf-8", errors="replace", newline="") as f:
        header = next(csv.reader([f.readline().removeprefix("\ufeff")], delimiter=sep), [])
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        key = name.strip()
        if key in seen:
            raise EventsError(
                f"{path}: column {key!r} appears twice in the header (columns {seen[key]} and "
                f"{i}); rename or remove one"
            )
        seen[key] = i


def _file_source(path: Path, sep: str | None = None) -> Source:
    if not path.exists():
        raise EventsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if sep is None:
        sep = sniff_separator(path) if suffix in CSV else ","
    if suffix in CSV:
        _check_header(path, sep)
        lazy = pl.scan_csv(
            path, infer_schema=False, separator=sep, row_index_name=LINE, row_index_offset=2
        )
        return Source(str(path), lazy, path, sep)
    if suffix in PARQUET:
        return Source(str(path), pl.scan_parquet(path).with_row_index(LINE, offset=1))
    if suffix in NDJSON:
        lazy = pl.scan_ndjson(path, infer_schema_length=10_000).with_row_index(LINE, offset=1)
        return Source(str(path), lazy, ndjson=path)
    raise EventsError(
        f"{path}: unknown file type {suffix or '(none)'!r}; use .csv, .tsv, .parquet, "
        ".ndjson or .jsonl, or pass a frame"
    )


def _duckdb_source(text: str) -> Source:
    spec = text.removeprefix("duckdb:")
    db, sep, table = spec.partition("::")
    if not sep or not table:
        raise EventsError(f"{text}: write a DuckDB table as duckdb:path.duckdb::table")
    if not Path(db).exists():
        raise EventsError(f"{db}: no such DuckDB file")
    try:
        with connect(db, read_only=True) as con:
            frame = con.sql(f"SELECT * FROM {quote_ident(table)}").pl()
    except duckdb.Error as exc:
        raise EventsError(f"{text}: cannot read the table ({exc})") from exc
    return Source(text, frame.lazy().with_row_index(LINE, offset=1))


def _frame_source(obj: Any) -> Source:
    if isinstance(obj, pl.LazyFrame):
        lazy = obj
    elif isinstance(obj, pl.DataFrame):
        lazy = obj.lazy()
    elif type(obj).__module__.startswith("pandas"):
        lazy = pl.from_pandas(obj).lazy()
    elif type(obj).__module__.startswith("pyarrow"):
        arrow = pl.from_arrow(obj)
        lazy = (arrow if isinstance(arrow, pl.DataFrame) else arrow.to_frame()).lazy()
    else:
        raise EventsError(
            f"cannot read events from a {type(obj).__name__}; pass a path, a glob, "
            "'duckdb:file.duckdb::table' or a Polars/pandas/Arrow frame"
        )
    return Source(f"<{type(obj).__name__}>", lazy.with_row_index(LINE, offset=1))
