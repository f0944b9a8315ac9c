"""Opening a log by what the caller gave: a LogStore, a DuckDB file path, None (the
default file) or ``delta:LOCATION`` (the central Delta Lake log, read-only)."""

from __future__ import annotations

from pathlib import Path

from .._errors import InputError, StoreError
from ._delta import open_delta_log
from ._log import _OPEN_LOCK, DEFAULT_DB, LogStore, _writer_of


def open_log(log: LogStore | str | Path | None) -> tuple[LogStore, bool]:
    """A LogStore from a store, a path, ``delta:LOCATION`` (a Delta Lake log, read-only)
    or None (the default file); True when opened here (a path this process already holds
    open for writing gives that store, not a second)."""
    if isinstance(log, (str, Path)) and str(log).startswith("delta:"):
        return open_delta_log(str(log).removeprefix("delta:")), True
    if isinstance(log, LogStore):
        if log.closed:
            raise StoreError(f"{log.path}: this LogStore is closed; open it again")
        return log, False
    if log is not None and not isinstance(log, (str, Path)):
        raise InputError(
            f"log must be a LogStore, a DuckDB file path or None, not a {type(log).__name__}"
        )
    path = Path(DEFAULT_DB if log is None else log)
    with _OPEN_LOCK:
        # this process has the file open already (an explorer, a notebook's store): work
        # through that one connection; its own lock keeps two sends apart
        held = _writer_of(path)
        if held is not None:
            return held, False
        return LogStore(path), True
