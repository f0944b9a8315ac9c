"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal) and the import of a platform's postback-log export."""

from .._errors import JournalWarning
from ._exports import (
    IDENTITY,
    export_backlog,
    exported_ids,
    exports_file,
    known_exports,
    remember_export,
)
from ._import import ImportResult, import_log, read_export
from ._journal import Journal
from ._link import DIRECT, Links, rule_key
from ._log import DEFAULT_DB, LOG_SCHEMES, LogStore, OpenMode, open_log
from ._owner import Owner
from ._pending import note_pending, pending_attempts, pending_note, settle_journals
from ._schema import LOG_COLUMNS, LOG_SCHEMA, NOT_ATTEMPTS, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "DIRECT",
    "IDENTITY",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "LOG_SCHEMES",
    "NOT_ATTEMPTS",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "ImportResult",
    "Journal",
    "JournalWarning",
    "Links",
    "LogStore",
    "OpenMode",
    "Owner",
    "export_backlog",
    "exported_ids",
    "exports_file",
    "import_log",
    "known_exports",
    "note_pending",
    "open_log",
    "pending_attempts",
    "pending_note",
    "read_export",
    "remember_export",
    "rule_key",
    "settle_journals",
]
