"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal) and the import of a platform's postback-log export."""

from ._import import ImportResult, import_log, read_export
from ._log import DEFAULT_DB, LOG_SCHEMES, LogStore, open_log
from ._schema import LOG_COLUMNS, LOG_SCHEMA, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "LOG_SCHEMES",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "ImportResult",
    "LogStore",
    "import_log",
    "open_log",
    "read_export",
]
