"""LogStore: the one place that talks to DuckDB. Appends are batched from Arrow; queries
return Polars. Every append is its own committed transaction, so a crash loses nothing
that was appended."""

from __future__ import annotations

import glob
import html
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .._errors import StoreError, StoreLockedError
from ._schema import (
    DISPATCH_KEY,
    LOG_COLUMNS,
    LOG_SCHEMA,
    MIGRATIONS,
    RETRIED_UPTO,
    SCHEMA_VERSION,
    mark_retried_sql,
)

DEFAULT_DB = "postback_lab.duckdb"


class LogStore:
    """The attempt log in one DuckDB file (``postback_lab.duckdb`` unless told otherwise)."""

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.closed = False
        self._lock = threading.RLock()
        self._journals: dict[str, Any] = {}
        self._con = self._connect()
        if not read_only:
            self._migrate()
        elif 0 < self._stored_version() < SCHEMA_VERSION:
            # an older log opened for reading: upgrade it once (a brief writable open), so
            # every query sees the current columns
            self._con.close()
            LogStore(self.path).close()
            self._con = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as exc:
            raise _translate(self.path, exc) from exc
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the log ({_first(exc)})") from exc
        con.execute("SET TimeZone = 'UTC'").fetchall()
        return con

    def _stored_version(self) -> int:
        """The file's schema version; 0 for a file without one (new, or not a log)."""
        try:
            rows = self._con.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchall()
        except duckdb.CatalogException:
            return 0
        return int(rows[0][0]) if rows else 0

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._con.close()
            self.closed = True

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogStore({str(self.path)!r})"

    def _migrate(self) -> None:
        with self._lock:
            con = self._con
            con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.fetchall()
            current = self._stored_version()
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer postback_lab (schema "
                    f"{current} > {SCHEMA_VERSION}); upgrade postback_lab"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                con.execute("BEGIN").fetchall()
                try:
                    con.execute(MIGRATIONS[version]).fetchall()
                    con.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
                    ).fetchall()
                    con.execute("COMMIT").fetchall()
                except duckdb.Error:
                    con.execute("ROLLBACK").fetchall()
                    raise

    @property
    def schema_version(self) -> int:
        row = self.sql("SELECT value FROM meta WHERE key = 'schema_version'").row(0)
        return int(row[0])

    # -- queries -----------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame:
        """Run SQL on the log; keyword arguments are Polars frames visible as tables."""
        with self._lock:
            con = self._con.cursor()
            try:
                for name, frame in frames.items():
                    con.register(
                        name, frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
                    )
                out = con.sql(query, params=params or None).pl()
            finally:
                con.close()
        # DuckDB names its UTC zone 'Etc/UTC'; the rest of the package says 'UTC'
        return out.with_columns(
            pl.col(c).dt.convert_time_zone("UTC")
            for c, dt in out.schema.items()
            if isinstance(dt, pl.Datetime) and dt.time_zone not in (None, "UTC")
        )

    def attempts(self, where: str = "", params: list[Any] | None = None) -> pl.DataFrame:
        """Rows of ``postback_log`` (optionally filtered by a SQL condition)."""
        cond = f" WHERE {where}" if where else ""
        cols = ", ".join(LOG_COLUMNS)
        frame = self.sql(
            f"SELECT {cols} FROM postback_log{cond} ORDER BY fired_at, attempt", params
        )
        return frame.cast(LOG_SCHEMA)  # type: ignore[arg-type]

    def runs(self) -> pl.DataFrame:
        return self.sql("SELECT * FROM runs ORDER BY started_at")

    def count(self) -> int:
        return int(self.sql("SELECT count(*) AS n FROM postback_log").item())

    def delivered_ids(self, dispatch_ids: pl.Series | None = None) -> set[str]:
        """Dispatch ids with at least one delivered attempt (optionally among ``dispatch_ids``)."""
        if dispatch_ids is None:
            q = "SELECT DISTINCT dispatch_id FROM postback_log WHERE outcome = 'delivered'"
            return set(self.sql(q)["dispatch_id"].to_list())
        ids = pl.DataFrame({"dispatch_id": dispatch_ids.unique()})
        q = (
            "SELECT DISTINCT l.dispatch_id FROM postback_log l SEMI JOIN ids USING (dispatch_id)"
            " WHERE l.outcome = 'delivered'"
        )
        return set(self.sql(q, ids=ids)["dispatch_id"].to_list())

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
        frame = frame.select(list(LOG_COLUMNS)).cast(LOG_SCHEMA)  # type: ignore[arg-type]
        if check_attempts:
            self._check_attempts(frame)
        cols = ", ".join(LOG_COLUMNS)
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
                raise StoreError(f"{self.path}: cannot write the log ({_first(exc)})") from exc

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

    # -- attempt journal ---------------------------------------------------------------
    # Before an attempt goes out a 'start' line is appended to ``<db>.inflight-<run>.jsonl``,
    # and when it ends a 'done' line with its whole log row: line appends (no fsync), so a
    # killed process loses nothing that completed, at almost no cost. A finished run deletes
    # its journal; a journal found later belongs to a process that died mid-send.
    def journal_path(self, run_id: str) -> Path:
        return self.path.with_name(f"{self.path.name}.inflight-{run_id}.jsonl")

    def journal(self, run_id: str, kind: str, rows: list[dict[str, Any]]) -> None:
        """Append 'start' or 'done' records of attempts to the run's journal."""
        if not rows:
            return
        handle = self._journals.get(run_id)
        if handle is None:
            path = self.journal_path(run_id)
            handle = self._journals[run_id] = path.open("a", encoding="utf-8")
        handle.write("".join(json.dumps({"k": kind, **r}, default=str) + "\n" for r in rows))
        handle.flush()

    def recover_inflight(self) -> int:
        """Replay journals left by a process that died: completed attempts missing from the
        log are appended as they were; attempts that never completed are logged as
        ``cancelled`` with an 'unknown result' error (they may have reached the partner).
        Returns the number of rows recovered."""
        recovered = 0
        pattern = f"{glob.escape(self.path.name)}.inflight-*.jsonl"
        for journal in sorted(self.path.parent.glob(pattern)):
            run_id = journal.name.rsplit("inflight-", 1)[1].removesuffix(".jsonl")
            if run_id in self._journals:
                continue  # a live run of this process
            records = []
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the torn last line of a killed writer
            recovered += self._replay(records)
            self._exec(
                "UPDATE runs SET state = 'crashed', finished_at = ? WHERE run_id = ? "
                "AND state = 'running'",
                params=[datetime.now(UTC), run_id],
            )
            journal.unlink()
        return recovered

    def _replay(self, records: list[dict[str, Any]]) -> int:
        if not records:
            return 0
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
            pl.lit("result unknown: the sending process stopped during this attempt").alias(
                "error"
            ),
        )
        rows = (
            pl.concat([done, unknown])
            .drop("k")
            .with_columns(
                pl.col("due_at", "fired_at").str.to_datetime(time_zone="UTC", time_unit="us"),
                pl.col("attempt", "status_code").cast(pl.Float64).cast(pl.Int32),
                pl.col("latency_ms").cast(pl.Float64),
            )
        )
        missing = self.sql(
            "SELECT r.* FROM r ANTI JOIN postback_log l USING (run_id, dispatch_id, attempt)",
            r=rows,
        )
        self.append(missing, check_attempts=False)  # numbered by the sender that died
        return missing.height

    def start_run(self, kind: str, planned: int, skipped: int) -> str:
        run_id = uuid.uuid4().hex[:12]
        self._journals.setdefault(run_id, None)  # claimed: recovery leaves it alone
        self._exec(
            "INSERT INTO runs (run_id, kind, started_at, state, planned, skipped_delivered, "
            "note) VALUES (?, ?, ?, 'running', ?, ?, ?)",
            params=[run_id, kind, datetime.now(UTC), planned, skipped, _owner()],
        )
        return run_id

    def finish_run(
        self, run_id: str, state: str, attempts: int, delivered: int, failed: int
    ) -> None:
        self._exec(
            "UPDATE runs SET finished_at = ?, state = ?, attempts = ?, delivered = ?, "
            "failed = ? WHERE run_id = ?",
            params=[datetime.now(UTC), state, attempts, delivered, failed, run_id],
        )
        self.mark_retried()  # the run appended without marking
        handle = self._journals.pop(run_id, None)
        if handle is not None:
            handle.close()
        self.journal_path(run_id).unlink(missing_ok=True)

    def _exec(self, query: str, params: list[Any] | None = None, **frames: pl.DataFrame) -> None:
        with self._lock:
            try:
                for name, frame in frames.items():
                    self._con.register(name, frame.to_arrow())
                self._con.execute(query, params or []).fetchall()
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: cannot write the log ({_first(exc)})") from exc
            finally:
                for name in frames:
                    self._con.unregister(name)

    def _repr_html_(self) -> str:
        n = self.count()
        return (
            f"<div><b>LogStore</b> {html.escape(str(self.path))}: {n:,} attempts, "
            f"{self.sql('SELECT count(*) FROM runs').item():,} runs</div>"
        )


def _owner() -> str:
    """Identifies this process so a live run's in-flight markers are not recovered."""
    return f"pid:{os.getpid()}"


def _first(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def _translate(path: Path, exc: duckdb.IOException) -> StoreError:
    text = str(exc)
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f" (PID {pid.group(1)})" if pid else ""
        return StoreLockedError(
            f"{path} is in use by another process{who}; wait for it to finish or close it, "
            "or pass a different --db"
        )
    return StoreError(f"{path}: cannot open the log ({_first(exc)})")


def open_log(log: LogStore | str | Path | None) -> tuple[LogStore, bool]:
    """A LogStore from a store, a path or None (the default file); True when opened here."""
    if isinstance(log, LogStore):
        return log, False
    return LogStore(DEFAULT_DB if log is None else log), True
