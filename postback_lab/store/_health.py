"""What the log remembers between runs for operations: the health of each host (paused by
its circuit breaker or by hand, until a probe succeeds or someone resumes it) and the
retries a run left due for a later run (a rule's schedule that outlives one run).

Both live in small tables of the log file (``host_health``, ``retry_due``), so every
send, backfill and ``postback-lab hosts`` of any process sees the same state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from ._log import LogStore
from ._reader import LogReader
from ._schema import TAG_COLUMNS
from ._writer import log_writer

#: the columns of ``hosts()``, in order
HEALTH_COLUMNS = (
    "host",
    "state",
    "paused_since",
    "reason",
    "failures",
    "by_hand",
    "probed_at",
    "updated_at",
)
_HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "state": pl.String(),
    "paused_since": pl.Datetime("us", "UTC"),
    "reason": pl.String(),
    "failures": pl.Int64(),
    "by_hand": pl.Boolean(),
    "probed_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class HostPause:
    """A host paused across runs: since when, why, after how many failures; ``by_hand``
    (``postback-lab hosts pause``: only a resume lifts it, no probe); ``probed_at``: the
    last half-open probe that failed (the cool-down counts from it)."""

    host: str
    since: datetime
    reason: str
    failures: int
    by_hand: bool
    probed_at: datetime | None

    def cooled(self, now: datetime, cool_down: float) -> bool:
        """The cool-down has passed since the pause (or the last failed probe): one probe
        may go."""
        if self.by_hand:
            return False
        start = self.probed_at or self.since
        return (now - start).total_seconds() >= cool_down


def _has(store: LogReader, table: str) -> bool:
    """The log has ``table`` (a log of an older schema opened to read may not)."""
    q = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?"
    return bool(store.sql(q, [table]).item())


def host_health(store: LogReader) -> pl.DataFrame:
    """Every host the log has health for (paused or resumed), paused ones first."""
    if not _has(store, "host_health"):
        return pl.DataFrame(schema=_HEALTH_SCHEMA)
    frame = store.sql(
        f"SELECT {', '.join(HEALTH_COLUMNS)} FROM host_health ORDER BY state = 'paused' DESC, host"
    )
    return frame.cast(_HEALTH_SCHEMA)  # type: ignore[arg-type]


def paused_hosts(store: LogStore, hosts: Iterable[str]) -> dict[str, HostPause]:
    """The hosts among ``hosts`` that are paused."""
    wanted = pl.DataFrame({"host": list(hosts)}, schema={"host": pl.String})
    if wanted.height == 0 or not _has(store, "host_health"):
        return {}
    rows = store.sql(
        "SELECT host, paused_since, reason, failures, by_hand, probed_at FROM host_health "
        "SEMI JOIN wanted USING (host) WHERE state = 'paused'",
        wanted=wanted,
    )
    return {
        r[0]: HostPause(r[0], r[1], r[2] or "", int(r[3] or 0), bool(r[4]), r[5])
        for r in rows.iter_rows()
    }


def pause_host(
    store: LogStore,
    host: str,
    reason: str,
    *,
    failures: int = 0,
    by_hand: bool = False,
    now: datetime | None = None,
) -> None:
    """Mark ``host`` paused from ``now`` (kept: an earlier pause's start and count add up)."""
    at = now or datetime.now(UTC)
    log_writer(store).exec(
        """
        INSERT INTO host_health VALUES (?, 'paused', ?, ?, ?, ?, NULL, ?)
        ON CONFLICT (host) DO UPDATE SET
            paused_since = CASE WHEN host_health.state = 'paused'
                THEN host_health.paused_since ELSE excluded.paused_since END,
            failures = CASE WHEN host_health.state = 'paused'
                THEN host_health.failures + excluded.failures ELSE excluded.failures END,
            state = 'paused', reason = excluded.reason,
            by_hand = excluded.by_hand OR (host_health.state = 'paused' AND host_health.by_hand),
            probed_at = NULL, updated_at = excluded.updated_at""",
        [host, at, reason, failures, by_hand, at],
    )


def probe_failed(store: LogStore, host: str, now: datetime | None = None) -> None:
    """A half-open probe of a paused ``host`` failed: it stays paused, cooling down anew."""
    at = now or datetime.now(UTC)
    log_writer(store).exec(
        "UPDATE host_health SET probed_at = ?, failures = failures + 1, updated_at = ? "
        "WHERE host = ? AND state = 'paused'",
        [at, at, host],
    )


def resume_host(store: LogStore, host: str, why: str, now: datetime | None = None) -> bool:
    """Mark ``host`` healthy again (``why``: 'resumed by hand', 'probe delivered'); False
    when it was not paused."""
    at = now or datetime.now(UTC)
    was = store.sql(
        "SELECT count(*) FROM host_health WHERE host = ? AND state = 'paused'", [host]
    ).item()
    log_writer(store).exec(
        "UPDATE host_health SET state = 'resumed', reason = ?, probed_at = NULL, "
        "by_hand = false, updated_at = ? WHERE host = ?",
        [why, at, host],
    )
    return bool(was)


@dataclass(frozen=True)
class DueRetry:
    """A retry a run left for a later one: when it is due, which try of the schedule it
    is, and when the schedule gives up (None: never)."""

    due_at: datetime
    next_try: int
    give_up_at: datetime | None


def due_retries(store: LogStore, dispatch_ids: pl.Series) -> dict[str, DueRetry]:
    """The retries left for later runs among ``dispatch_ids``."""
    if not _has(store, "retry_due"):
        return {}
    ids = pl.DataFrame({"dispatch_id": dispatch_ids.unique()})
    rows = store.sql(
        "SELECT dispatch_id, due_at, next_try, give_up_at FROM retry_due "
        "SEMI JOIN ids USING (dispatch_id)",
        ids=ids,
    )
    return {r[0]: DueRetry(r[1], int(r[2]), r[3]) for r in rows.iter_rows()}


def save_retries(
    store: LogStore,
    run_id: str,
    left: Mapping[str, DueRetry],
    consumed: Iterable[str],
) -> None:
    """After a run: ``consumed`` retries are gone (sent by this run, so never again), and
    ``left`` are the ones this run leaves due for a later run."""
    gone = pl.DataFrame({"dispatch_id": list(consumed)}, schema={"dispatch_id": pl.String})
    new = pl.DataFrame(
        [(d, r.due_at, r.next_try, r.give_up_at, run_id) for d, r in left.items()],
        schema={
            "dispatch_id": pl.String,
            "due_at": pl.Datetime("us", "UTC"),
            "next_try": pl.Int32,
            "give_up_at": pl.Datetime("us", "UTC"),
            "run_id": pl.String,
        },
        orient="row",
    )
    if gone.height:
        log_writer(store).exec(
            "DELETE FROM retry_due WHERE dispatch_id IN (SELECT * FROM gone)", gone=gone
        )
    if new.height:
        log_writer(store).exec("INSERT OR REPLACE INTO retry_due SELECT * FROM new", new=new)


def retry_backlog(store: LogReader) -> pl.DataFrame:
    """The retries waiting for a later run, soonest first."""
    if not _has(store, "retry_due"):
        return pl.DataFrame()
    return store.sql("SELECT * FROM retry_due ORDER BY due_at, dispatch_id")


def set_run_reason(store: LogStore, run_id: str, reason: str) -> None:
    """Record why an operator ran ``run_id`` (a re-send of delivered postbacks)."""
    log_writer(store).exec("UPDATE runs SET reason = ? WHERE run_id = ?", [reason, run_id])


def tag_run(store: LogStore, run_id: str, tags: pl.DataFrame) -> None:
    """Fill in the event type and goal of a run's rows from ``tags`` (``dispatch_id`` and
    whichever of ``event_type``/``goal`` it has)."""
    cols = [c for c in TAG_COLUMNS if c in tags.columns]
    if not cols or tags.height == 0:
        return
    sets = ", ".join(f"{c} = t.{c}" for c in cols)
    log_writer(store).exec(
        f"UPDATE postback_log SET {sets} FROM tags t "
        "WHERE postback_log.run_id = ? AND postback_log.dispatch_id = t.dispatch_id",
        [run_id],
        tags=tags.select("dispatch_id", *cols).unique("dispatch_id"),
    )
