"""The log writer of a send: attempt rows buffered and appended in batches, each one also
journaled as it completes (and each batch as it starts), so a killed process loses
nothing that completed. When the log or the journal cannot be written (a full disk, a
file made read-only) the writer remembers the first error and says so (``broken``): the
run stops sending rather than fire postbacks it cannot record."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import duckdb

from .._errors import StoreError
from ..store import LogStore
from ._http import Outcome

FLUSH_ROWS = 500
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


class LogWriter:
    """Buffers attempt rows and appends them in batches (every 500 rows or second)."""

    def __init__(self, store: LogStore, run_id: str, dry_run: bool) -> None:
        self.store = store
        self.run_id = run_id
        self.dry_run = dry_run
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        #: the first error writing the log or the journal; set once, then nothing is written
        self.error: BaseException | None = None
        self.broken = asyncio.Event()
        self.unlogged = 0  # attempts that completed but could not be appended
        self._log_ok = True  # the log still takes rows (the journal may have failed)
        self.failed_in = ""  # 'log' or 'journal': what could not be written first

    def _fail(self, exc: BaseException, *, log: bool = False) -> None:
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
        r = item.row  # one dict literal per attempt: this runs for every row of a send
        row = {
            "dispatch_id": r[_ID],
            "run_id": self.run_id,
            "attempt": item.attempt,
            "rule": r[_RULE],
            "transaction_id": r[_TID],
            "offer_id": r[_OFFER],
            "publisher_id": r[_PUB],
            "method": r[_METHOD],
            "url": r[_URL],
            "host": r[_HOST],
            "status": r[_STATUS],
            "due_at": r[_DUE],
            "fired_at": fired_at,
            "latency_ms": o.latency_ms,
            "status_code": o.status_code,
            "outcome": o.outcome,
            "error": o.error,
            "response_body": o.response_body,
            "source": "sent",
        }
        self.rows.append(row)
        if not self.dry_run and self.error is None:
            try:
                self.store.journal(self.run_id, "done", [row])
            except OSError as exc:
                self._fail(exc)
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def due_flush(self) -> bool:
        """Rows have waited for more than a second."""
        return bool(self.rows) and time.monotonic() - self.last > FLUSH_SECONDS

    def flush(self) -> None:
        """Append the buffered rows in one transaction (never raises: see ``error``; after
        the journal failed the log still gets what it can)."""
        if self.rows:
            rows, self.rows = self.rows, []
            if not self._log_ok:
                self.unlogged += len(rows)
            else:
                try:
                    # numbered after the log's; retried marks once, when the run finishes
                    self.store.append(rows, check_attempts=False, mark=False)
                except (StoreError, duckdb.Error, OSError) as exc:
                    self.unlogged += len(rows)
                    self._fail(exc, log=True)
        self.last = time.monotonic()

    def inflight(self, items: list[Item], now: datetime) -> bool:
        """Journal that ``items`` are about to go out; False when that failed (then they
        must not go out)."""
        if self.error is not None:
            return False
        try:
            self._journal_start(items, now)
        except OSError as exc:
            self._fail(exc)
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
