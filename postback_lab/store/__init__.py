"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal), the import of a platform's postback-log export, and the
read side of the central Delta Lake log (``open_delta_log``, ``"delta:PATH"``)."""

from .._errors import JournalWarning
from ._delta import (
    MONTH,
    DeltaLog,
    delta_table,
    import_deltalake,
    open_delta_log,
    table_uri,
)
from ._import import ImportResult, import_log, read_export, remove_import
from ._journal import Journal
from ._link import DIRECT, Links, describe, rule_key, unlinked_rows
from ._log import DEFAULT_DB, LogStore
from ._open import open_log
from ._owner import Owner
from ._pending import pending_attempts, pending_note, settle_journals
from ._schema import LOG_COLUMNS, LOG_SCHEMA, NOT_ATTEMPTS, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "DIRECT",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "MONTH",
    "NOT_ATTEMPTS",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "DeltaLog",
    "ImportResult",
    "Journal",
    "JournalWarning",
    "Links",
    "LogStore",
    "Owner",
    "delta_table",
    "describe",
    "import_deltalake",
    "import_log",
    "open_delta_log",
    "open_log",
    "pending_attempts",
    "pending_note",
    "read_export",
    "remove_import",
    "rule_key",
    "settle_journals",
    "table_uri",
    "unlinked_rows",
]
