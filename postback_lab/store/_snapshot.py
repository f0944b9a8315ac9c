"""Reading a log that another process is writing.

DuckDB lets one process open a file while another holds it for writing only if neither
writes... and not at all across processes: a second notebook (or ``postback-lab audit``
during a send) is refused, even read-only. Readers here then work on a snapshot: the
file and its write-ahead log copied into a temporary folder and opened read-only, with a
note saying so. The copy is checked by a query and taken again if it was caught halfway
through a checkpoint; the folders go when the process ends.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from .._errors import StoreError, StoreLockedError
from ._log import DEFAULT_DB, LogStore
from ._open import open_log
from ._reader import LogReader

_FOLDERS: list[Path] = []


def _cleanup() -> None:
    for folder in _FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_cleanup)


def snapshot(path: Path, tries: int = 3) -> LogStore:
    """A read-only LogStore over a fresh copy of ``path`` (and its ``.wal``)."""
    folder = Path(tempfile.mkdtemp(prefix="postback-lab-snapshot-"))
    _FOLDERS.append(folder)
    copy = folder / path.name
    last: Exception | None = None
    for _ in range(tries):
        try:
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            store = LogStore(copy, read_only=True)
            store.count()  # a torn copy fails here
            return store
        except (OSError, StoreError) as exc:
            last = exc
            for stale in folder.iterdir():
                stale.unlink()
    raise StoreError(
        f"{path} is being written by another process and a snapshot copy could not be read "
        f"({last}); try again when it finishes"
    )


def open_for_reading(
    log: LogReader | str | Path | None,
) -> tuple[LogReader, bool, str | None]:
    """Like ``open_log(log, "read")`` (a missing log is an error; nothing is created or
    written), but a file held by another process is read from a snapshot: (store, opened
    here, a note or None)."""
    try:
        store, owned = open_log(log, "read")
        return store, owned, None
    except StoreLockedError:
        if isinstance(log, LogReader):
            raise
        path = Path(DEFAULT_DB if log is None else log)
        store = snapshot(path)
        taken = datetime.now(UTC).strftime("%H:%M:%S")
        note = (
            f"another process is writing {path}: this reads a snapshot copied at {taken} UTC "
            "(open it again for newer rows)"
        )
        return store, True, note
