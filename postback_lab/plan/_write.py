"""Writing plans to Parquet: writers that take the plan a chunk at a time.

``PlanWriter`` (pyarrow, one thread): the plan's low-cardinality columns (rule, status,
host …) are dictionary-encoded and the unique ones (dispatch_id, url) written plain, with
zstd: half the CPU of encoding every column both ways, and a smaller file. Chunks go to a
background thread, so the next rule is evaluated while the last one is compressed, and
are gathered into row groups of about ``ROW_GROUP`` rows. ``SinkWriter`` (Polars'
streaming Parquet sink, zstd level 1) encodes on every core: from two cores on it is the
faster of the two (2M events x 50 rules on 2 quiet cores: the whole plan 6.9 s instead of
8.1 s, 1.74 cores busy instead of 1.57, less CPU in all, the same peak memory), so
``plan_writer`` picks it there and ``PlanWriter`` on one core. Either way the file appears
under its name only when complete.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import polars as pl

#: rows per row group: what the writer holds (a few copies of) while it encodes
ROW_GROUP = 250_000
#: plan columns with few distinct values: dictionary-encoded
DICTIONARY = (
    "rule",
    "event_type",
    "status",
    "offer_id",
    "publisher_id",
    "method",
    "host",
    "headers",
    "timeout_s",
    "env_at",
)
#: columns whose min/max are kept per row group (not the long unique texts)
STATISTICS = (*DICTIONARY, "transaction_id", "due_at", "occurred_at")
_DONE = object()


class _Closing:
    """A writer fed chunks by the planning thread through a queue its own thread drains,
    used as a context manager: closed when the block ends, aborted (no file left behind)
    when it raises."""

    path: Path
    _partial: Path
    _queue: queue.Queue[object]
    _error: BaseException | None

    def write(self, chunk: pl.DataFrame) -> None:
        """Queue one chunk (waits while two are already waiting)."""
        if self._error is not None:
            raise self._error
        if chunk.height:
            self._queue.put(chunk)

    def close(self) -> Path:
        raise NotImplementedError

    def _put_in_place(self) -> Path:
        """After the writing thread ended: the file under its name, or the thread's
        error raised and no file left behind."""
        if self._error is not None:
            self._partial.unlink(missing_ok=True)
            raise self._error
        self._partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class PlanWriter(_Closing):
    """``with PlanWriter(path, schema) as w: w.write(chunk)`` — a Parquet plan file
    written as its chunks come (frames with ``schema``)."""

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        # imported here: from two cores on the sink writes, and a small plan's start-up
        # should not pay for pyarrow's Parquet and file-system modules (~0.1 s)
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

        arrow = pl.DataFrame(schema=schema).to_arrow(compat_level=pl.CompatLevel.newest())
        self._schema = arrow.schema
        self._writer = pq.ParquetWriter(
            self._partial,
            self._schema,
            compression="zstd",
            use_dictionary=[c for c in DICTIONARY if c in schema],
            write_statistics=[c for c in STATISTICS if c in schema],
            store_schema=False,
        )
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="plan-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending: list[pl.DataFrame] = []
        rows = 0
        try:
            while (item := self._queue.get()) is not _DONE:
                assert isinstance(item, pl.DataFrame)
                pending.append(item)
                rows += item.height
                if rows >= ROW_GROUP:
                    self._flush(pending)
                    pending, rows = [], 0
            self._flush(pending)
        except BaseException as exc:  # reported to the producer on its next call
            self._error = exc
            while self._queue.get() is not _DONE:  # let the producer finish putting
                pass

    def _flush(self, chunks: list[pl.DataFrame]) -> None:
        if not chunks:
            return
        frame = pl.concat(chunks, how="vertical", rechunk=False)
        table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
        self._writer.write_table(table.cast(self._schema), row_group_size=frame.height)

    def close(self) -> Path:
        """Write what is left and put the file in place; returns its path."""
        self._queue.put(_DONE)
        self._thread.join()
        self._writer.close()
        return self._put_in_place()

    def abort(self) -> None:
        """Stop and leave no file behind."""
        self._queue.put(_DONE)
        self._thread.join()
        self._writer.close()
        self._partial.unlink(missing_ok=True)


class SinkWriter(_Closing):
    """``PlanWriter``'s interface over Polars' streaming Parquet sink: chunks are handed
    to the sink, running in a background thread, through a short queue."""

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._schema = schema
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._abort = False
        self._ended = False  # the source has taken the producer's last word
        self._thread = threading.Thread(target=self._run, name="plan-sink", daemon=True)
        self._thread.start()

    def _chunks(self, *_: object) -> Iterator[pl.DataFrame]:
        while (item := self._queue.get()) is not _DONE:
            assert isinstance(item, pl.DataFrame)
            yield item
        self._ended = True
        if self._abort:
            raise _Aborted

    def _run(self) -> None:
        from polars.io.plugins import register_io_source

        try:
            register_io_source(self._chunks, schema=self._schema).sink_parquet(
                self._partial, compression="zstd", compression_level=1, row_group_size=ROW_GROUP
            )
        except BaseException as exc:  # reported to the producer on its next call
            self._error = exc
            while not self._ended and self._queue.get() is not _DONE:  # let it finish putting
                pass

    def close(self) -> Path:
        """Write what is left and put the file in place; returns its path."""
        self._queue.put(_DONE)
        self._thread.join()
        return self._put_in_place()

    def abort(self) -> None:
        """Stop and leave no file behind."""
        self._abort = True
        self._queue.put(_DONE)
        self._thread.join()
        self._partial.unlink(missing_ok=True)


class _Aborted(Exception):
    """Ends the sink's source when the plan is abandoned (no file is kept)."""


#: Polars threads from which Polars' sink writes the plan (below, one pyarrow thread)
SINK_CORES = 2


def plan_writer(path: str | Path, schema: dict[str, pl.DataType]) -> PlanWriter | SinkWriter:
    """The writer for this machine: Polars' sink on ``SINK_CORES`` or more Polars threads,
    else ``PlanWriter``."""
    if pl.thread_pool_size() >= SINK_CORES:
        return SinkWriter(path, schema)
    return PlanWriter(path, schema)


def write_plan_frame(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a whole plan frame the way ``PlanWriter`` does."""
    with PlanWriter(path, dict(frame.schema)) as w:
        for start in range(0, frame.height, ROW_GROUP):
            w.write(frame.slice(start, ROW_GROUP))
    return Path(path)
