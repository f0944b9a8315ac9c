"""LogStore: the attempt log in one DuckDB file. Appends are batched from Arrow; queries
return Polars. Every append is its own committed transaction, so a crash loses nothing
that was appended.

One writer per log file: DuckDB's file lock keeps out other processes, and this module
keeps out a second writable LogStore on the same file in this process; one LogStore runs
one send or backfill at a time. Each refusal is the same StoreLockedError."""

from __future__ import annotations

import os
import re
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .._errors import StoreError, StoreLockedError
from .._util import DISPATCH_KEY, as_utc, connect, first_line, render
from . import _link
from ._journal import Journal, replay
from ._migrate import discard_copy, migrate, stored_version, upgraded_copy
from ._owner import Owner
from ._pending import pending_attempts
from ._schema import (
    EXTRA_COLUMNS,
    LOG_COLUMNS,
    LOG_SCHEMA,
    RETRIED_UPTO,
    SCHEMA_VERSION,
    mark_retried_sql,
)

DEFAULT_DB = "postback_lab.duckdb"


class LogStore:
    """The attempt log in one DuckDB file (``postback_lab.duckdb`` unless told otherwise)."""

    #: a read-only open of a log written by an older postback_lab reads a migrated
    #: temporary copy (the file itself is never written by a read)
    _copy: Path | None = None

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.closed = False
        self._lock = threading.RLock()
        self._sending = threading.Lock()
        self._journal = Journal(self.path)
        if read_only and not self.path.exists():
            raise StoreError(f"no such log: {self.path}")
        with _OPEN_LOCK:
            holder = _writer_of(self.path)
            if holder is not None:
                raise StoreLockedError(
                    f"{self.path} is already open for writing in this process ({holder!r}); "
                    + (
                        "read through it, or close it first"
                        if read_only
                        else "use that LogStore, or close it first"
                    )
                )
            self._con = self._connect(self.path)
            if not read_only and (key := _file_key(self.path)) is not None:
                _WRITERS[key] = weakref.ref(self)
        if not read_only:
            with self._lock:
                migrate(self._con, self.path)
            return
        version = stored_version(self._con)
        if version == SCHEMA_VERSION:
            return
        self._con.close()
        if version == 0:
            raise StoreError(f"{self.path}: not a postback_lab attempt log (no schema version)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer postback_lab (schema {version} > "
                f"{SCHEMA_VERSION}); upgrade postback_lab"
            )
        # an older log: read a migrated copy, so every query sees the current columns
        self._copy = upgraded_copy(self.path)
        self._con = self._connect(self._copy)

    def _connect(self, path: Path) -> duckdb.DuckDBPyConnection:
        try:
            return connect(path, read_only=self.read_only)
        except duckdb.IOException as exc:
            raise _translate(self.path, exc) from exc
        except duckdb.ConnectionException as exc:
            # DuckDB keeps one configuration per file and process: a reader (read-only)
            # and a writer of the same file cannot both be open in one process
            what = "for reading" if not self.read_only else "for writing"
            raise StoreLockedError(
                f"{self.path} is already open {what} in this process (an explorer, an audit "
                "report, another LogStore); close it first, or open one LogStore(path) and "
                "pass it to both"
            ) from exc
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the log ({first_line(exc)})") from exc

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Close the DuckDB connection (the file stays; a closed store cannot be used)."""
        with self._lock, _OPEN_LOCK:
            self._con.close()
            self.closed = True
            if self._copy is not None:
                discard_copy(self._copy)
            key = _file_key(self.path)
            if not self.read_only and key is not None and _WRITERS.get(key, _dead)() is self:
                del _WRITERS[key]

    @contextmanager
    def sending(self, what: str = "a send") -> Iterator[None]:
        """Hold this log for one send or backfill: a second one on the same LogStore (two
        notebook cells, two tasks) is refused with StoreLockedError while it runs."""
        if not self._sending.acquire(blocking=False):
            raise StoreLockedError(
                f"{self.path}: another send or backfill is writing to this log in this "
                f"process; wait for it to finish before starting {what}"
            )
        try:
            yield
        finally:
            self._sending.release()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogStore({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        """The schema version of the file (migrated to the current one when opened)."""
        row = self.sql("SELECT value FROM meta WHERE key = 'schema_version'").row(0)
        return int(row[0])

    # -- queries -----------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame:
        """Run SQL on the log; keyword arguments are Polars frames visible as tables. A
        DuckDB error becomes a StoreError (the boundary: none escapes raw)."""
        with self._lock:
            con = self._con.cursor()
            try:
                for name, frame in frames.items():
                    con.register(
                        name, frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
                    )
                out = con.sql(query, params=params or None).pl()
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: a query failed ({first_line(exc)})") from exc
            finally:
                con.close()
        # DuckDB names its UTC zone 'Etc/UTC'; the rest of the package says 'UTC'
        return as_utc(out, naive=False)

    def check_condition(
        self, where: str, params: list[Any] | None = None, *, name: str = "where"
    ) -> str:
        """``where`` when it is one SQL condition DuckDB can run on ``postback_log``;
        else a StoreError naming it: a condition a user typed is checked on its own,
        before it is spliced into a larger query whose error would point elsewhere."""
        probe = f"SELECT count(*) FROM (SELECT * FROM postback_log LIMIT 0) WHERE ({where})"
        try:
            if len(duckdb.extract_statements(probe)) != 1:
                raise duckdb.ParserException("more than one statement")
            self.sql(probe, params)
        except (duckdb.Error, StoreError) as exc:
            cause = exc.__cause__ if isinstance(exc, StoreError) else exc
            raise StoreError(
                f"{name}={where!r} is not a SQL condition on the log's columns "
                f"({first_line(cause or exc)})"
            ) from cause
        return where

    def attempts(self, where: str = "", params: list[Any] | None = None) -> pl.DataFrame:
        """Rows of ``postback_log`` (optionally filtered by a SQL condition)."""
        if where:
            self.check_condition(where, params)
        cond = f" WHERE {where}" if where else ""
        cols = ", ".join(LOG_COLUMNS)
        frame = self.sql(
            f"SELECT {cols} FROM postback_log{cond} ORDER BY fired_at, attempt", params
        )
        return frame.cast(LOG_SCHEMA)  # type: ignore[arg-type]

    def runs(self) -> pl.DataFrame:
        """The ``runs`` table: one row per send, backfill or import, oldest first."""
        return self.sql("SELECT * FROM runs ORDER BY started_at")

    def count(self) -> int:
        """The number of attempt rows in the log."""
        return int(self.sql("SELECT count(*) AS n FROM postback_log").item())

    def delivered_ids(self, dispatch_ids: pl.Series | pl.DataFrame | None = None) -> set[str]:
        """Dispatch ids with at least one delivered attempt (optionally among ``dispatch_ids``).

        Given a plan frame: its dispatches that reconcile calls delivered, imported rows
        linked by rule + transaction id (+ status); imported rows of its transactions that
        link to none of them are reported on stderr (see ``links``)."""
        if isinstance(dispatch_ids, pl.DataFrame):
            return _link.delivered_ids(self, dispatch_ids)
        if dispatch_ids is None:
            q = "SELECT DISTINCT dispatch_id FROM postback_log WHERE outcome = 'delivered'"
            return set(self.sql(q)["dispatch_id"].to_list())
        ids = pl.DataFrame({"dispatch_id": dispatch_ids.unique()})
        q = (
            "SELECT DISTINCT l.dispatch_id FROM postback_log l SEMI JOIN ids USING (dispatch_id)"
            " WHERE l.outcome = 'delivered'"
        )
        return set(self.sql(q, ids=ids)["dispatch_id"].to_list())

    def links(self, plan: pl.DataFrame) -> _link.Links:
        """The imported (and id-less) rows of the log linked to the dispatches of ``plan``."""
        return _link.links(self, plan)

    def last_attempts(self, dispatch_ids: pl.Series) -> dict[str, int]:
        """The highest attempt number logged per dispatch, for numbering new attempts."""
        ids = pl.DataFrame({"dispatch_id": dispatch_ids.unique()})
        q = (
            "SELECT dispatch_id, max(attempt) AS a FROM postback_log SEMI JOIN ids USING "
            "(dispatch_id) GROUP BY dispatch_id"
        )
        return dict(self.sql(q, ids=ids).iter_rows())

    # -- appends -------------------------------------------------------------------
    def append(
        self,
        rows: pl.DataFrame | Iterable[Mapping[str, Any]],
        *,
        check_attempts: bool = True,
        mark: bool = True,
    ) -> int:
        """Append attempt rows in one committed INSERT from Arrow; returns the row count.

        A dispatch's attempt numbers must be unique (audit and reconcile count on it): rows
        repeating one already in the log or in the batch are refused, naming the first.
        The sender and the importer number attempts themselves and skip the check.
        ``mark``: bring the retried marks up to date (the sender does it once per run)."""
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
        self._exec(
            f"INSERT INTO postback_log ({cols}, dispatch_key) SELECT {cols}, {DISPATCH_KEY} "
            "FROM batch",
            batch=frame,
        )
        if mark:
            self.mark_retried()
        return frame.height

    def retried_upto(self) -> int:
        """The rowid up to which the retried marks are complete (-1: none)."""
        with self._lock:
            row = self._con.execute(
                "SELECT value FROM meta WHERE key = ?", [RETRIED_UPTO]
            ).fetchall()
        return int(row[0][0]) if row else -1

    def mark_retried(self) -> None:
        """Mark attempt-1 rows of dispatches retried in rows appended since the last marks,
        in one transaction with the new watermark. After a crash between an append and
        its marks the watermark lags: the next append, run end or writable audit catches
        up, and a read-only audit takes its slower, equally exact path."""
        with self._lock:
            hi = self._con.execute("SELECT max(rowid) FROM postback_log").fetchall()[0][0]
            lo = self.retried_upto()
            if hi is None or hi <= lo:
                return
            con = self._con
            con.execute("BEGIN").fetchall()
            try:
                con.execute(mark_retried_sql(lo, hi)).fetchall()
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [RETRIED_UPTO, str(hi)]
                ).fetchall()
                con.execute("COMMIT").fetchall()
            except duckdb.Error as exc:
                con.execute("ROLLBACK").fetchall()
                raise StoreError(f"{self.path}: cannot write the log ({first_line(exc)})") from exc

    def _check_attempts(self, frame: pl.DataFrame) -> None:
        clash = self.sql(
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
                f"{self.path}: row {row} of the rows to append repeats attempt {attempt} of "
                f"dispatch {who!r}, which {place} already has; number attempts after "
                "LogStore.last_attempts() (or use import_log for a platform export). "
                "Nothing was appended."
            )

    # -- attempt journal (see _journal) -----------------------------------------------
    def journal_path(self, run_id: str) -> Path:
        """The journal file of a run of this log."""
        return self._journal.path(run_id)

    def journal(self, run_id: str, kind: str, rows: list[dict[str, Any]]) -> None:
        """Append 'start' or 'done' records of attempts to the run's journal."""
        self._journal.write(run_id, kind, rows)

    def journal_lines(self, run_id: str, text: str) -> None:
        """Append records already written as JSON lines to the run's journal (the sender's
        compact 'done' records: ``{"k": "done"}``, the attempt's key and ``DONE_FIELDS``)."""
        self._journal.write_lines(run_id, text)

    def recover_inflight(self) -> int:
        """Replay journals left by a process that died: completed attempts missing from the
        log are appended as they were; attempts that never completed are logged as
        ``cancelled`` with an 'unknown result' error (they may have reached the partner).
        Returns the number of rows recovered."""
        recovered = 0
        self._crash_ownerless_runs()
        for run_id, path in list(self._journal.orphans()):
            missing = self.sql(
                "SELECT r.* FROM r ANTI JOIN postback_log l USING (run_id, dispatch_id, attempt)",
                r=replay(path),
            )
            self.append(missing, check_attempts=False)  # numbered by the sender that died
            recovered += missing.height
            self._exec(
                "UPDATE runs SET state = 'crashed', finished_at = ? WHERE run_id = ? "
                "AND state = 'running'",
                params=[datetime.now(UTC), run_id],
            )
            path.unlink()
        return recovered

    def _crash_ownerless_runs(self) -> None:
        """Runs still 'running' whose process is gone (killed before or after writing its
        journal) are marked 'crashed'; a live process's run is left alone."""
        running = self.sql("SELECT run_id, note FROM runs WHERE state = 'running'")
        gone = [
            run_id
            for run_id, note in running.iter_rows()
            if (owner := Owner.parse(note)) is None or not owner.alive()
        ]
        if gone:
            self._exec(
                "UPDATE runs SET state = 'crashed', finished_at = ? WHERE run_id IN "
                f"({', '.join('?' * len(gone))}) AND state = 'running'",
                params=[datetime.now(UTC), *gone],
            )

    def pending(self) -> list[tuple[Path, int]]:
        """(journal, attempts) of each run that stopped without writing its attempts to the
        log; the next send or backfill adds them (a read-only look cannot)."""
        return pending_attempts(self)

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, kind: str, planned: int, skipped: int) -> str:
        """Record a new running send/backfill; returns its run id."""
        run_id = uuid.uuid4().hex[:12]
        owner = Owner.current()
        self._journal.claim(run_id, owner)
        self._exec(
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
            self._journal.release(run_id)
        self._exec(
            "UPDATE runs SET finished_at = ?, state = ?, attempts = ?, delivered = ?, "
            "failed = ? WHERE run_id = ?",
            params=[datetime.now(UTC), state, attempts, delivered, failed, run_id],
        )
        self.mark_retried()  # the run appended without marking
        if not keep_journal:
            self._journal.finish(run_id)

    def close_journal(self, run_id: str) -> None:
        """Close a run's journal and keep the file (see ``finish_run``)."""
        self._journal.release(run_id)

    def record_import(
        self, run_id: str, source: str, attempts: int, delivered: int, failed: int
    ) -> None:
        """Record a completed import of a platform export as a run of kind 'import'."""
        self._exec(
            "INSERT INTO runs (run_id, kind, started_at, finished_at, state, planned, "
            "attempts, delivered, failed, note) VALUES (?, 'import', now(), now(), "
            "'completed', NULL, ?, ?, ?, ?)",
            params=[run_id, attempts, delivered, failed, source],
        )

    def _exec(self, query: str, params: list[Any] | None = None, **frames: pl.DataFrame) -> None:
        with self._lock:
            try:
                for name, frame in frames.items():
                    self._con.register(name, frame.to_arrow())
                self._con.execute(query, params or []).fetchall()
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: cannot write the log ({first_line(exc)})") from exc
            finally:
                for name in frames:
                    self._con.unregister(name)

    def summary(self) -> str:
        """One line: the file, its attempts and runs."""
        runs = self.sql("SELECT count(*) FROM runs").item()
        return f"{self.path}: {self.count():,} attempts, {runs:,} runs"

    def _repr_html_(self) -> str:
        return render("Attempt log", self.summary(), [("Runs (latest)", self.runs().tail(10))])


#: the writable LogStores of this process, by file (see the module docstring)
_WRITERS: dict[tuple[int, int], weakref.ref[LogStore]] = {}
_OPEN_LOCK = threading.RLock()


def _dead() -> None:
    return None


def _file_key(path: Path) -> tuple[int, int] | None:
    """The file's identity (device, inode): two spellings of one path are one log."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _writer_of(path: Path) -> LogStore | None:
    """The open writable LogStore of this process on ``path``, if any."""
    key = _file_key(path)
    store = _WRITERS.get(key, _dead)() if key is not None else None
    return store if store is not None and not store.closed else None


def _translate(path: Path, exc: duckdb.IOException) -> StoreError:
    text = str(exc)
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f" (PID {pid.group(1)})" if pid else ""
        return StoreLockedError(
            f"{path} is in use by another process{who}; wait for it to finish or close it, "
            "or pass a different --db"
        )
    return StoreError(f"{path}: cannot open the log ({first_line(exc)})")
