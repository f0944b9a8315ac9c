"""Forward migrations of a log file to the current schema, one transaction per version,
and the check before them that the file is a log at all: a writer turns only a new path
or an empty DuckDB file into a log, never someone else's DuckDB file."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

import duckdb

from .._errors import StoreError
from .._util import connect, first_line
from ._schema import MIGRATIONS, SCHEMA_VERSION


def log_version(con: duckdb.DuckDBPyConnection, path: Path, *, new_ok: bool) -> int:
    """The schema version of the log at ``path``; 0 for a file with no tables yet (or only
    the empty ``meta`` a first migration that failed leaves), which a writer may make a
    log (``new_ok``). Any other file without a version is someone else's DuckDB file: a
    StoreError naming it and its tables, before anything is written to it."""
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.Error:  # no meta table, or one that is not ours
        rows = []
    if rows:
        try:
            return int(rows[0][0])
        except (TypeError, ValueError):
            raise StoreError(
                f"{path}: not a postback_lab attempt log (its meta table says schema_version "
                f"{rows[0][0]!r}); pass a log file" + (" or a new path" if new_ok else "")
            ) from None
    tables = _tables(con)
    if tables == ["meta"] and _count(con, "meta") == 0:
        tables = []
    if tables or not new_ok:
        raise StoreError(
            f"{path}: not a postback_lab attempt log ("
            + (f"it has tables: {_names(tables)}" if tables else "it has no tables")
            + "); pass a log file"
            + (" or a new path" if new_ok else "")
        )
    return 0


def refuse_newer(path: Path, version: int) -> None:
    """A log written by a newer postback_lab is not read or written by this one."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer postback_lab (schema {version} > {SCHEMA_VERSION}); "
            "upgrade postback_lab"
        )


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables and views of the file, schema-qualified outside ``main``, sorted."""
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() "
        "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal"
    ).fetchall()
    return sorted(name if schema == "main" else f"{schema}.{name}" for schema, name in rows)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _names(tables: list[str], shown: int = 5) -> str:
    """``a, b, c`` (the first ``shown``, then how many in all)."""
    head = ", ".join(tables[:shown])
    return head if len(tables) <= shown else f"{head}, … ({len(tables)} in all)"


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Bring the log at ``path`` to ``SCHEMA_VERSION``, each step committed with its new
    version number. Refused, with the file untouched: a file that is not a log (see
    ``log_version``) and one from a newer postback_lab. A step that fails is rolled back
    (the file stays at the version before it) and becomes a StoreError naming the file:
    no DuckDB error escapes."""
    current = log_version(con, path, new_ok=True)
    refuse_newer(path, current)
    done = current
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        ).fetchall()
        for version in range(current + 1, SCHEMA_VERSION + 1):
            con.execute("BEGIN").fetchall()
            try:
                con.execute(MIGRATIONS[version]).fetchall()
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
                ).fetchall()
                con.execute("COMMIT").fetchall()
                done = version
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK").fetchall()
                raise
    except duckdb.Error as exc:
        raise StoreError(
            f"{path}: upgrading the log from schema {done} to {SCHEMA_VERSION} failed "
            f"({first_line(exc)}); it stays at schema {done}"
        ) from exc


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
    except StoreError:  # the log itself cannot be brought forward: say why, as a writer
        discard_copy(copy)
        raise
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
