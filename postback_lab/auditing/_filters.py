"""One way to select attempt rows of the log: the explorer's widgets and ``postback-lab log
show|export`` build the same ``LogFilter``, so a filter means the same in both."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._util import When, parse_when

#: the columns a filter can hold a set of values for
COLUMNS = (
    "rule",
    "host",
    "publisher_id",
    "offer_id",
    "outcome",
    "status_code",
    "status",
    "event_type",
    "goal",
)
REHEARSALS = ("dry_run", "test")  # outcomes that are not deliveries: hidden unless asked for


def _tuple(values: Iterable[Any] | str | int | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, int)):
        return (values,)
    return tuple(values)


#: the columns the text search looks in
SEARCHED = ("transaction_id", "dispatch_id", "url", "error", "response_body", "response_headers")


@dataclass(frozen=True)
class LogFilter:
    """Attempt rows matching every given part: a value set per column (empty: any), a
    ``fired_at`` window ``[since, until)``, and ``search`` text found in the transaction id,
    dispatch id, URL, error, response body or headers (case-insensitive). ``not_<column>``:
    rows whose value is none of these (a row without a value is kept). ``status`` is the
    conversion's status (approved, rejected, pending); ``event_type`` and ``goal`` are the
    conversion's too (logs from before they were kept have none).

    Dry-run and test-fire rows are left out unless ``outcome`` names them: they are
    rehearsals, not deliveries, and would dilute every rate."""

    rule: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    publisher_id: tuple[str, ...] = ()
    offer_id: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    status_code: tuple[int, ...] = ()
    status: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ()
    goal: tuple[str, ...] = ()
    not_rule: tuple[str, ...] = ()
    not_host: tuple[str, ...] = ()
    not_publisher_id: tuple[str, ...] = ()
    not_offer_id: tuple[str, ...] = ()
    not_outcome: tuple[str, ...] = ()
    not_status_code: tuple[int, ...] = ()
    not_status: tuple[str, ...] = ()
    not_event_type: tuple[str, ...] = ()
    not_goal: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    search: str = ""
    extra: tuple[str, ...] = field(default=(), repr=False)  # SQL conditions added as they are

    @classmethod
    def of(
        cls,
        *,
        since: When = None,
        until: When = None,
        search: str | None = None,
        **values: Iterable[Any] | str | int | None,
    ) -> LogFilter:
        """A filter from loose values: a single value or a list per column, times as
        ``parse_when`` reads them (ISO text, dates, datetimes)."""
        return cls(
            **{k: _tuple(v) for k, v in values.items()},
            since=parse_when(since, name="since"),
            until=parse_when(until, name="until"),
            search=(search or "").strip(),
        )

    def sql(self) -> tuple[str, list[Any]]:
        """The SQL condition over ``postback_log`` and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        hidden = [o for o in REHEARSALS if o not in self.outcome]
        if hidden:
            conds.append(f"outcome NOT IN ({', '.join(repr(o) for o in hidden)})")
        for col in COLUMNS:
            values = getattr(self, col)
            if values:
                conds.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
            excluded = getattr(self, f"not_{col}")
            if excluded:
                marks = ", ".join("?" for _ in excluded)
                conds.append(f"({col} IS NULL OR {col} NOT IN ({marks}))")
                params.extend(excluded)
        if self.since is not None:
            conds.append("fired_at >= ?")
            params.append(self.since)
        if self.until is not None:
            conds.append("fired_at < ?")
            params.append(self.until)
        if self.search:
            cols = SEARCHED
            conds.append("(" + " OR ".join(f"{c} ILIKE ?" for c in cols) + ")")
            params += [f"%{self.search}%"] * len(cols)
        conds.extend(f"({c})" for c in self.extra)
        return " AND ".join(conds), params


def natural_key(value: Any) -> tuple[int, int, str]:
    """Sort key putting numeric ids in number order (``7`` before ``12``), then text."""
    text = str(value)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)
