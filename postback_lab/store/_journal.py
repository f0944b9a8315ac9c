"""The attempt journal: what a send had in flight, so a killed process loses nothing.

Before an attempt goes out a 'start' line is appended to ``<db>.inflight-<run>.jsonl``,
and when it ends a 'done' line with its whole log row: line appends (no fsync), so a
killed process loses nothing that completed, at almost no cost. A finished run deletes
its journal; a journal found later belongs to a process that died mid-send.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from ._schema import LOG_COLUMNS


class Journal:
    """The journals of one log file: one open handle per live run of this process."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._handles: dict[str, TextIO | None] = {}

    def path(self, run_id: str) -> Path:
        return self.db.with_name(f"{self.db.name}.inflight-{run_id}.jsonl")

    def claim(self, run_id: str) -> None:
        """Mark ``run_id`` as a live run of this process: recovery leaves it alone."""
        self._handles.setdefault(run_id, None)

    def write(self, run_id: str, kind: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append 'start' or 'done' records of attempts to the run's journal."""
        if not rows:
            return
        handle = self._handles.get(run_id)
        if handle is None:
            handle = self._handles[run_id] = self.path(run_id).open("a", encoding="utf-8")
        handle.write("".join(json.dumps({"k": kind, **r}, default=str) + "\n" for r in rows))
        handle.flush()

    def finish(self, run_id: str) -> None:
        """Close and delete the journal of a run that ended (completed or cancelled)."""
        handle = self._handles.pop(run_id, None)
        if handle is not None:
            handle.close()
        self.path(run_id).unlink(missing_ok=True)

    def orphans(self) -> Iterator[tuple[str, Path]]:
        """(run id, path) of each journal left by a process that died."""
        pattern = f"{glob.escape(self.db.name)}.inflight-*.jsonl"
        for journal in sorted(self.db.parent.glob(pattern)):
            run_id = journal.name.rsplit("inflight-", 1)[1].removesuffix(".jsonl")
            if run_id not in self._handles:
                yield run_id, journal


def replay(journal: Path) -> pl.DataFrame:
    """The log rows a dead run's journal holds: completed attempts as they were, and
    attempts that never completed as ``cancelled`` with an 'unknown result' error (they may
    have reached the partner). Rows are typed as the log's, numbered by the dead sender."""
    records = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the torn last line of a killed writer
    cols = [*LOG_COLUMNS, "k"]
    frame = pl.DataFrame(
        [{c: r.get(c) for c in cols} for r in records],
        schema=dict.fromkeys(cols, pl.String()),
        strict=False,
    )
    key = ["run_id", "dispatch_id", "attempt"]
    done = frame.filter(pl.col("k") == "done")
    started = frame.filter(pl.col("k") == "start").join(done, on=key, how="anti")
    unknown = started.with_columns(
        pl.lit("cancelled").alias("outcome"),
        pl.lit("result unknown: the sending process stopped during this attempt").alias("error"),
    )
    return (
        pl.concat([done, unknown])
        .drop("k")
        .with_columns(
            pl.col("due_at", "fired_at").str.to_datetime(time_zone="UTC", time_unit="us"),
            pl.col("attempt", "status_code").cast(pl.Float64).cast(pl.Int32),
            pl.col("latency_ms").cast(pl.Float64),
        )
    )
