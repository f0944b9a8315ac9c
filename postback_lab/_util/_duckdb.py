"""The one way into DuckDB: connections in UTC, and one-shot queries over Polars frames."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_lock = threading.Lock()
_memory: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (pid, connection)


def connect(
    path: str | Path | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in memory without ``path``) whose session time zone is UTC, so
    timestamps mean the same thing whatever the machine's zone. DuckDB errors propagate:
    the caller knows which file it opened and says so."""
    con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def query(sql: str, params: list[Any] | None = None, **frames: pl.DataFrame) -> pl.DataFrame:
    """Run ``sql`` in memory, each keyword frame visible as a table (registered from
    Arrow, not copied): DuckDB functions Polars lacks, on frames. Each call gets its own
    cursor of one in-memory database per process (2 ms instead of 40 ms for a new one)."""
    global _memory
    with _lock:
        if _memory is None or _memory[0] != os.getpid():
            _memory = (os.getpid(), connect())
        con = _memory[1].cursor()
    try:
        for name, frame in frames.items():
            # string views: no copy on the way to DuckDB
            con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
        out: pl.DataFrame = con.sql(sql, params=params or None).pl()
        return out
    finally:
        con.close()
