"""LogReader: the read side of an attempt log, what audit, reconcile, the explorer and
``log show``/``export`` use. A DuckDB log (``LogStore``) and the central Delta Lake log
(``DeltaLog``) are both one; each says how it runs SQL (``sql``), describes itself
(``summary``) and closes, and the queries here are written once on top of ``sql``.

Writing is not part of it: the DuckDB log's writer (``log_writer``) is private to the
package's senders and importer, and a Delta log has none.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from .._errors import StoreError
from .._util import as_utc, first_line
from . import _link
from ._schema import LOG_COLUMNS, LOG_SCHEMA, RETRIED_UPTO

if TYPE_CHECKING:
    from typing import Self


class LogReader(ABC):
    """An attempt log opened for reading: ``postback_log``, ``runs`` and ``meta`` as
    SQL tables, and the queries audit, reconcile and the explorer run on them."""

    #: where the log is (a DuckDB file; ``delta:URI`` for a Delta log)
    path: Path
    #: True when this object never writes the log
    read_only: bool
    #: True once ``close`` ran (a closed log cannot be queried)
    closed: bool

    @abstractmethod
    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame:
        """Run SQL on the log; keyword arguments are Polars frames visible as tables."""

    @abstractmethod
    def close(self) -> None:
        """Let go of the log (its file or table stays)."""

    @abstractmethod
    def summary(self) -> str:
        """One line: where the log is and what it holds."""

    @abstractmethod
    def _repr_html_(self) -> str: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the log (a DuckDB log is migrated to the current one
        when opened)."""
        row = self.sql("SELECT value FROM meta WHERE key = 'schema_version'").row(0)
        return int(row[0])

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

    def retried_upto(self) -> int:
        """The rowid up to which the retried marks are complete (-1: none)."""
        got = self.sql("SELECT value FROM meta WHERE key = ?", [RETRIED_UPTO])
        return int(got.item()) if got.height else -1

    def pending(self) -> list[tuple[Path, int]]:
        """(journal, attempts) of each run that stopped without writing its attempts to the
        log; the next send or backfill adds them (a read-only look cannot). None here."""
        return []


def run_sql(
    con: duckdb.DuckDBPyConnection,
    lock: threading.RLock,
    where: Path,
    query: str,
    params: list[Any] | None,
    frames: dict[str, Any],
) -> pl.DataFrame:
    """``query`` on a cursor of ``con`` with ``frames`` (Polars or Arrow) registered as
    tables, as Polars; a DuckDB error becomes a StoreError naming ``where`` (the
    boundary: none escapes raw)."""
    with lock:
        cur = con.cursor()
        try:
            for name, frame in frames.items():
                cur.register(name, frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame)
            out = cur.sql(query, params=params or None).pl()
        except duckdb.Error as exc:
            raise StoreError(f"{where}: a query failed ({first_line(exc)})") from exc
        finally:
            cur.close()
    # DuckDB names its UTC zone 'Etc/UTC'; the rest of the package says 'UTC'
    return as_utc(out, naive=False)
