"""Store: the DuckDB attempt log (one row per HTTP attempt, a ``runs`` table, forward
migrations, a crash journal, pruning, snapshot copies of a log another process writes),
the import of a platform's postback-log export, and the read side of the central Delta
Lake log (``open_delta_log``, ``"delta:PATH"``)."""

from .._errors import JournalWarning
from ._delta import (
    MONTH,
    DeltaLog,
    delta_table,
    import_deltalake,
    open_delta_log,
    table_uri,
)
from ._export_read import read_export
from ._exports import (
    IDENTITY,
    export_backlog,
    exported_ids,
    exports_file,
    known_exports,
    remember_export,
)
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
from ._import import ImportResult, import_log, remove_import
from ._journal import Journal
from ._link import DIRECT, Links, describe, rule_key, unlinked_rows
from ._log import DEFAULT_DB, LogStore
from ._open import LogSource, OpenMode, open_log
from ._owner import Owner
from ._pending import note_pending, pending_attempts, pending_note, settle_journals
from ._prune import PRUNED_BEFORE, PruneResult, prune, pruned_before
from ._reader import LogReader
from ._schema import (
    LOG_COLUMNS,
    LOG_SCHEMA,
    NOT_ATTEMPTS,
    OUTCOMES,
    SCHEMA_VERSION,
    TAG_COLUMNS,
)
from ._snapshot import open_for_reading, snapshot
from ._writer import LogWriter, log_writer

__all__ = [
    "DEFAULT_DB",
    "DIRECT",
    "IDENTITY",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "MONTH",
    "NOT_ATTEMPTS",
    "OUTCOMES",
    "PRUNED_BEFORE",
    "SCHEMA_VERSION",
    "TAG_COLUMNS",
    "DeltaLog",
    "DueRetry",
    "HostPause",
    "ImportResult",
    "Journal",
    "JournalWarning",
    "Links",
    "LogReader",
    "LogSource",
    "LogStore",
    "LogWriter",
    "OpenMode",
    "Owner",
    "PruneResult",
    "delta_table",
    "describe",
    "due_retries",
    "export_backlog",
    "exported_ids",
    "exports_file",
    "host_health",
    "import_deltalake",
    "import_log",
    "known_exports",
    "log_writer",
    "note_pending",
    "open_delta_log",
    "open_for_reading",
    "open_log",
    "pause_host",
    "paused_hosts",
    "pending_attempts",
    "pending_note",
    "probe_failed",
    "prune",
    "pruned_before",
    "read_export",
    "remember_export",
    "remove_import",
    "resume_host",
    "retry_backlog",
    "rule_key",
    "save_retries",
    "set_run_reason",
    "settle_journals",
    "snapshot",
    "table_uri",
    "tag_run",
    "unlinked_rows",
]
