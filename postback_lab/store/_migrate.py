"""Forward migrations of a log file to the current schema, one transaction per version."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import duckdb

from .._errors import StoreError
from .._util import connect, first_line
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


#: temporary folders of migrated copies, removed when they are closed or the process ends
_COPIES: set[Path] = set()


def upgraded_copy(path: Path) -> Path:
    """A migrated copy of the older log at ``path`` (and its ``.wal``) in a temporary
    folder: reading an old log never migrates the file itself (a read never writes)."""
    folder = Path(tempfile.mkdtemp(prefix="postback-lab-upgraded-"))
    _COPIES.add(folder)
    copy = folder / path.name
    try:
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        con = connect(copy)
        try:
            migrate(con, path)
        finally:
            con.close()
    except (OSError, duckdb.Error) as exc:
        discard_copy(copy)
        raise StoreError(
            f"{path}: written by an older postback_lab and a migrated copy could not be "
            f"read ({first_line(exc)}); open it for writing once (any send or import-log "
            "migrates it)"
        ) from exc
    return copy


def discard_copy(copy: Path) -> None:
    """Remove a copy made by ``upgraded_copy``."""
    _COPIES.discard(copy.parent)
    shutil.rmtree(copy.parent, ignore_errors=True)


@atexit.register
def _cleanup() -> None:
    for folder in list(_COPIES):
        shutil.rmtree(folder, ignore_errors=True)
