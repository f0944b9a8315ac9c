"""The write side of a DuckDB attempt log, private to the package: what a send, backfill,
import, prune and the host-health commands do to it (append attempt rows, keep the
retried marks, journal a run's attempts, start and finish runs, replay a dead run's
journal). Readers see the log through ``LogReader``; ``log_writer`` gives the writer of a
``LogStore`` and refuses any other log (a Delta log is read, never written)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import polars as pl

from .._errors import StoreError, StoreLockedError
from .._util import DISPATCH_KEY, first_line
from ._journal import replay
from ._owner import Owner
from ._schema import EXTRA_COLUMNS, LOG_COLUMNS, LOG_SCHEMA, RETRIED_UPTO, mark_retried_sql

if TYPE_CHECKING:
    from ._journal import Journal
    from ._reader import LogReader

#: attempt rows to append: a frame, or mappings of log columns
Rows = pl.DataFrame | Iterable[Mapping[str, Any]]

#: why a log that is not a LogStore (a Delta log) cannot be written
NEVER_WRITTEN = (
    "a Delta log is read here, never written: send or backfill into a DuckDB log (--db), "
    "then postback-lab log export it"
)


class _DuckLog(Protocol):
    """What the writer uses of its LogStore (which creates it: this module never imports
    that one)."""

    path: Path
    _con: duckdb.DuckDBPyConnection
    _lock: threading.RLock
    _journal: Journal

    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame: ...

    def retried_upto(self) -> int: ...


def log_writer(log: LogReader) -> LogWriter:
    """The writer of ``log``, a LogStore (the package's senders, importer, prune and host
    commands write through it); any other log is refused with a StoreError: a Delta log
    is read, never written."""
    writer = getattr(log, "_writer", None)
    if not isinstance(writer, LogWriter):
        raise StoreError(f"{log.path}: {NEVER_WRITTEN}")
    return writer


class LogWriter:
    """Writes one DuckDB log (``LogStore``), through its connection and under its lock;
    one per LogStore, so its ``sending`` hold is the log's."""

    def __init__(self, log: _DuckLog) -> None:
        self._log = log
        self._sending = threading.Lock()

    @property
    def path(self) -> Path:
        """The log's file."""
        return self._log.path

    @contextmanager
    def sending(self, what: str = "a send") -> Iterator[None]:
        """Hold this log for one send or backfill: a second one on the same LogStore (two
        notebook cells, two tasks) is refused with StoreLockedError while it runs."""
        if not self._sending.acquire(blocking=False):
            raise StoreLockedError(
                f"{self._log.path}: another send or backfill is writing to this log in this "
                f"process; wait for it to finish before starting {what}"
            )
        try:
            yield
        finally:
            self._sending.release()

    # -- appends -------------------------------------------------------------------
    def append(self, rows: Rows, *, check_attempts: bool = True, mark: bool = True) -> int:
        """``LogStore.append``: one committed INSERT from Arrow, attempt numbers checked
        unless ``check_attempts`` is False (the sender and the importer number them)."""
        frame = (
            rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows), schema=LOG_SCHEMA)
        )
        if frame.height == 0:
            return 0
        for col, dt in LOG_SCHEMA.items():
            if col not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=dt).alias(col))
        extra = {c: dt for c, dt in EXTRA_COLUMNS.items() if c in frame.columns}
        types = pl.Schema({**LOG_SCHEMA, **extra})
        frame = frame.select([*LOG_COLUMNS, *extra]).cast(types)
        if check_attempts:
            self._check_attempts(frame)
        cols = ", ".join([*LOG_COLUMNS, *extra])
        self.exec(
            f"INSERT INTO postback_log ({cols}, dispatch_key) SELECT {cols}, {DISPATCH_KEY} "
            "FROM batch",
            batch=frame,
        )
        if mark:
            self.mark_retried()
        return frame.height

    def mark_retried(self) -> None:
        """Mark attempt-1 rows of dispatches retried in rows appended since the last marks,
        in one transaction with the new watermark. After a crash between an append and
        its marks the watermark lags: the next append, run end or writable audit catches
        up, and a read-only audit takes its slower, equally exact path."""
        with self._log._lock:
            hi = self._log._con.execute("SELECT max(rowid) FROM postback_log").fetchall()[0][0]
            lo = self._log.retried_upto()
            if hi is None or hi <= lo:
                return
            con = self._log._con
            con.execute("BEGIN").fetchall()
            try:
                con.execute(mark_retried_sql(lo, hi)).fetchall()
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [RETRIED_UPTO, str(hi)]
                ).fetchall()
                con.execute("COMMIT").fetchall()
            except duckdb.Error as exc:
                con.execute("ROLLBACK").fetchall()
                raise StoreError(
                    f"{self._log.path}: cannot write the log ({first_line(exc)})"
                ) from exc

    def _check_attempts(self, frame: pl.DataFrame) -> None:
        clash = self._log.sql(
            f"""
            WITH b AS (
                SELECT __row, {DISPATCH_KEY} AS __k, attempt,
                    coalesce(dispatch_id, transaction_id) AS __who
                FROM batch),
            again AS (
                SELECT __row, __who, attempt, 'this batch' AS place FROM b
                WHERE attempt IS NOT NULL
                QUALIFY __row > min(__row) OVER (PARTITION BY __k, attempt)
                UNION ALL
                SELECT __row, __who, b.attempt, 'the log' FROM b
                SEMI JOIN postback_log l ON l.dispatch_key = b.__k AND l.attempt = b.attempt)
            SELECT * FROM again ORDER BY __row LIMIT 1""",
            batch=frame.with_row_index("__row", offset=1),
        )
        if clash.height:
            row, who, attempt, place = clash.row(0)
            raise StoreError(
                f"{self._log.path}: row {row} of the rows to append repeats attempt {attempt} of "
                f"dispatch {who!r}, which {place} already has; number attempts after "
                "LogStore.last_attempts() (or use import_log for a platform export). "
                "Nothing was appended."
            )

    # -- attempt journal (see _journal) -----------------------------------------------
    def journal_path(self, run_id: str) -> Path:
        """The journal file of a run of this log."""
        return self._log._journal.path(run_id)

    def journal(self, run_id: str, kind: str, rows: list[dict[str, Any]]) -> None:
        """Append 'start' or 'done' records of attempts to the run's journal."""
        self._log._journal.write(run_id, kind, rows)

    def journal_lines(self, run_id: str, text: str) -> None:
        """Append records already written as JSON lines to the run's journal (the sender's
        compact 'done' records: ``{"k": "done"}``, the attempt's key and ``DONE_FIELDS``)."""
        self._log._journal.write_lines(run_id, text)

    def recover_inflight(self) -> int:
        """Replay journals left by a process that died: completed attempts missing from the
        log are appended as they were; attempts that never completed are logged as
        ``cancelled`` with an 'unknown result' error (they may have reached the partner).
        Returns the number of rows recovered."""
        recovered = 0
        self._crash_ownerless_runs()
        for run_id, path in list(self._log._journal.orphans()):
            missing = self._log.sql(
                "SELECT r.* FROM r ANTI JOIN postback_log l USING (run_id, dispatch_id, attempt)",
                r=replay(path),
            )
            self.append(missing, check_attempts=False)  # numbered by the sender that died
            recovered += missing.height
            self.exec(
                "UPDATE runs SET state = 'crashed', finished_at = ? WHERE run_id = ? "
                "AND state = 'running'",
                params=[datetime.now(UTC), run_id],
            )
            path.unlink()
        return recovered

    def _crash_ownerless_runs(self) -> None:
        """Runs still 'running' whose process is gone (killed before or after writing its
        journal) are marked 'crashed'; a live process's run is left alone."""
        running = self._log.sql("SELECT run_id, note FROM runs WHERE state = 'running'")
        gone = [
            run_id
            for run_id, note in running.iter_rows()
            if (owner := Owner.parse(note)) is None or not owner.alive()
        ]
        if gone:
            self.exec(
                "UPDATE runs SET state = 'crashed', finished_at = ? WHERE run_id IN "
                f"({', '.join('?' * len(gone))}) AND state = 'running'",
                params=[datetime.now(UTC), *gone],
            )

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, kind: str, planned: int, skipped: int) -> str:
        """Record a new running send/backfill; returns its run id."""
        run_id = uuid.uuid4().hex[:12]
        owner = Owner.current()
        self._log._journal.claim(run_id, owner)
        self.exec(
            "INSERT INTO runs (run_id, kind, started_at, state, planned, skipped_delivered, "
            "note) VALUES (?, ?, ?, 'running', ?, ?, ?)",
            params=[run_id, kind, datetime.now(UTC), planned, skipped, owner.note()],
        )
        return run_id

    def finish_run(
        self,
        run_id: str,
        state: str,
        attempts: int,
        delivered: int,
        failed: int,
        *,
        keep_journal: bool = False,
    ) -> None:
        """Record how a run ended, bring the retried marks up to date, drop its journal
        (``keep_journal``: the log lacks some of its attempts; the next send replays it)."""
        if keep_journal:
            self._log._journal.release(run_id)
        self.exec(
            "UPDATE runs SET finished_at = ?, state = ?, attempts = ?, delivered = ?, "
            "failed = ? WHERE run_id = ?",
            params=[datetime.now(UTC), state, attempts, delivered, failed, run_id],
        )
        self.mark_retried()  # the run appended without marking
        if not keep_journal:
            self._log._journal.finish(run_id)

    def close_journal(self, run_id: str) -> None:
        """Close a run's journal and keep the file (see ``finish_run``)."""
        self._log._journal.release(run_id)

    def record_import(
        self, run_id: str, source: str, attempts: int, delivered: int, failed: int
    ) -> None:
        """Record a completed import of a platform export as a run of kind 'import'."""
        self.exec(
            "INSERT INTO runs (run_id, kind, started_at, finished_at, state, planned, "
            "attempts, delivered, failed, note) VALUES (?, 'import', now(), now(), "
            "'completed', NULL, ?, ?, ?, ?)",
            params=[run_id, attempts, delivered, failed, source],
        )

    def exec(self, query: str, params: list[Any] | None = None, **frames: pl.DataFrame) -> None:
        with self._log._lock:
            try:
                for name, frame in frames.items():
                    self._log._con.register(name, frame.to_arrow())
                self._log._con.execute(query, params or []).fetchall()
            except duckdb.Error as exc:
                raise StoreError(
                    f"{self._log.path}: cannot write the log ({first_line(exc)})"
                ) from exc
            finally:
                for name in frames:
                    self._log._con.unregister(name)
