"""Attempts still in the crash journal of a send that died: replayed into the log before
anything reads it to decide (reconcile, backfill, audit), or, on a read-only log, counted
and said, so no figure silently leaves them out."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from .._errors import JournalWarning
from ._journal import Journal, replay
from ._writer import log_writer

if TYPE_CHECKING:
    from ._reader import LogReader


class _Journaled(Protocol):
    """What ``pending_attempts`` needs of a LogStore (which calls into it)."""

    _journal: Journal

    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame: ...


def pending_attempts(store: _Journaled) -> list[tuple[Path, int]]:
    """(journal, attempts) of each dead run whose journal holds attempts the log lacks."""
    out = []
    for _, path in list(store._journal.orphans()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JournalWarning)
            rows = replay(path)
        if rows.height:
            missing = store.sql(
                "SELECT count(*) FROM r ANTI JOIN postback_log l USING (run_id, dispatch_id, "
                "attempt)",
                r=rows.select("run_id", "dispatch_id", pl.col("attempt")),
            ).item()
            if missing:
                out.append((path, int(missing)))
    return out


def pending_note(path: Path, n: int) -> str:
    """What to tell a reader of a log with ``n`` attempts pending in the journal ``path``."""
    return (
        f"note: {n:,} attempts of a run that stopped are pending in {path}, not in this audit "
        "yet; the next send or backfill adds them to the log"
    )


def settle_journals(store: LogReader) -> int:
    """Replay dead runs' journals into a writable log (a writer, before it decides what to
    send); on a read-only one, say on stderr how many attempts are pending where. Returns
    that number (0 once replayed)."""
    if not store.read_only:
        log_writer(store).recover_inflight()
        return 0
    return note_pending(store)


def note_pending(store: LogReader) -> int:
    """Say on stderr how many attempts of dead runs are pending in journals, and where;
    returns that number. Reading never replays them (a read never writes): the next send
    or backfill does."""
    total = 0
    for path, n in store.pending():
        print(pending_note(path, n), file=sys.stderr)
        total += n
    return total
