"""The log writer of a send: attempt rows buffered and appended in batches, each one also
journaled as it completes (and each batch as it starts), so a killed process loses
nothing that completed. When the log or the journal cannot be written (a full disk, a
file made read-only) the writer remembers the first error and says so (``broken``): the
run stops sending rather than fire postbacks it cannot record."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any, Protocol

import duckdb
import polars as pl

from .._errors import StoreError
from ..store import LOG_SCHEMA
from ._http import Outcome

FLUSH_ROWS = 500
#: an attempt row: the log's columns and the answer's headers (the log's own column)
ROW_SCHEMA = pl.Schema({**LOG_SCHEMA, "response_headers": pl.String()})
FLUSH_SECONDS = 1.0

#: the plan columns a send reads, in the order of an item's row
FIELDS = (
    "dispatch_id",
    "rule",
    "transaction_id",
    "offer_id",
    "publisher_id",
    "status",
    "method",
    "url",
    "body",
    "host",
    "due_at",
    "headers",
    "timeout_s",
    "env_at",
    "success",
    "sign_env",
    "log_url",  # the url as logged: a user:password@ password masked (see _run)
)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_ID, _RULE, _TID, _OFFER, _PUB, _STATUS, _METHOD, _URL, _HOST, _DUE = (
    _INDEX[n]
    for n in (
        "dispatch_id",
        "rule",
        "transaction_id",
        "offer_id",
        "publisher_id",
        "status",
        "method",
        "log_url",
        "host",
        "due_at",
    )
)


class Item:
    """One dispatch on its way: its plan row, when it is due, its attempt number in the
    log (unique per dispatch over all runs) and its try in this run (for the schedule)."""

    __slots__ = ("attempt", "due", "row", "tries")

    def __init__(self, row: tuple[Any, ...], attempt: int, tries: int, due: datetime) -> None:
        self.row = row
        self.attempt = attempt
        self.tries = tries
        self.due = due

    def get(self, name: str) -> Any:
        return self.row[_INDEX[name]]

    def again(self, due: datetime) -> Item:
        """The next try of this dispatch, due at ``due``."""
        return Item(self.row, self.attempt + 1, self.tries + 1, due)


class Sink(Protocol):
    """Where a LogWriter puts rows and journal records: a LogStore, or in a worker process
    the pipe to the process that writes the log (see _workers)."""

    def append(self, rows: pl.DataFrame, *, check_attempts: bool, mark: bool) -> int: ...

    def journal(self, run_id: str, kind: str, rows: list[dict[str, Any]]) -> None: ...

    def journal_lines(self, run_id: str, text: str) -> None: ...


class LogWriter:
    """Buffers attempt rows and appends them in batches (every 500 rows or second)."""

    def __init__(self, store: Sink, run_id: str, dry_run: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.dry_run = dry_run
        self.rows: list[tuple[Any, ...]] = []  # in the order of ROW_SCHEMA
        self.last = time.monotonic()
        #: the first error writing the log or the journal; set once, then nothing is written
        self.error: BaseException | None = None
        self.broken = asyncio.Event()
        self.unlogged = 0  # attempts that completed but could not be appended
        self._log_ok = True  # the log still takes rows (the journal may have failed)
        self.failed_in = ""  # 'log' or 'journal': what could not be written first
        self._done: list[str] = []  # 'done' journal records not written yet

    def fail(self, exc: BaseException, *, log: bool = False) -> None:
        """Remember that the log (``log``) or the journal could not be written."""
        if log:
            self._log_ok = False
        if self.error is None:
            self.error = exc
            self.failed_in = "log" if log else "journal"
            self.broken.set()

    @property
    def complete(self) -> bool:
        """Every attempt of the run is in the log (even if the journal failed)."""
        return self._log_ok and self.unlogged == 0

    def add(self, item: Item, fired_at: datetime, o: Outcome) -> None:
        """Log one attempt (journaled at once, appended with the next batch)."""
        r = item.row  # one tuple per attempt (the log's columns): this runs for every row
        self.rows.append(
            (
                r[_ID],
                self.run_id,
                item.attempt,
                r[_RULE],
                r[_TID],
                r[_OFFER],
                r[_PUB],
                r[_METHOD],
                r[_URL],
                r[_HOST],
                r[_DUE],
                fired_at,
                o.latency_ms,
                o.status_code,
                o.outcome,
                o.error,
                o.response_body,
                r[_STATUS],
                "sent",
                o.response_headers,
            )
        )
        if not self.dry_run and self.error is None:
            # the compact 'done' record (its 'start' record holds the rest of the row),
            # written with the others that completed in this turn of the event loop
            # written out by hand (a third of json.dumps of a dict): the ids, the time and
            # the outcome are plain tokens, numbers are numbers or null
            d = json.dumps
            lat, code = o.latency_ms, o.status_code
            self._done.append(
                f'{{"k": "done", "dispatch_id": {d(r[_ID])}, "run_id": "{self.run_id}", '
                f'"attempt": {item.attempt}, "fired_at": "{fired_at.isoformat()}", '
                f'"latency_ms": {"null" if lat is None else repr(float(lat))}, '
                f'"status_code": {"null" if code is None else int(code)}, '
                f'"outcome": "{o.outcome}", "error": {d(o.error)}, '
                f'"response_body": {d(o.response_body)}, '
                f'"response_headers": {d(o.response_headers)}}}'
            )
            if len(self._done) == 1:
                try:
                    asyncio.get_running_loop().call_soon(self.journal_done)
                except RuntimeError:  # no loop: write now
                    self.journal_done()
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def journal_done(self) -> None:
        """Write the pending 'done' records in one append."""
        if self._done:
            lines, self._done = self._done, []
            if self.error is None:
                try:
                    self.store.journal_lines(self.run_id, "\n".join(lines) + "\n")
                except OSError as exc:
                    self.fail(exc)

    def due_flush(self) -> bool:
        """Rows have waited for more than a second."""
        return bool(self.rows) and time.monotonic() - self.last > FLUSH_SECONDS

    def flush(self) -> None:
        """Append the buffered rows in one transaction (never raises: see ``error``; after
        the journal failed the log still gets what it can)."""
        self.journal_done()  # the journal is never behind the log
        if self.rows:
            rows, self.rows = self.rows, []
            if not self._log_ok:
                self.unlogged += len(rows)
            else:
                try:
                    # numbered after the log's; retried marks once, when the run finishes
                    frame = pl.DataFrame(rows, schema=ROW_SCHEMA, orient="row")
                    self.store.append(frame, check_attempts=False, mark=False)
                except (StoreError, duckdb.Error, OSError) as exc:
                    self.unlogged += len(rows)
                    self.fail(exc, log=True)
        self.last = time.monotonic()

    def inflight(self, items: list[Item], now: datetime) -> bool:
        """Journal that ``items`` are about to go out; False when that failed (then they
        must not go out)."""
        if self.error is not None:
            return False
        try:
            self._journal_start(items, now)
        except OSError as exc:
            self.fail(exc)
            return False
        return True

    def _journal_start(self, items: list[Item], now: datetime) -> None:
        self.store.journal(
            self.run_id,
            "start",
            [
                {
                    **self._head(it),
                    "due_at": it.get("due_at").isoformat(),
                    "fired_at": now.isoformat(),
                }
                for it in items
            ],
        )

    def _head(self, item: Item) -> dict[str, Any]:
        g = item.get
        return {
            "dispatch_id": g("dispatch_id"),
            "run_id": self.run_id,
            "attempt": item.attempt,
            "rule": g("rule"),
            "transaction_id": g("transaction_id"),
            "offer_id": g("offer_id"),
            "publisher_id": g("publisher_id"),
            "method": g("method"),
            "url": g("log_url"),
            "host": g("host"),
            "status": g("status"),
        }
