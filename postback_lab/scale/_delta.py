"""The central attempt log as a Delta Lake table (delta-rs: no JVM, any object store).

``export_log`` appends the attempts of DuckDB logs (one per send shard, say) exactly
once: each run's rows go in batches, in the order the log got them, and each batch is
committed together with an application transaction ``(postback_lab:<run>, rows so far)``
in the table's own log. A re-export starts after the rows the table has recorded for the
run, so running it again (after a kill, or on a schedule) adds nothing twice and loses
nothing. The table is partitioned by the month of ``fired_at``.

Reading the table as a log (``open_delta_log``, ``"delta:PATH"``) belongs to ``store``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .._errors import InputError, StoreError
from .._util import first_line
from ..store import (
    LOG_COLUMNS,
    LOG_SCHEMA,
    MONTH,
    LogReader,
    LogSource,
    LogStore,
    exported_ids,
    open_log,
    remember_export,
    table_uri,
)
from ..store import delta_table as _table
from ..store import import_deltalake as _deltalake

if TYPE_CHECKING:
    from deltalake import DeltaTable

APP_PREFIX = "postback_lab:"
DEFAULT_BATCH = 500_000


@dataclass(frozen=True)
class ExportResult:
    """What an export added: rows per run, runs already there, runs left for later."""

    to: str
    rows: int
    runs: dict[str, int] = field(default_factory=dict)  # run -> rows added now
    already: int = 0  # runs whose rows were all in the table before
    skipped: tuple[str, ...] = ()  # runs still running (or crashed, not yet recovered)
    version: int | None = None

    def summary(self) -> str:
        """One line: rows added from how many runs; runs left for a later export."""
        if self.rows:
            head = f"{self.to}: exported {self.rows:,} attempts from {len(self.runs)} runs"
        else:
            head = f"{self.to}: nothing new to export"
        if self.already:
            head += f" ({self.already} runs already exported)"
        if self.skipped:
            head += (
                f"; {len(self.skipped)} runs still running, left for a later export: "
                + ", ".join(self.skipped[:5])
            )
        return head

    def __str__(self) -> str:
        return self.summary()


def export_log(
    log: LogSource,
    to: str | Path,
    *,
    batch_rows: int = DEFAULT_BATCH,
    storage_options: dict[str, str] | None = None,
) -> ExportResult:
    """Append the attempts of ``log`` (a DuckDB log) that the Delta table ``to`` does not
    have yet, run by run, each batch an exactly-once commit (see the module docstring).

    Runs still running are left for a later export. ``to`` is a folder or a URI
    (``s3://``, ``gs://``, ``az://`` … with ``storage_options``); the table is created by
    the first export.
    """
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise InputError(f"batch_rows={batch_rows!r} must be a whole number >= 1")
    dl = _deltalake()
    uri = table_uri(to)
    store, owned = (log, False) if isinstance(log, LogReader) else open_log(log, "read")
    try:
        if not isinstance(store, LogStore):  # a Delta log
            raise InputError(f"{store.path}: export a DuckDB log, not a Delta table")
        runs = _runs(store)
        table = _table(dl, uri, storage_options)
        if not str(store.path).startswith("delta:"):
            remember_export(store.path, uri)  # known before its first commit: prune waits
        # after a prune the rows of a run are no longer where a row count says: take what
        # the table lacks by attempt identity instead
        pruned = store.sql("SELECT count(*) FROM meta WHERE key = 'pruned_before'").item() > 0
        added: dict[str, int] = {}
        already = 0
        skipped = []
        for run_id, state, rows in runs.iter_rows():
            if state == "running":
                skipped.append(run_id)
                continue
            app, name = _app_id(store, run_id), run_id or "(no run)"
            conflicts, seen = 0, -1
            while True:
                done = (table.transaction_version(app) or 0) if table is not None else 0
                if pruned and done > 0:
                    batch = _untaken(store, uri, run_id, batch_rows, storage_options)
                    if batch.height == 0:
                        already += name not in added
                        break
                elif done >= rows:
                    already += name not in added
                    break
                else:
                    batch = _batch(store, run_id, done, batch_rows)
                if done > seen:  # the run moved on (maybe by another export): not stuck
                    conflicts, seen = 0, done
                try:
                    _append(dl, table or uri, batch, app, done + batch.height, storage_options)
                except dl.exceptions.CommitFailedError as exc:
                    # another export of this run committed first: carry on after its rows
                    # (20 conflicts in a row with no progress at all: something else)
                    conflicts += 1
                    if conflicts > 20:
                        raise StoreError(f"{uri}: cannot append ({first_line(exc)})") from exc
                else:
                    added[name] = added.get(name, 0) + batch.height
                if table is None:
                    table = _table(dl, uri, storage_options)
                else:
                    table.update_incremental()
        version = table.version() if table is not None else None
        return ExportResult(uri, sum(added.values()), added, already, tuple(skipped), version)
    finally:
        if owned:
            store.close()


def _runs(store: LogStore) -> pl.DataFrame:
    """(run_id, state, rows) of every run with rows in the log, oldest first; rows
    without a run (appended by hand) form one more, with a null run id."""
    return store.sql(
        """
        SELECT l.run_id, r.state, count(*) AS rows, min(l.rowid) AS first
        FROM postback_log l LEFT JOIN runs r USING (run_id)
        GROUP BY l.run_id, r.state ORDER BY first"""
    ).select("run_id", "state", "rows")


def _app_id(store: LogStore, run_id: str | None) -> str:
    """The table's transaction id of a run: its run id (random per send; a content hash
    for an import, so one export imported into two logs is exported once). Rows without
    a run are named by a hash of the first of them."""
    if run_id:
        return APP_PREFIX + run_id
    first = store.sql(
        "SELECT dispatch_id, transaction_id, rule, attempt, fired_at FROM postback_log "
        "WHERE run_id IS NULL ORDER BY rowid LIMIT 1"
    ).row(0)
    return APP_PREFIX + "rows-" + hashlib.sha256(repr(first).encode()).hexdigest()[:16]


def _batch(store: LogStore, run_id: str | None, offset: int, size: int) -> pl.DataFrame:
    """Rows ``offset``… of a run in the order the log got them, with their month."""
    cols = ", ".join(LOG_COLUMNS)
    frame = store.sql(
        f"SELECT {cols} FROM postback_log WHERE run_id IS NOT DISTINCT FROM ? "
        f"ORDER BY rowid LIMIT {int(size)} OFFSET {int(offset)}",
        [run_id],
    ).cast(LOG_SCHEMA)  # type: ignore[arg-type]
    return frame.with_columns(pl.col("fired_at").dt.strftime("%Y-%m").alias(MONTH))


def _untaken(
    store: LogStore,
    uri: str,
    run_id: str | None,
    size: int,
    storage_options: dict[str, str] | None,
) -> pl.DataFrame:
    """The first ``size`` rows of a run that the table at ``uri`` does not hold, by
    attempt identity, in the order the log got them, with their month."""
    taken = exported_ids(uri, [run_id], storage_options)
    if taken is None:
        taken = pl.DataFrame(
            schema={"run_id": pl.String, "dispatch_id": pl.String, "attempt": pl.Int32}
        )
    cols = ", ".join(f"l.{c}" for c in LOG_COLUMNS)
    frame = store.sql(
        f"SELECT {cols} FROM postback_log l WHERE l.run_id IS NOT DISTINCT FROM ? "
        "AND NOT EXISTS (SELECT 1 FROM taken t WHERE t.dispatch_id IS NOT DISTINCT FROM "
        "l.dispatch_id AND t.attempt IS NOT DISTINCT FROM l.attempt) "
        f"ORDER BY l.rowid LIMIT {int(size)}",
        [run_id],
        taken=taken,
    ).cast(LOG_SCHEMA)  # type: ignore[arg-type]
    return frame.with_columns(pl.col("fired_at").dt.strftime("%Y-%m").alias(MONTH))


def _append(
    dl: Any,
    table: DeltaTable | str,
    batch: pl.DataFrame,
    app_id: str,
    version: int,
    storage_options: dict[str, str] | None,
) -> None:
    """One exactly-once commit: the batch and the run's new row count, atomically. Given
    the table as read when its count for the run was taken, a commit racing another
    export of the same run fails (CommitFailedError) instead of adding rows twice;
    appends of other runs are merged."""
    props = dl.CommitProperties(
        app_transactions=[dl.Transaction(app_id=app_id, version=version)],
        custom_metadata={"postback_lab": f"export {app_id} through row {version}"},
        max_commit_retries=100,  # concurrent exporters of other shards: retry the append
    )
    try:
        dl.write_deltalake(
            table,
            batch.to_arrow(),
            mode="append",
            partition_by=[MONTH],
            commit_properties=props,
            storage_options=storage_options if isinstance(table, str) else None,
        )
    except dl.exceptions.CommitFailedError:
        raise
    except (OSError, ValueError, dl.exceptions.DeltaError) as exc:
        where = table if isinstance(table, str) else table.table_uri
        raise StoreError(f"{where}: cannot append to the Delta log ({first_line(exc)})") from exc


def optimize_log(
    to: str | Path,
    *,
    vacuum: bool = False,
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Compact the small files of the Delta log (one per exported batch and month) into
    large ones; ``vacuum``: then delete files no version newer than 7 days needs.
    Returns delta-rs's figures (files added and removed …)."""
    dl = _deltalake()
    uri = table_uri(to)
    table = _table(dl, uri, storage_options)
    if table is None:
        raise InputError(f"{uri}: no Delta log here; export one with postback-lab log export")
    metrics: dict[str, Any] = dict(table.optimize.compact())
    if vacuum:
        metrics["vacuumed"] = len(table.vacuum(dry_run=False))
    return metrics
