"""Pruning old rows of the log without ever making a delivered postback look unsent.

Every attempt fired before the cut-off is deleted except the delivered ones (so
reconcile and backfill still know those postbacks arrived and never send them again),
and the cut-off is stored in the log (meta ``pruned_before``): audits and the explorer
then start at it, so no rate is computed over the half-emptied past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._errors import InputError
from .._util import When, parse_when
from ._exports import export_backlog, exports_file
from ._reader import LogReader
from ._writer import log_writer

PRUNED_BEFORE = "pruned_before"  # meta key: attempts before it were pruned


def pruned_before(store: LogReader) -> datetime | None:
    """The cut-off of the last ``prune`` of this log, or None."""
    got = store.sql("SELECT value FROM meta WHERE key = ?", [PRUNED_BEFORE])
    return None if got.height == 0 else parse_when(got.item(), name=PRUNED_BEFORE)


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` deleted (or would delete) and kept."""

    before: datetime
    deleted: int
    kept_delivered: int
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.deleted:,} attempts fired before {self.before:%Y-%m-%d %H:%M:%S} UTC; "
            f"kept the {self.kept_delivered:,} delivered ones so nothing is sent twice. "
            "Audits and the explorer now start at that time."
        )


def prune(store: LogReader, before: When, *, dry_run: bool = False) -> PruneResult:
    """Delete every attempt fired before ``before`` except delivered ones, and record the
    cut-off so audits start there (see the module docstring)."""
    cut = parse_when(before, name="before")
    if cut is None:
        raise InputError("prune needs --before: the time before which attempts are deleted")
    now = datetime.now(UTC)
    if cut > now:
        raise InputError(
            f"--before {cut:%Y-%m-%d %H:%M:%S} UTC is in the future (now {now:%Y-%m-%d %H:%M} "
            "UTC): prune deletes attempts fired before a time that has passed"
        )
    if store.read_only and not dry_run:
        raise InputError(f"{store.path} is open read-only; prune needs to write it")
    for uri, missing in export_backlog(
        store, "fired_at < ? AND outcome IS DISTINCT FROM 'delivered'", [cut]
    ):
        raise InputError(
            f"{store.path}: the Delta export to {uri} has not taken {missing:,} of the attempts "
            f"this prune would delete; run postback-lab log export --db {store.path} --to "
            f"{uri} first (to forget that export, remove its line from "
            f"{exports_file(store.path)})"
        )
    counts: dict[str, Any] = store.sql(
        """SELECT count(*) FILTER (WHERE outcome <> 'delivered') AS gone,
                  count(*) FILTER (WHERE outcome = 'delivered') AS kept
           FROM postback_log WHERE fired_at < ?""",
        [cut],
    ).row(0, named=True)
    result = PruneResult(cut, int(counts["gone"]), int(counts["kept"]), dry_run)
    if dry_run:
        return result
    stamp = cut.isoformat()
    store.sql(
        f"""BEGIN;
        DELETE FROM postback_log
            WHERE fired_at < TIMESTAMPTZ '{stamp}' AND outcome IS DISTINCT FROM 'delivered';
        INSERT OR REPLACE INTO meta VALUES ('{PRUNED_BEFORE}', '{stamp}');
        INSERT OR REPLACE INTO meta VALUES ('retried_upto', '-1');
        COMMIT;"""
    )
    log_writer(store).mark_retried()  # marks from scratch: deleting may renumber rows
    store.sql("CHECKPOINT")
    return result
