"""Attempts still in the crash journal of a send that died: replayed into the log before
anything reads it to decide (reconcile, backfill, audit), or, on a read-only log, counted
and said, so no figure silently leaves them out."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import polars as pl

from ._journal import replay

if TYPE_CHECKING:
    from ._log import LogStore


def pending_attempts(store: LogStore) -> int:
    """Attempts in journals of dead runs that the log does not hold yet."""
    total = 0
    for _, path in list(store._journal.orphans()):
        rows = replay(path)
        if rows.height:
            missing = store.sql(
                "SELECT count(*) FROM r ANTI JOIN postback_log l USING (run_id, dispatch_id, "
                "attempt)",
                r=rows.select("run_id", "dispatch_id", pl.col("attempt")),
            ).item()
            total += int(missing)
    return total


def pending_note(n: int) -> str:
    """What to tell a reader of a log with ``n`` attempts pending in a journal."""
    what = "attempt is" if n == 1 else "attempts are"
    return f"note: {n:,} {what} pending in a journal (run send/backfill to recover them)"


def settle_journals(store: LogStore) -> int:
    """Replay dead runs' journals into a writable log (before it is read to decide); on a
    read-only one, print how many attempts are pending on stderr. Returns that number
    (0 once replayed)."""
    if not store.read_only:
        store.recover_inflight()
        return 0
    n = pending_attempts(store)
    if n:
        print(pending_note(n), file=sys.stderr)
    return n
