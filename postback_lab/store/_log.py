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
import weakref
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .._errors import StoreError, StoreLockedError
from .._util import connect, first_line, render
from ._journal import Journal
from ._migrate import discard_copy, log_version, migrate, refuse_newer, upgraded_copy
from ._pending import pending_attempts
from ._reader import LogReader, run_sql
from ._schema import SCHEMA_VERSION
from ._writer import LogWriter, Rows

DEFAULT_DB = "postback_lab.duckdb"


class LogStore(LogReader):
    """The attempt log in one DuckDB file (``postback_lab.duckdb`` unless told otherwise):
    the queries of ``LogReader`` (``sql``, ``attempts``, ``runs``, ``delivered_ids`` …),
    ``append`` for attempt rows, and ``last_attempts`` to number them."""

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
        self._writer = LogWriter(self)
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
        try:
            self._check_or_migrate()
        except BaseException as exc:
            # a half-opened store holds nothing: its connection closed, its claim on the
            # file released (the next open of the path must not find it "already open")
            self.close()
            if isinstance(exc, duckdb.Error):
                raise StoreError(f"{self.path}: cannot open the log ({first_line(exc)})") from exc
            raise

    def _check_or_migrate(self) -> None:
        """A writer brings the log to the current schema (a new or empty file becomes a
        log); a reader checks it is one, reading an older log from a migrated copy. A
        DuckDB file that is not a log is refused either way, untouched."""
        if not self.read_only:
            with self._lock:
                migrate(self._con, self.path)
            return
        version = log_version(self._con, self.path, new_ok=False)
        if version == SCHEMA_VERSION:
            return
        refuse_newer(self.path, version)
        # an older log: read a migrated copy, so every query sees the current columns
        self._con.close()
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

    def __repr__(self) -> str:
        return f"LogStore({str(self.path)!r})"

    # -- queries -----------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame:
        """Run SQL on the log; keyword arguments are Polars frames visible as tables. A
        DuckDB error becomes a StoreError (the boundary: none escapes raw)."""
        return run_sql(self._con, self._lock, self.path, query, params, frames)

    def last_attempts(self, dispatch_ids: pl.Series) -> dict[str, int]:
        """The highest attempt number logged per dispatch, for numbering new attempts."""
        ids = pl.DataFrame({"dispatch_id": dispatch_ids.unique()})
        q = (
            "SELECT dispatch_id, max(attempt) AS a FROM postback_log SEMI JOIN ids USING "
            "(dispatch_id) GROUP BY dispatch_id"
        )
        return dict(self.sql(q, ids=ids).iter_rows())

    def append(self, rows: Rows, *, check_attempts: bool = True, mark: bool = True) -> int:
        """Append attempt rows in one committed INSERT from Arrow; returns the row count.

        A dispatch's attempt numbers must be unique (audit and reconcile count on it): rows
        repeating one already in the log or in the batch are refused, naming the first.
        The sender and the importer number attempts themselves and skip the check.
        ``mark``: bring the retried marks up to date (the sender does it once per run)."""
        return self._writer.append(rows, check_attempts=check_attempts, mark=mark)

    def recover_inflight(self) -> int:
        """Replay journals left by a process that died: completed attempts missing from the
        log are appended as they were; attempts that never completed are logged as
        ``cancelled`` with an 'unknown result' error (they may have reached the partner).
        Returns the number of rows recovered. Every send and backfill does it first."""
        return self._writer.recover_inflight()

    def pending(self) -> list[tuple[Path, int]]:
        """(journal, attempts) of each run that stopped without writing its attempts to the
        log; the next send or backfill adds them (a read-only look cannot)."""
        return pending_attempts(self)

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
