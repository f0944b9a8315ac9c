"""Events too many to hold at once, read in slices and regrouped into buckets on disk.

Each bucket holds every row of its transactions (the bucket is the hash of the
transaction id), so planning the buckets one by one gives the plan of one pass: the
dedupe and rule 7 only look within a transaction. Slices are read with ``read_events``
(the same checks and quarantine, with the line numbers of the whole file) and written to
Arrow files in a temporary folder, removed when done.
"""

from __future__ import annotations

import glob
import math
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..events import QUARANTINE_SCHEMA, Events, read_events, unknown_statuses

PARQUET = (".parquet", ".pq")
#: rows read and regrouped at a time
SLICE_ROWS = 2_000_000


def parquet_files(source: Any) -> list[Path] | None:
    """The Parquet files a source names (paths, globs, folders, lists of these), or None
    when it is anything else (a frame, a CSV file, a DuckDB table …)."""
    items = source if isinstance(source, (list, tuple)) else [source]
    out: list[Path] = []
    for item in items:
        if not isinstance(item, (str, Path)) or str(item).startswith("duckdb:"):
            return None
        text = str(item)
        paths = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        for p in map(Path, paths):
            found = sorted(p.iterdir()) if p.is_dir() else [p]
            if not found or any(f.suffix.lower() not in PARQUET for f in found):
                return None
            out += found
    return out or None


def count_rows(files: list[Path]) -> int:
    """Rows in Parquet files, from their footers."""
    return sum(int(pl.scan_parquet(f).select(pl.len()).collect().item()) for f in files)


@dataclass
class Buckets:
    """The events of Parquet ``files`` as ``count`` buckets of whole transactions:
    iterate to get each bucket's frame; ``quarantine`` and ``notes`` are those of every
    slice read, as ``read_events`` of the whole files would give them."""

    files: list[Path]
    count: int
    read_options: Mapping[str, Any] = field(default_factory=dict)
    slice_rows: int = SLICE_ROWS
    quarantine: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    notes: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None  # the columns kept (all by default)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        with tempfile.TemporaryDirectory(prefix="pbl-plan-") as tmp:
            folder = Path(tmp)
            self._spill(folder)
            for k in range(self.count):
                mine = bucket_files(folder, k)
                if not mine:
                    continue
                frame = read_bucket(mine)
                for p in mine:
                    p.unlink()
                yield frame
                del frame  # before the next bucket is read

    def _spill(self, folder: Path) -> None:
        """Read every file slice by slice, writing each bucket's rows to its own files."""
        done = [
            spill_slice(s, self.count, folder, self.columns, self.read_options)
            for s in slices(self.files, self.slice_rows)
        ]
        self.quarantine, self.notes = gathered(done, self.quarantine, self.notes)


@dataclass(frozen=True)
class Slice:
    """Rows ``start`` .. ``start + rows`` of the ``n``-th file (``path``), its ``i``-th
    slice: the unit read (and regrouped into buckets) at a time."""

    path: Path
    n: int
    i: int
    start: int
    rows: int


def slices(files: list[Path], slice_rows: int | None = None) -> list[Slice]:
    """The slices of Parquet ``files`` (``SLICE_ROWS`` rows each by default), in input
    order (file, then row)."""
    slice_rows = slice_rows or SLICE_ROWS
    return [
        Slice(path, n, i, start, slice_rows)
        for n, path in enumerate(files)
        for i, start in enumerate(range(0, max(count_rows([path]), 1), slice_rows))
    ]


def spill_slice(
    part: Slice,
    count: int,
    folder: Path,
    columns: tuple[str, ...] | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Read one slice with ``read_events`` and write its rows of each of the ``count``
    buckets to ``folder/b{bucket}-{file}-{slice}.arrow`` (names that sort in input
    order); returns the slice's quarantine (lines of the whole file) and notes. Holds
    one slice at a time: what a process splitting the events needs."""
    lazy = pl.scan_parquet(part.path).slice(part.start, part.rows)
    events = read_events(lazy, **dict(read_options or {}))
    quarantine = _relabel(events, str(part.path), part.start)
    notes = tuple(note.replace("<LazyFrame>", str(part.path)) for note in events.notes)
    frame = events.frame
    del events
    if columns is not None:
        frame = frame.select([c for c in frame.columns if c in columns])
    frame = frame.with_columns((pl.col("transaction_id").hash() % count).alias("__bucket"))
    for (k,), rows_k in frame.partition_by("__bucket", as_dict=True).items():
        rows_k.drop("__bucket").write_ipc(
            folder / f"b{k}-{part.n:05d}-{part.i:05d}.arrow", compression="lz4"
        )
    return quarantine, notes


def bucket_files(folder: Path, bucket: int) -> list[Path]:
    """The files ``spill_slice`` wrote for one bucket, in input order."""
    return sorted(folder.glob(f"b{bucket}-*.arrow"))


def read_bucket(files: list[Path]) -> pl.DataFrame:
    """One bucket's events from its files, in input order, in one chunk."""
    return pl.concat([pl.read_ipc(p) for p in files], rechunk=True)


def gathered(
    done: list[tuple[pl.DataFrame, tuple[str, ...]]],
    quarantine: pl.DataFrame | None = None,
    notes: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The quarantine and the notes of every slice as one read of the whole files gives
    them: lines in order, each note once, unknown statuses counted over all slices."""
    frames = ([] if quarantine is None else [quarantine]) + [q for q, _ in done]
    q = pl.concat(frames) if frames else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    said = [n for _, ns in done for n in ns if not n.startswith("unknown status ")]
    return q, tuple(dict.fromkeys([*notes, *said, *unknown_statuses(q)]))


def _relabel(events: Events, label: str, start: int) -> pl.DataFrame:
    """A slice's quarantine as the whole file's: its name, and lines counted from the top."""
    q = events.quarantine
    if q.height == 0:
        return q
    return q.with_columns(pl.lit(label).alias("source"), pl.col("line") + start)


def buckets(
    files: list[Path],
    rows: int,
    bucket_rows: int,
    columns: tuple[str, ...] | None = None,
    **read_options: Any,
) -> Buckets:
    """Buckets of about ``bucket_rows`` events each (files read ``SLICE_ROWS`` at a time),
    keeping only ``columns`` when given."""
    count = max(1, math.ceil(rows / bucket_rows))
    return Buckets(files, count, read_options, SLICE_ROWS, columns=columns)


def event_columns(files: list[Path], **read_options: Any) -> list[str]:
    """The columns ``read_events`` gives the Parquet ``files`` (canonical, then extras),
    found from their headers alone, without reading a row."""
    out: dict[str, None] = {}
    for path in files:
        head = read_events(pl.scan_parquet(path).head(0), **read_options)
        out.update(dict.fromkeys(head.frame.columns))
    return list(out)
