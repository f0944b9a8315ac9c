"""Opening a log by what the caller gave: a LogStore, a DuckDB file path, None (the
default file) or ``delta:LOCATION`` (the central Delta Lake log, read-only), in an explicit
mode: reading never creates or writes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeAlias, overload

from .._errors import InputError, StoreError
from ._delta import open_delta_log
from ._log import _OPEN_LOCK, DEFAULT_DB, LogStore, _writer_of
from ._reader import LogReader
from ._writer import NEVER_WRITTEN, log_writer

#: how a log is opened: ``read`` (an existing log, read-only: reading never creates or
#: writes), ``update`` (an existing log, written: backfill), ``create`` (written, created
#: when missing: send, import-log, test-fire)
OpenMode = Literal["read", "update", "create"]


#: a log as the API takes it: an open LogStore (or another log reader: a Delta Lake log
#: to read), a DuckDB file path, ``delta:LOCATION`` (the central Delta Lake log,
#: read-only), or None (``postback_lab.duckdb``)
LogSource: TypeAlias = LogReader | str | Path | None


@overload
def open_log(
    log: LogReader | str | Path | None, mode: Literal["read"]
) -> tuple[LogReader, bool]: ...


@overload
def open_log(
    log: LogReader | str | Path | None, mode: Literal["update", "create"] = "create"
) -> tuple[LogStore, bool]: ...


def open_log(
    log: LogReader | str | Path | None, mode: OpenMode = "create"
) -> tuple[LogReader, bool]:
    """A log from a store, a path, ``delta:LOCATION`` (a Delta Lake log, only to read)
    or None (the default file); True when opened here (a path this process already holds
    open for writing gives that store, not a second). ``mode``: see ``OpenMode``; a missing
    log is a StoreError "no such log" unless it is ``create``. Only ``read`` gives a
    ``LogReader`` that may not be a LogStore (a Delta log); a Delta log to write is a
    StoreError."""
    if mode not in ("read", "update", "create"):
        raise InputError(f"mode={mode!r}: use 'read', 'update' or 'create'")
    if isinstance(log, (str, Path)) and str(log).startswith("delta:"):
        if mode != "read":
            raise StoreError(f"{log}: {NEVER_WRITTEN}")
        return open_delta_log(str(log).removeprefix("delta:")), True
    if isinstance(log, LogReader) and not isinstance(log, LogStore):
        if mode != "read":
            log_writer(log)
        return log, False
    if isinstance(log, LogStore):
        if log.closed:
            raise StoreError(f"{log.path}: this LogStore is closed; open it again")
        if mode != "read" and log.read_only:
            raise StoreError(f"{log.path}: this LogStore is open read-only; open it to write")
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
        if mode != "create" and not path.exists():
            raise StoreError(f"no such log: {path}")
        return LogStore(path, read_only=mode == "read"), True
