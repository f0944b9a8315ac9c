"""Row-level access to the log for terminals and scripts: the attempts matching a filter
and their export to CSV or Parquet, starting at the log's prune cut-off (pruning itself
is the store's: ``store.prune``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .._errors import InputError
from .._util import FORMULA_START
from ..store import LOG_COLUMNS, LOG_SCHEMA, LogReader, pruned_before
from ._filters import LogFilter

FORMATS = ("csv", "parquet", "delta")


def visible(flt: LogFilter, store: LogReader) -> LogFilter:
    """``flt`` starting no earlier than the log's prune cut-off."""
    cut = pruned_before(store)
    if cut is None or (flt.since is not None and flt.since >= cut):
        return flt
    return LogFilter(**{**flt.__dict__, "since": cut})


def attempt_rows(store: LogReader, flt: LogFilter, *, limit: int, offset: int = 0) -> pl.DataFrame:
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


def count_rows(store: LogReader, flt: LogFilter) -> int:
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


def export_rows(store: LogReader, to: str | Path, flt: LogFilter, fmt: str | None = None) -> int:
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
