"""The attempt journal: what a send had in flight, so a killed process loses nothing.

A run's journal, ``<db>.inflight-<run>.jsonl``, opens with a line naming its owner (the
process, see ``Owner``). Before an attempt goes out a 'start' line is appended, and when
it ends a 'done' line with its whole log row: line appends (no fsync), so a killed process
loses nothing that completed, at almost no cost. A finished run deletes its journal. A
journal whose owner is gone belongs to a process that died mid-send and is replayed into
the log; a live owner's journal is never replayed or deleted.
"""

from __future__ import annotations

import contextlib
import glob
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from .._errors import JournalWarning
from ._owner import Owner
from ._schema import LOG_COLUMNS


class Journal:
    """The journals of one log file: one open handle per live run of this process."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._handles: dict[str, TextIO | None] = {}

    def path(self, run_id: str) -> Path:
        return self.db.with_name(f"{self.db.name}.inflight-{run_id}.jsonl")

    def claim(self, run_id: str, owner: Owner) -> None:
        """Start the journal of ``run_id``, a live run of ``owner`` (this process): its
        first line names the owner, so no other process replays it while it lives."""
        handle = self.path(run_id).open("a", encoding="utf-8")
        handle.write(json.dumps({"k": "owner", "note": owner.note()}) + "\n")
        handle.flush()
        self._handles[run_id] = handle

    def write(self, run_id: str, kind: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append 'start' or 'done' records of attempts to the run's journal."""
        if rows:
            self.write_lines(
                run_id, "".join(json.dumps({"k": kind, **r}, default=str) + "\n" for r in rows)
            )

    def write_lines(self, run_id: str, text: str) -> None:
        """Append records already written as JSON lines (one write, one flush)."""
        handle = self._handles.get(run_id)
        if handle is None:
            handle = self._handles[run_id] = self.path(run_id).open("a", encoding="utf-8")
        handle.write(text)
        handle.flush()

    def finish(self, run_id: str) -> None:
        """Close and delete the journal of a run that ended (completed or cancelled)."""
        self.release(run_id)
        self.path(run_id).unlink(missing_ok=True)

    def release(self, run_id: str) -> None:
        """Close the journal of a run that ended without writing all of its attempts to
        the log: the file stays, for the next send to replay (also in this process)."""
        handle = self._handles.pop(run_id, None)
        _ENDED.add(run_id)
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()

    def orphans(self) -> Iterator[tuple[str, Path]]:
        """(run id, path) of each journal left by a process that died: not a run of this
        store, and its owner gone (a journal without an owner line is an orphan too)."""
        pattern = f"{glob.escape(self.db.name)}.inflight-*.jsonl"
        for journal in sorted(self.db.parent.glob(pattern)):
            run_id = journal.name.rsplit("inflight-", 1)[1].removesuffix(".jsonl")
            if run_id in self._handles:
                continue
            owner = journal_owner(journal)
            if owner is None or run_id in _ENDED or not owner.alive():
                yield run_id, journal


#: what a 'done' record must hold besides the attempt's key (the rest may be in 'start')
DONE_FIELDS = ("fired_at", "latency_ms", "status_code", "outcome", "error", "response_body")

#: runs of this process that ended, whose journals (if any are left) may be replayed
_ENDED: set[str] = set()


def journal_owner(journal: Path) -> Owner | None:
    """The owner named by a journal's first line, or None (none, or unreadable)."""
    try:
        with journal.open("rb") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    if not isinstance(first, dict) or first.get("k") != "owner":
        return None
    return Owner.parse(str(first.get("note")))


def replay(journal: Path) -> pl.DataFrame:
    """The log rows a dead run's journal holds: completed attempts as they were, and
    attempts that never completed as ``cancelled`` with an 'unknown result' error (they may
    have reached the partner). Rows are typed as the log's, numbered by the dead sender."""
    records, bad = [], []
    lines = journal.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # not UTF-8, not JSON
            record = None
        if isinstance(record, dict) and record.get("k") == "owner":
            continue
        if not _valid(record):
            if number < len(lines):  # a line ended by a newline: damaged, not torn
                bad.append(number)  # (a torn last line is how a killed writer stops)
            continue
        records.append(record)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" …" if len(bad) > 5 else "")
        warnings.warn(
            JournalWarning(
                f"{journal}: {len(bad):,} damaged line(s) skipped (line {shown}); the other "
                f"{len(records):,} attempt record(s) were recovered"
            ),
            stacklevel=2,
        )
    cols = [*LOG_COLUMNS, "response_headers", "k"]  # the answer's headers: the log's own
    frame = pl.DataFrame(
        [{c: r.get(c) for c in cols} for r in records],
        schema=dict.fromkeys(cols, pl.String()),
        strict=False,
    )
    key = ["run_id", "dispatch_id", "attempt"]
    done = frame.filter(pl.col("k") == "done")
    starts = frame.filter(pl.col("k") == "start")
    # a 'done' record may carry only what the attempt added (the sender's compact form):
    # the rest of its row is in its 'start' record
    head = [c for c in LOG_COLUMNS if c not in (*key, *DONE_FIELDS)]
    done = (
        done.join(
            starts.unique(key, keep="first").select(*key, *head),
            on=key,
            how="left",
            suffix="__start",
        )
        .with_columns(pl.coalesce(c, f"{c}__start").alias(c) for c in head)
        .select(frame.columns)
    )
    started = starts.join(done, on=key, how="anti")
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


def _valid(record: object) -> bool:
    """A journal record the replay can use: 'start' or 'done' with a dispatch id, a run id
    and a whole attempt number."""
    if not isinstance(record, dict) or record.get("k") not in ("start", "done"):
        return False
    attempt = record.get("attempt")
    return (
        isinstance(record.get("dispatch_id"), str)
        and isinstance(record.get("run_id"), str)
        and isinstance(attempt, int)
        and not isinstance(attempt, bool)
    )
