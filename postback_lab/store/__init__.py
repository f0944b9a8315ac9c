"""Store: the DuckDB attempt log (DESIGN contract 4) and platform log import."""

from ._log import DEFAULT_DB, LogStore, open_log
from ._schema import LOG_COLUMNS, LOG_SCHEMA, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "LogStore",
    "open_log",
]

from ._import import ImportResult, import_log, read_export

__all__ += ["ImportResult", "import_log", "read_export"]
