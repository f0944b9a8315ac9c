"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal) and the import of a platform's postback-log export."""

from .._errors import JournalWarning
from ._import import ImportResult, import_log, read_export
from ._log import DEFAULT_DB, LogStore, open_log
from ._schema import LOG_COLUMNS, LOG_SCHEMA, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "ImportResult",
    "JournalWarning",
    "LogStore",
    "import_log",
    "open_log",
    "read_export",
]
