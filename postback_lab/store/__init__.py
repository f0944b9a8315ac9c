"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal) and the import of a platform's postback-log export."""

from .._errors import JournalWarning
from ._import import ImportResult, import_log, read_export, remove_import
from ._journal import Journal
from ._link import DIRECT, Links, describe, rule_key, unlinked_rows
from ._log import DEFAULT_DB, LOG_SCHEMES, LogStore, open_log
from ._owner import Owner
from ._pending import pending_attempts, pending_note, settle_journals
from ._schema import LOG_COLUMNS, LOG_SCHEMA, NOT_ATTEMPTS, OUTCOMES, SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB",
    "DIRECT",
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
    "Owner",
    "describe",
    "import_log",
    "open_log",
    "pending_attempts",
    "pending_note",
    "read_export",
    "remove_import",
    "rule_key",
    "settle_journals",
    "unlinked_rows",
]
