"""Forward migrations of a log file to the current schema, one transaction per version."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .._errors import StoreError
from ._schema import MIGRATIONS, SCHEMA_VERSION


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version; 0 for a file without one (new, or not a log)."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        return 0
    return int(rows[0][0]) if rows else 0


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Bring the log at ``path`` to ``SCHEMA_VERSION``, each step committed with its new
    version number; a file from a newer postback_lab is refused."""
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.fetchall()
    current = stored_version(con)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer postback_lab (schema {current} > {SCHEMA_VERSION}); "
            "upgrade postback_lab"
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
