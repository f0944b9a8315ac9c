"""Reading the central attempt log, a Delta Lake table (delta-rs, imported only when a
Delta log is opened: ``pip install 'postback-lab[delta]'``).

``open_delta_log`` (and ``"delta:PATH"`` wherever a log is taken) reads the table as a
read-only log: a DuckDB view over the table's pyarrow dataset, with the columns audit,
reconcile and the explorer query. ``postback_lab.scale`` writes the table
(``export_log``) and compacts it (``optimize_log``).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .._errors import InputError, StoreError
from .._util import ATTEMPT_KEY, connect, render
from ._reader import LogReader, run_sql
from ._schema import LOG_COLUMNS, SCHEMA_VERSION

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable

#: the partition column: the month of ``fired_at`` as ``YYYY-MM`` (null when unknown)
MONTH = "month"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def import_deltalake() -> Any:
    """The deltalake module, or an InputError naming the extra that brings it."""
    try:
        import deltalake
    except ImportError:
        raise InputError(
            "the Delta Lake log needs the deltalake package: pip install 'postback-lab[delta]'"
        ) from None
    return deltalake


def table_uri(target: str | Path) -> str:
    """A local folder (made absolute) or a URI (``s3://…``); a ``delta:`` prefix is
    allowed. A Path that squashed a URI's ``//`` (``s3:/b/x``) gets it back."""
    text = str(target).removeprefix("delta:")
    text = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)", r"\1://", text)
    if _URI.match(text):
        return text
    return str(Path(text).expanduser().absolute())


def delta_table(dl: Any, uri: str, storage_options: dict[str, str] | None) -> DeltaTable | None:
    """The Delta table at ``uri``, or None when there is none yet."""
    if not dl.DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    table: DeltaTable = dl.DeltaTable(uri, storage_options=storage_options)
    missing = [c for c in (*LOG_COLUMNS, MONTH) if c not in table.schema().to_arrow().names]
    if missing:
        raise InputError(
            f"{uri}: a Delta table that is not an attempt log (no {', '.join(missing[:3])})"
        )
    return table


class DeltaLog(LogReader):
    """A Delta Lake attempt log, read-only: ``sql`` sees ``postback_log`` (a view over the
    table's pyarrow dataset, pinned to one table version), ``runs`` and ``meta`` as a
    DuckDB log has them, so audit, reconcile, the explorer and ``send``'s delivered check
    work on it unchanged. It has no writer: ``path`` is ``delta:URI``, the spelling that
    opens it again wherever a log is taken."""

    def __init__(
        self,
        uri: str | Path,
        *,
        version: int | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        dl = import_deltalake()
        self.uri = table_uri(uri)
        self.path = Path("delta:" + self.uri)
        self.read_only = True
        self.closed = False
        self._lock = threading.RLock()
        table = delta_table(dl, self.uri, storage_options)
        if table is None:
            raise StoreError(
                f"{self.uri}: no Delta log here; export one with postback-lab log export"
            )
        if version is not None:
            table.load_as_version(version)
        self.version: int = table.version()
        self._dataset = table.to_pyarrow_dataset()
        self._con = _views(self._dataset)

    def sql(self, query: str, params: list[Any] | None = None, **frames: Any) -> pl.DataFrame:
        """Run SQL on the log; keyword arguments are Polars frames visible as tables. The
        table's dataset is bound to each query's cursor, where the views find it; a
        DuckDB error becomes a StoreError."""
        return run_sql(
            self._con, self._lock, self.path, query, params, {"__delta": self._dataset, **frames}
        )

    def close(self) -> None:
        """Close the in-memory DuckDB over the table (the table stays)."""
        with self._lock:
            self._con.close()
            self.closed = True

    def __repr__(self) -> str:
        return f"DeltaLog({self.uri!r}, version={self.version})"

    def summary(self) -> str:
        return f"{self.uri} (Delta, version {self.version}): {self.count():,} attempts"

    def _repr_html_(self) -> str:
        return render("Attempt log (Delta Lake)", self.summary(), [("Runs", self.runs())])


def _views(dataset: Any) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with ``postback_log``, ``runs`` and ``meta`` over ``dataset``.

    Rows of one dispatch may come from several shard logs, each numbering its attempts
    from 1 (after the number of shards changed): ``retried`` marks every row of a
    dispatch with more than one row, so the audit counts such a dispatch once.
    ``rowid`` is 0 for all: the view is of one table version, which never grows."""
    con = connect()
    con.register("__delta", dataset)
    cols = ", ".join(LOG_COLUMNS)
    con.execute(
        f"""
        CREATE VIEW postback_log AS
        WITH base AS (
            SELECT {cols}, md5_number({ATTEMPT_KEY}) AS dispatch_key,
                NULL::VARCHAR AS response_headers FROM __delta),
        multi AS (SELECT dispatch_key FROM base GROUP BY 1 HAVING count(*) > 1)
        SELECT base.*, dispatch_key IN (SELECT dispatch_key FROM multi) AS retried,
            0::BIGINT AS rowid
        FROM base"""
    ).fetchall()
    con.execute(
        """
        CREATE VIEW runs AS
        SELECT run_id,
            CASE WHEN bool_and(source = 'imported') THEN 'import' ELSE 'send' END AS kind,
            min(fired_at) AS started_at, max(fired_at) AS finished_at,
            'exported' AS state, NULL::BIGINT AS planned, NULL::BIGINT AS skipped_delivered,
            count(*) AS attempts, count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
            count(*) FILTER (WHERE outcome <> 'delivered') AS failed, NULL AS note
        FROM __delta GROUP BY run_id"""
    ).fetchall()
    con.execute(
        "CREATE TABLE meta AS SELECT * FROM (VALUES ('schema_version', ?), ('retried_upto', "
        "'0')) t(key, value)",
        [str(SCHEMA_VERSION)],
    ).fetchall()
    return con


def open_delta_log(
    uri: str | Path, *, version: int | None = None, storage_options: dict[str, str] | None = None
) -> DeltaLog:
    """The Delta log at ``uri`` (a folder or a URI), read-only, at its latest version or
    ``version``. ``pbl.audit("delta:PATH")`` and friends open it this way."""
    return DeltaLog(uri, version=version, storage_options=storage_options)
