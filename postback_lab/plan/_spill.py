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

from ..events import QUARANTINE_SCHEMA, Events, read_events

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
                mine = sorted(folder.glob(f"b{k}-*.arrow"))
                if not mine:
                    continue
                frame = pl.concat([pl.read_ipc(p) for p in mine], rechunk=True)
                for p in mine:
                    p.unlink()
                yield frame
                del frame  # before the next bucket is read

    def _spill(self, folder: Path) -> None:
        """Read every file slice by slice, writing each bucket's rows to its own files."""
        quarantines, notes = [self.quarantine], list(self.notes)
        for n, path in enumerate(self.files):
            rows = count_rows([path])
            for i, start in enumerate(range(0, max(rows, 1), self.slice_rows)):
                part = pl.scan_parquet(path).slice(start, self.slice_rows)
                events = read_events(part, **self.read_options)
                quarantines.append(_relabel(events, str(path), start))
                notes += [note.replace("<LazyFrame>", str(path)) for note in events.notes]
                frame = events.frame
                if self.columns is not None:
                    frame = frame.select([c for c in frame.columns if c in self.columns])
                frame = frame.with_columns(
                    (pl.col("transaction_id").hash() % self.count).alias("__bucket")
                )
                for (k,), rows_k in frame.partition_by("__bucket", as_dict=True).items():
                    rows_k.drop("__bucket").write_ipc(
                        folder / f"b{k}-{n:05d}-{i:05d}.arrow", compression="lz4"
                    )
        self.quarantine = pl.concat(quarantines)
        self.notes = tuple(dict.fromkeys(notes))


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
