"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal) and the import of a platform's postback-log export."""

from .._errors import JournalWarning
from ._health import (
    DueRetry,
    HostPause,
    due_retries,
    host_health,
    pause_host,
    paused_hosts,
    probe_failed,
    resume_host,
    retry_backlog,
    save_retries,
    set_run_reason,
    tag_run,
)
from ._import import ImportResult, import_log, read_export
from ._journal import Journal
from ._link import DIRECT, Links, rule_key
from ._log import DEFAULT_DB, LOG_SCHEMES, LogStore, open_log
from ._owner import Owner
from ._pending import pending_attempts, pending_note, settle_journals
from ._schema import (
    LOG_COLUMNS,
    LOG_SCHEMA,
    NOT_ATTEMPTS,
    OUTCOMES,
    SCHEMA_VERSION,
    TAG_COLUMNS,
)

__all__ = [
    "DEFAULT_DB",
    "DIRECT",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "LOG_SCHEMES",
    "NOT_ATTEMPTS",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "TAG_COLUMNS",
    "DueRetry",
    "HostPause",
    "ImportResult",
    "Journal",
    "JournalWarning",
    "Links",
    "LogStore",
    "Owner",
    "due_retries",
    "host_health",
    "import_log",
    "open_log",
    "pause_host",
    "paused_hosts",
    "pending_attempts",
    "pending_note",
    "probe_failed",
    "read_export",
    "resume_host",
    "retry_backlog",
    "rule_key",
    "save_retries",
    "set_run_reason",
    "settle_journals",
    "tag_run",
]
