"""Row-level access to the log for terminals and scripts: the attempts matching a filter,
their export to CSV or Parquet, and pruning old rows without ever making a delivered
postback look unsent.

Pruning keeps the audit honest: every attempt fired before the cut-off is deleted except
the delivered ones (so reconcile and backfill still know those postbacks arrived and
never send them again), and the cut-off is stored in the log: audits and the explorer
then start at it, so no rate is computed over the half-emptied past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from .._errors import InputError
from .._util import FORMULA_START, When, parse_when
from ..store import LOG_COLUMNS, LOG_SCHEMA, LogStore, export_backlog, exports_file
from ._filters import LogFilter

PRUNED_BEFORE = "pruned_before"  # meta key: attempts before it were pruned
FORMATS = ("csv", "parquet", "delta")


def pruned_before(store: LogStore) -> datetime | None:
    """The cut-off of the last ``prune`` of this log, or None."""
    got = store.sql("SELECT value FROM meta WHERE key = ?", [PRUNED_BEFORE])
    return None if got.height == 0 else parse_when(got.item(), name=PRUNED_BEFORE)


def visible(flt: LogFilter, store: LogStore) -> LogFilter:
    """``flt`` starting no earlier than the log's prune cut-off."""
    cut = pruned_before(store)
    if cut is None or (flt.since is not None and flt.since >= cut):
        return flt
    return LogFilter(**{**flt.__dict__, "since": cut})


def attempt_rows(store: LogStore, flt: LogFilter, *, limit: int, offset: int = 0) -> pl.DataFrame:
    """The newest ``limit`` attempts matching ``flt`` (after ``offset``), newest first."""
    cond, params = visible(flt, store).sql()
    return store.sql(
        f"""
        SELECT fired_at, rule, transaction_id, publisher_id, outcome, status_code,
               latency_ms, error, host, url
        FROM postback_log WHERE {cond}
        ORDER BY fired_at DESC, dispatch_id, attempt LIMIT {int(limit)} OFFSET {int(offset)}""",
        params,
    )


SHORT_HEADERS = {
    "fired_at": "fired (UTC)",
    "transaction_id": "transaction",
    "publisher_id": "publisher",
    "status_code": "code",
    "latency_ms": "ms",
}


def readable_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Attempt rows as people read them (``log show``, the explorer): short headers and
    latency in whole milliseconds."""
    if "latency_ms" in rows.columns:
        rows = rows.with_columns(pl.col("latency_ms").round(0).cast(pl.Int64))
    return rows.rename({k: v for k, v in SHORT_HEADERS.items() if k in rows.columns})


def count_rows(store: LogStore, flt: LogFilter) -> int:
    """How many attempts match ``flt``."""
    cond, params = visible(flt, store).sql()
    return int(store.sql(f"SELECT count(*) FROM postback_log WHERE {cond}", params).item())


def export_format(to: Path, given: str | None) -> str:
    """The export format: ``given``, else by the suffix of ``to`` (.csv, .parquet/.pq),
    else a Delta Lake table (a folder)."""
    if given is not None:
        if given not in FORMATS:
            raise InputError(f"--format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    suffix = to.suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "delta")


def export_rows(store: LogStore, to: str | Path, flt: LogFilter, fmt: str | None = None) -> int:
    """Write the attempts matching ``flt`` (every log column, oldest first) to ``to`` as
    CSV or Parquet; returns the row count. DuckDB streams them to the file."""
    path = Path(to)
    kind = export_format(path, fmt)
    if kind == "delta":
        # the Delta Lake export (exactly-once appends to a table) plugs in here
        raise InputError(
            f"{path}: exporting to a Delta Lake table is not available in this installation; "
            "give a .csv or .parquet path, or --format csv|parquet"
        )
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    cond, params = visible(flt, store).sql()
    options = "FORMAT csv, HEADER" if kind == "csv" else "FORMAT parquet"
    target = str(path).replace("'", "''")
    cols = ", ".join(_csv_cell(c) if kind == "csv" else c for c in LOG_COLUMNS)
    got = store.sql(
        f"COPY (SELECT {cols} FROM postback_log WHERE {cond} "
        f"ORDER BY fired_at, dispatch_id, attempt) TO '{target}' ({options})",
        params,
    )
    return int(got.item()) if got.height else 0


def _csv_cell(col: str) -> str:
    """A text column of the log as a CSV export writes it (see ``csv_safe``): a cell that
    starts like a spreadsheet formula gets a leading single quote."""
    if LOG_SCHEMA[col] != pl.String:
        return col
    return (
        f"CASE WHEN regexp_matches({col}, '{FORMULA_START}') THEN '''' || {col} "
        f"ELSE {col} END AS {col}"
    )


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


def prune(store: LogStore, before: When, *, dry_run: bool = False) -> PruneResult:
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
    store.mark_retried()  # marks from scratch: deleting may renumber rows
    store.sql("CHECKPOINT")
    return result
